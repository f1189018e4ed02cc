package wixsim

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

var memberStrOps = []string{"$eq", "$ne", "$exists", "$in", "$nin", "$hasSome", "$startsWith", "$gt", "$gte", "$lt", "$lte"}
var memberEnumOps = []string{"$eq", "$ne", "$exists", "$in", "$nin", "$hasSome"}

var memberFilterSpec = fieldSpec{
	ops: map[string][]string{
		"id": memberStrOps, "loginEmail": memberStrOps, "contactId": memberStrOps,
		"contact.firstName": memberStrOps, "contact.lastName": memberStrOps,
		"profile.nickname": memberStrOps, "profile.slug": memberStrOps,
		"privacyStatus": memberEnumOps, "status": memberEnumOps,
	},
	aliases: map[string]string{"_id": "id"},
	fold:    map[string]bool{"loginEmail": true},
	prefix:  "query.filter.",
}

var memberSortFields = []string{"profile.nickname", "contact.firstName", "contact.lastName", "createdDate", "lastLoginDate", "updatedDate"}

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func memberGetter(m *Member) getter {
	return func(f string) []string {
		switch f {
		case "id":
			return one(m.ID)
		case "loginEmail":
			return one(m.LoginEmail)
		case "contactId":
			return one(m.ContactID)
		case "contact.firstName":
			return one(m.FirstName)
		case "contact.lastName":
			return one(m.LastName)
		case "profile.nickname":
			return one(m.Nickname)
		case "profile.slug":
			return one(m.Slug)
		case "privacyStatus":
			return one(m.PrivacyStatus)
		case "status":
			return one(m.Status)
		}
		return nil
	}
}

// fieldset levels
const (
	fsPublic = iota
	fsExtended
	fsFull
)

// parseFieldsets accepts an array or a plain string; at most 3 entries.
func parseFieldsets(vals []string, field string) (int, *apiError) {
	if len(vals) > 3 {
		return 0, fieldError(field, "must contain at most 3 elements", "MAX_SIZE")
	}
	level := fsPublic
	for _, v := range vals {
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "PUBLIC":
		case "EXTENDED":
			level = max(level, fsExtended)
		case "FULL":
			level = fsFull
		default:
			return 0, fieldError(field, "unknown fieldset "+v+" (PUBLIC, EXTENDED, FULL)", "FORMAT")
		}
	}
	return level, nil
}

