package wixsim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// getter returns the values of a (dotted) field of one item; a missing or
// empty field returns nil. Multi-valued fields (e.g. contact emails) return
// every value; $eq/$in match when any value matches.
type getter func(field string) []string

// pred is a compiled filter.
type pred func(get getter) bool

// fieldSpec lists, for one endpoint, the filterable fields and their operators.
// aliases maps alternative names to the canonical field (e.g. title -> name).
// fold marks fields compared case-insensitively (emails).
type fieldSpec struct {
	ops     map[string][]string
	aliases map[string]string
	fold    map[string]bool
	prefix  string // field name prefix in errors, e.g. "query.filter."
}

func (fs fieldSpec) canonical(f string) string {
	if a, ok := fs.aliases[f]; ok {
		return a
	}
	return f
}

// compileFilter validates filter against spec and returns a predicate.
// A nil or empty filter matches everything.
func compileFilter(filter map[string]any, spec fieldSpec) (pred, *apiError) {
	var preds []pred
	keys := make([]string, 0, len(filter))
	for k := range filter {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := filter[k]
		switch k {
		case "$and", "$or":
			list, ok := v.([]any)
			if !ok {
				return nil, fieldError(spec.prefix+k, k+" expects an array of filters", "FORMAT")
			}
			var subs []pred
			for _, item := range list {
				m, ok := item.(map[string]any)
				if !ok {
					return nil, fieldError(spec.prefix+k, k+" expects an array of filters", "FORMAT")
				}
				p, err := compileFilter(m, spec)
				if err != nil {
					return nil, err
				}
				subs = append(subs, p)
			}
			if k == "$and" {
				preds = append(preds, func(g getter) bool {
					for _, p := range subs {
						if !p(g) {
							return false
						}
					}
					return true
				})
			} else {
				preds = append(preds, func(g getter) bool {
					for _, p := range subs {
						if p(g) {
							return true
						}
					}
					return len(subs) == 0
				})
			}
		case "$not":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fieldError(spec.prefix+k, "$not expects a filter object", "FORMAT")
			}
			p, err := compileFilter(m, spec)
			if err != nil {
				return nil, err
			}
			preds = append(preds, func(g getter) bool { return !p(g) })
		default:
			if strings.HasPrefix(k, "$") {
				return nil, fieldError(spec.prefix+k, "unsupported operator "+k, "CUSTOM")
			}
			field := spec.canonical(k)
			allowed, ok := spec.ops[field]
			if !ok {
				return nil, fieldError(spec.prefix+k, "filtering by "+k+" is not supported", "CUSTOM")
			}
			ops, isOps := v.(map[string]any)
			if !isOps {
				ops = map[string]any{"$eq": v}
			}
			for _, op := range sortedKeys(ops) {
				if !slices.Contains(allowed, op) {
					return nil, fieldError(spec.prefix+k, "operator "+op+" is not supported for "+k, "CUSTOM")
				}
				p, err := compileOp(field, op, ops[op], spec.fold[field], spec.prefix+k)
				if err != nil {
					return nil, err
				}
				preds = append(preds, p)
			}
		}
	}
	return func(g getter) bool {
		for _, p := range preds {
			if !p(g) {
				return false
			}
		}
		return true
	}, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func compileOp(field, op string, v any, fold bool, name string) (pred, *apiError) {
	norm := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	badValue := func(want string) *apiError {
		return fieldError(name, fmt.Sprintf("%s expects %s", op, want), "FORMAT")
	}
	list := func() ([]string, *apiError) {
		arr, ok := v.([]any)
		if !ok {
			return nil, badValue("an array")
		}
		out := make([]string, 0, len(arr))
		for _, a := range arr {
			s, ok := scalar(a)
			if !ok {
				return nil, badValue("an array of scalars")
			}
			out = append(out, norm(s))
		}
		return out, nil
	}
	switch op {
	case "$eq", "$ne":
		if v == nil { // {"field": null} means "not set"
			want := op == "$ne"
			return func(g getter) bool { return (len(g(field)) > 0) == want }, nil
		}
		s, ok := scalar(v)
		if !ok {
			return nil, badValue("a scalar")
		}
		s = norm(s)
		eq := func(g getter) bool {
			for _, x := range g(field) {
				if norm(x) == s {
					return true
				}
			}
			return false
		}
		if op == "$ne" {
			return func(g getter) bool { return !eq(g) }, nil
		}
		return eq, nil
	case "$in", "$nin", "$hasSome":
		vals, err := list()
		if err != nil {
			return nil, err
		}
		set := make(map[string]struct{}, len(vals))
		for _, s := range vals {
			set[s] = struct{}{}
		}
		in := func(g getter) bool {
			for _, x := range g(field) {
				if _, ok := set[norm(x)]; ok {
					return true
				}
			}
			return false
		}
		if op == "$nin" {
			return func(g getter) bool { return !in(g) }, nil
		}
		return in, nil
	case "$hasAll":
		vals, err := list()
		if err != nil {
			return nil, err
		}
		return func(g getter) bool {
			have := g(field)
			for _, want := range vals {
				if !slices.ContainsFunc(have, func(x string) bool { return norm(x) == want }) {
					return false
				}
			}
			return true
		}, nil
	case "$exists", "$isEmpty":
		b, ok := v.(bool)
		if !ok {
			return nil, badValue("a boolean")
		}
		if op == "$isEmpty" {
			return func(g getter) bool { return (len(g(field)) == 0) == b }, nil
		}
		return func(g getter) bool { return (len(g(field)) > 0) == b }, nil
	case "$startsWith":
		s, ok := v.(string)
		if !ok {
			return nil, badValue("a string")
		}
		s = strings.ToLower(s)
		return func(g getter) bool {
			for _, x := range g(field) {
				if strings.HasPrefix(strings.ToLower(x), s) {
					return true
				}
			}
			return false
		}, nil
	case "$gt", "$gte", "$lt", "$lte":
		s, ok := scalar(v)
		if !ok {
			return nil, badValue("a scalar")
		}
		s = norm(s)
		return func(g getter) bool {
			for _, x := range g(field) {
				c := cmp.Compare(norm(x), s)
				if (op == "$gt" && c > 0) || (op == "$gte" && c >= 0) || (op == "$lt" && c < 0) || (op == "$lte" && c <= 0) {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fieldError(name, "unsupported operator "+op, "CUSTOM")
}

// sortSpec is one parsed sort item.
type sortSpec struct {
	Field string
	Desc  bool
}

// sortItem is the request shape {"fieldName": "x", "order": "ASC"|"DESC"}.
type sortItem struct {
	FieldName string `json:"fieldName"`
	Order     string `json:"order"`
}

// parseSort validates sort items against the allowed fields (with aliases).
func parseSort(items []sortItem, allowed []string, aliases map[string]string, name string) ([]sortSpec, *apiError) {
	var out []sortSpec
	for i, it := range items {
		f := it.FieldName
		if a, ok := aliases[f]; ok {
			f = a
		}
		if !slices.Contains(allowed, f) {
			return nil, fieldError(fmt.Sprintf("%s[%d].fieldName", name, i), "sorting by "+it.FieldName+" is not supported", "CUSTOM")
		}
		switch strings.ToUpper(it.Order) {
		case "", "ASC":
			out = append(out, sortSpec{Field: f})
		case "DESC":
			out = append(out, sortSpec{Field: f, Desc: true})
		default:
			return nil, fieldError(fmt.Sprintf("%s[%d].order", name, i), "order must be ASC or DESC", "FORMAT")
		}
	}
	return out, nil
}

func badRequest(msg string) *apiError {
	return appError(http.StatusBadRequest, "INVALID_ARGUMENT", msg)
}
