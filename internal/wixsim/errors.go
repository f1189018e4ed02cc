package wixsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// apiError is an error response in Wix's shape.
type apiError struct {
	status int
	body   map[string]any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %v", e.status, e.body["message"]) }

func appError(status int, code, msg string) *apiError {
	return &apiError{status: status, body: map[string]any{
		"message": msg,
		"details": map[string]any{"applicationError": map[string]any{"code": code, "description": msg}},
	}}
}

// fieldError is a 400 with a validationError naming the offending field.
func fieldError(field, desc, rule string) *apiError {
	return &apiError{status: http.StatusBadRequest, body: map[string]any{
		"message": field + ": " + desc,
		"details": map[string]any{"validationError": map[string]any{"fieldViolations": []any{
			map[string]any{"field": field, "description": desc, "violatedRule": rule},
		}}},
	}}
}

func systemError(status int) *apiError {
	return &apiError{status: status, body: map[string]any{"message": "", "details": map[string]any{}}}
}

func errGroupNotFound(id string) *apiError {
	return appError(http.StatusNotFound, "GROUP_NOT_FOUND", fmt.Sprintf("Group %s not found", id))
}

func errTooManyRequests() *apiError {
	return &apiError{status: http.StatusTooManyRequests, body: map[string]any{
		"message": "Too many requests",
		"details": map[string]any{"applicationError": map[string]any{"code": "RESOURCE_EXHAUSTED", "description": "Too many requests"}},
	}}
}

func errForStatus(status int) *apiError {
	switch {
	case status == http.StatusTooManyRequests:
		return errTooManyRequests()
	case status >= 500:
		return systemError(status)
	case status == http.StatusUnauthorized:
		return appError(status, "UNAUTHENTICATED", "Unauthenticated")
	case status == http.StatusForbidden:
		return appError(status, "PERMISSION_DENIED", "Permission denied")
	case status == http.StatusNotFound:
		return appError(status, "NOT_FOUND", "Not found")
	case status == http.StatusConflict:
		return appError(status, "ALREADY_EXISTS", "Already exists")
	default:
		return appError(status, "INVALID_ARGUMENT", http.StatusText(status))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody decodes an optional JSON body into v. An empty body is fine.
func decodeBody(r *http.Request, v any) *apiError {
	data, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return appError(http.StatusBadRequest, "INVALID_ARGUMENT", "cannot read body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return appError(http.StatusBadRequest, "INVALID_ARGUMENT", "malformed JSON body: "+err.Error())
	}
	return nil
}

// flexInt accepts a JSON number or a numeric string (proto3 JSON allows both).
type flexInt struct {
	v   int
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	f.v, f.set = int(n), true
	return nil
}

// paging is the offset paging request.
type paging struct {
	Limit  flexInt `json:"limit"`
	Offset flexInt `json:"offset"`
}

// resolve validates limit/offset and applies the default. prefix names the
// fields in errors ("paging." or "query.paging." or "").
func (p paging) resolve(prefix string, def, max int) (limit, offset int, e *apiError) {
	limit, offset = p.Limit.v, p.Offset.v
	if limit < 0 {
		return 0, 0, fieldError(prefix+"limit", "must be at least 0", "MIN")
	}
	if limit > max {
		return 0, 0, fieldError(prefix+"limit", fmt.Sprintf("must be at most %d", max), "MAX")
	}
	if offset < 0 {
		return 0, 0, fieldError(prefix+"offset", "must be at least 0", "MIN")
	}
	if limit == 0 {
		limit = def
	}
	return limit, offset, nil
}

// queryPage reads the limit (default and maximum 100) and offset of a GET
// list endpoint from ?limit&offset or ?paging.limit&paging.offset.
func queryPage(r *http.Request) (limit, offset int, e *apiError) {
	p, prefix, e := pagingFromQuery(r, "", "paging.")
	if e != nil {
		return 0, 0, e
	}
	return p.resolve(prefix, 100, 100)
}

// pagingFromQuery reads limit/offset (or paging.limit/paging.offset) from the URL.
func pagingFromQuery(r *http.Request, names ...string) (paging, string, *apiError) {
	q := r.URL.Query()
	var p paging
	used := ""
	for _, prefix := range names {
		for _, f := range []struct {
			name string
			dst  *flexInt
		}{{"limit", &p.Limit}, {"offset", &p.Offset}} {
			raw := q.Get(prefix + f.name)
			if raw == "" {
				continue
			}
			if used == "" {
				used = prefix
			}
			if err := f.dst.UnmarshalJSON([]byte(raw)); err != nil {
				return p, "", fieldError(prefix+f.name, "must be an integer", "FORMAT")
			}
		}
	}
	if used == "" && len(names) > 0 {
		used = names[0]
	}
	return p, used, nil
}

// metadata is the offset-paging response metadata.
func metadata(count, offset, total int) map[string]any {
	return map[string]any{"count": count, "offset": offset, "total": total}
}

// pageBounds returns the [lo,hi) slice bounds of a page.
func pageBounds(total, limit, offset int) (int, int) {
	lo := min(offset, total)
	hi := min(lo+limit, total)
	return lo, hi
}