// memberJSON renders a member for a fieldset level. PUBLIC: id, contactId,
// dates, profile, and UNKNOWN statuses; EXTENDED adds loginEmail and the real
// statuses; FULL adds contact (names, emails, phones), loginEmailVerified and
// lastLoginDate.
func memberJSON(m *Member, level int) map[string]any {
	out := map[string]any{
		"id":             m.ID,
		"contactId":      m.ContactID,
		"createdDate":    wixTime(m.CreatedDate),
		"updatedDate":    wixTime(m.UpdatedDate),
		"profile":        map[string]any{"nickname": m.Nickname, "slug": m.Slug},
		"status":         "UNKNOWN",
		"privacyStatus":  "UNKNOWN",
		"activityStatus": "UNKNOWN",
	}
	if level >= fsExtended {
		if m.LoginEmail != "" {
			out["loginEmail"] = m.LoginEmail
		}
		out["status"], out["privacyStatus"], out["activityStatus"] = m.Status, m.PrivacyStatus, m.ActivityStatus
	}
	if level >= fsFull {
		out["loginEmailVerified"] = m.LoginEmail != "" && m.Status == "APPROVED"
		out["lastLoginDate"] = wixTime(m.LastLoginDate)
		contact := map[string]any{"phones": nonNil(m.Phones), "emails": nonNil(m.Emails), "addresses": []any{}, "customFields": map[string]any{}}
		if m.FirstName != "" {
			contact["firstName"] = m.FirstName
		}
		if m.LastName != "" {
			contact["lastName"] = m.LastName
		}
		out["contact"] = contact
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortMembers(ms []*Member, specs []sortSpec) {
	slices.SortStableFunc(ms, func(a, b *Member) int {
		for _, sp := range specs {
			var c int
			switch sp.Field {
			case "profile.nickname":
				c = cmp.Compare(strings.ToLower(a.Nickname), strings.ToLower(b.Nickname))
			case "contact.firstName":
				c = cmp.Compare(strings.ToLower(a.FirstName), strings.ToLower(b.FirstName))
			case "contact.lastName":
				c = cmp.Compare(strings.ToLower(a.LastName), strings.ToLower(b.LastName))
			case "createdDate":
				c = a.CreatedDate.Compare(b.CreatedDate)
			case "lastLoginDate":
				c = a.LastLoginDate.Compare(b.LastLoginDate)
			case "updatedDate":
				c = a.UpdatedDate.Compare(b.UpdatedDate)
			}
			if sp.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

// indexCandidates returns the members an indexed top-level $eq/$in on id,
// loginEmail or contactId can match, or ok=false when no index applies.
func (st *Site) indexCandidates(filter map[string]any) ([]*Member, bool) {
	for _, field := range []string{"id", "_id", "contactId", "loginEmail"} {
		v, ok := filter[field]
		if !ok {
			continue
		}
		var vals []any
		switch x := v.(type) {
		case string:
			vals = []any{x}
		case map[string]any:
			if in, ok := x["$in"].([]any); ok {
				vals = in
			} else if eq, ok := x["$eq"].(string); ok {
				vals = []any{eq}
			} else {
				continue
			}
		default:
			continue
		}
		seen := map[*Member]bool{}
		var out []*Member
		for _, a := range vals {
			s, _ := a.(string)
			var m *Member
			switch field {
			case "id", "_id":
				m = st.memberByID[s]
			case "contactId":
				m = st.memberByContact[s]
			case "loginEmail":
				m = st.memberByEmail[strings.ToLower(s)]
			}
			if m != nil && !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
		return out, true
	}
	return nil, false
}

type memberSearch struct {
	Expression string   `json:"expression"`
	Fields     []string `json:"fields"`
}

var searchFields = []string{"loginEmail", "contact.firstName", "contact.lastName", "profile.title", "profile.nickname", "profile.slug"}

func (sr *memberSearch) compile() (func(*Member) bool, *apiError) {
	if sr == nil {
		return nil, nil
	}
	if n := utf8.RuneCountInString(sr.Expression); n < 1 || n > 100 {
		return nil, fieldError("search.expression", "must be 1-100 characters", "MAX_LENGTH")
	}
	fields := sr.Fields
	if len(fields) == 0 {
		fields = []string{"profile.nickname"}
	}
	if len(fields) > 4 {
		return nil, fieldError("search.fields", "must contain at most 4 elements", "MAX_SIZE")
	}
	for _, f := range fields {
		if !slices.Contains(searchFields, f) {
			return nil, fieldError("search.fields", "unsupported search field "+f, "CUSTOM")
		}
	}
	expr := strings.ToLower(asciiFold(sr.Expression))
	return func(m *Member) bool {
		g := memberGetter(m)
		for _, f := range fields {
			for _, v := range g(f) {
				if strings.Contains(strings.ToLower(asciiFold(v)), expr) {
					return true
				}
			}
		}
		return false
	}, nil
}

// pageMembers filters, sorts (default: createdDate ASC, i.e. creation order)
// and pages members. Without a filter and with the default order, the page
// is sliced directly.
func (st *Site) pageMembers(filter map[string]any, p pred, search func(*Member) bool, specs []sortSpec, limit, offset, level int) map[string]any {
	var sel []*Member
	if len(filter) == 0 && search == nil && len(specs) == 0 {
		sel = st.members
	} else {
		cands, indexed := st.indexCandidates(filter)
		if !indexed {
			cands = st.members
		}
		for _, m := range cands {
			if (p == nil || p(memberGetter(m))) && (search == nil || search(m)) {
				sel = append(sel, m)
			}
		}
		if len(specs) > 0 || indexed {
			sortMembers(sel, specs)
		}
	}
	lo, hi := pageBounds(len(sel), limit, offset)
	out := make([]any, 0, hi-lo)
	for _, m := range sel[lo:hi] {
		out = append(out, memberJSON(m, level))
	}
	return map[string]any{"members": out, "metadata": metadata(len(out), offset, len(sel))}
}

// stringOrList decodes a JSON string or array of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// queryMembers: POST /members/v1/members/query {query{filter, sorting, paging},
// fieldsets, search}. Limit ≤ 100, default 50 (the REST default is
// unconfirmed; clients should always send one).
func queryMembers(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Query struct {
			Filter  map[string]any `json:"filter"`
			Sorting []sortItem     `json:"sorting"`
			Sort    []sortItem     `json:"sort"`
			Paging  paging         `json:"paging"`
		} `json:"query"`
		Fieldsets stringOrList  `json:"fieldsets"`
		Search    *memberSearch `json:"search"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.Query.Sort) > 0 && len(req.Query.Sorting) == 0 {
		return nil, fieldError("query.sort", "Members uses query.sorting", "CUSTOM")
	}
	limit, offset, e := req.Query.Paging.resolve("query.paging.", 50, 100)
	if e != nil {
		return nil, e
	}
	level, e := parseFieldsets(req.Fieldsets, "fieldsets")
	if e != nil {
		return nil, e
	}
	p, e := compileFilter(req.Query.Filter, memberFilterSpec)
	if e != nil {
		return nil, e
	}
	specs, e := parseSort(req.Query.Sorting, memberSortFields, nil, "query.sorting")
	if e != nil {
		return nil, e
	}
	search, e := req.Search.compile()
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.pageMembers(req.Query.Filter, p, search, specs, limit, offset, level), nil
}

func fieldsetsFromQuery(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()["fieldsets"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// listMembers: GET /members/v1/members?paging.limit&paging.offset&fieldsets
// (limit/offset accepted too).
func listMembers(st *Site, r *http.Request) (any, *apiError) {
	p, prefix, e := pagingFromQuery(r, "paging.", "")
	if e != nil {
		return nil, e
	}
	limit, offset, e := p.resolve(prefix, 50, 100)
	if e != nil {
		return nil, e
	}
	level, e := parseFieldsets(fieldsetsFromQuery(r), "fieldsets")
	if e != nil {
		return nil, e
	}
	var specs []sortSpec
	if f := r.URL.Query().Get("sorting.fieldName"); f != "" {
		specs, e = parseSort([]sortItem{{FieldName: f, Order: r.URL.Query().Get("sorting.order")}}, memberSortFields, nil, "sorting")
		if e != nil {
			return nil, e
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.pageMembers(nil, nil, nil, specs, limit, offset, level), nil
}

// getMember: GET /members/v1/members/{id}?fieldsets=; unknown → 404 MEMBER_NOT_FOUND.
func getMember(st *Site, r *http.Request) (any, *apiError) {
	level, e := parseFieldsets(fieldsetsFromQuery(r), "fieldsets")
	if e != nil {
		return nil, e
	}
	id := r.PathValue("id")
	st.mu.RLock()
	defer st.mu.RUnlock()
	m, ok := st.memberByID[id]
	if !ok {
		return nil, appError(http.StatusNotFound, "MEMBER_NOT_FOUND", "member "+id+" not found")
	}
	return map[string]any{"member": memberJSON(m, level)}, nil
}
