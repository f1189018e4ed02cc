package wixsim

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

var (
	groupPrefixes  = []string{"/social-groups-proxy/groups/v2", "/social-groups/v2"}
	memberPrefixes = []string{"/social-groups-proxy/members/v2", "/social-groups/v2"}
)

func paths(prefixes []string, suffix string) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = p + suffix
	}
	return out
}

func (s *Server) routes() {
	s.handle("POST", "groups.create", createGroup, paths(groupPrefixes, "/groups")...)
	s.handle("GET", "groups.list", listGroups, paths(groupPrefixes, "/groups")...)
	s.handle("POST", "groups.query", queryGroups, paths(groupPrefixes, "/groups/query")...)
	s.handle("GET", "groups.getBySlug", getGroupBySlug, groupPrefixes[0]+"/groups/slugs/{slug}")
	s.handle("GET", "groups.get", getGroup, paths(groupPrefixes, "/groups/{groupId}")...)
	s.handle("PATCH", "groups.update", updateGroup, paths(groupPrefixes, "/groups/{groupId}")...)
	s.handle("DELETE", "groups.delete", deleteGroup, paths(groupPrefixes, "/groups/{groupId}")...)

	s.handle("POST", "groupMembers.add", addGroupMembers, paths(memberPrefixes, "/groups/{groupId}/members")...)
	s.handle("DELETE", "groupMembers.remove", removeGroupMembers, paths(memberPrefixes, "/groups/{groupId}/members")...)
	s.handle("GET", "groupMembers.list", listGroupMembers, memberPrefixes[0]+"/groups/{groupId}/members")
	// The legacy prefix serves both groups and members, so GET
	// /social-groups/v2/groups/slugs/{slug} and /groups/{groupId}/members
	// overlap as ServeMux patterns: dispatch them by hand.
	s.api.HandleFunc("GET /social-groups/v2/groups/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		a, b := r.PathValue("a"), r.PathValue("b")
		switch {
		case a == "slugs":
			r.SetPathValue("slug", b)
			s.serve("groups.getBySlug", getGroupBySlug, w, r)
		case b == "members":
			r.SetPathValue("groupId", a)
			s.serve("groupMembers.list", listGroupMembers, w, r)
		default:
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "no such endpoint: " + r.Method + " " + r.URL.Path, "details": map[string]any{}})
		}
	})
	s.handle("POST", "groupMembers.query", queryGroupMembers, paths(memberPrefixes, "/groups/{groupId}/members/query")...)
	s.handle("GET", "groupMembers.listMemberships", listMemberships, paths(memberPrefixes, "/members/{memberId}/memberships")...)

	q := "/social-groups-proxy/questions/v2/membership-questions/{groupId}"
	s.handle("GET", "questions.list", listQuestions, q)
	s.handle("PUT", "questions.replace", replaceQuestions, q)
	s.handle("POST", "questions.listAnswers", listAnswers, q+"/answers")
	s.handle("GET", "rules.list", listRules, "/social-groups/v2/rules/{groupId}")
	s.handle("PUT", "rules.replace", replaceRules, "/social-groups/v2/rules/{groupId}")

	s.handle("POST", "members.query", queryMembers, "/members/v1/members/query")
	s.handle("GET", "members.list", listMembers, "/members/v1/members")
	s.handle("GET", "members.get", getMember, "/members/v1/members/{id}")

	es := "/email-marketing/v1/email-subscriptions"
	s.handle("POST", "emailSubscriptions.query", querySubscriptions, es+"/query")
	s.handle("POST", "emailSubscriptions.upsert", upsertSubscription, es)
	s.handle("POST", "emailSubscriptions.bulkUpsert", bulkUpsertSubscriptions, es+"/bulk")
	s.handle("GET", "emailSubscriptions.get", getSubscription, es+"/{id}")

	s.handle("POST", "contacts.query", queryContacts, "/contacts/v4/contacts/query")
	s.api.HandleFunc("POST /oauth2/token", s.oauthToken)
	s.groupRequestRoutes()
}

// groupJSON renders a group with current (non-legacy) field names.
func groupJSON(g *Group) map[string]any {
	out := map[string]any{
		"id":               g.ID,
		"slug":             g.Slug,
		"name":             g.Name,
		"privacyStatus":    g.PrivacyStatus,
		"membersCount":     g.MembersCount,
		"createdDate":      wixTime(g.CreatedDate),
		"updatedDate":      wixTime(g.UpdatedDate),
		"lastActivityDate": wixTime(g.LastActivityDate),
	}
	if g.OwnerID != "" {
		out["ownerId"] = g.OwnerID
	}
	for k, v := range map[string]string{"description": g.Description, "teaser": g.Teaser, "memberTitle": g.MemberTitle} {
		if v != "" {
			out[k] = v
		}
	}
	if g.Settings != nil {
		out["settings"] = g.Settings
	}
	if g.CoverImage != nil {
		out["coverImage"] = g.CoverImage
	}
	return out
}

// groupInput is a (partial) group in a request; legacy names are accepted.
type groupInput struct {
	Name          *string        `json:"name"`
	Title         *string        `json:"title"`
	PrivacyStatus *string        `json:"privacyStatus"`
	PrivacyLevel  *string        `json:"privacyLevel"`
	Description   *string        `json:"description"`
	Teaser        *string        `json:"teaser"`
	MemberTitle   *string        `json:"memberTitle"`
	Settings      map[string]any `json:"settings"`
	CoverImage    map[string]any `json:"coverImage"`
}

func (gi *groupInput) name() *string {
	if gi.Name != nil {
		return gi.Name
	}
	return gi.Title
}

func (gi *groupInput) privacy() *string {
	if gi.PrivacyStatus != nil {
		return gi.PrivacyStatus
	}
	return gi.PrivacyLevel
}

func validateGroupInput(gi *groupInput, create bool) *apiError {
	if n := gi.name(); n != nil || create {
		if n == nil || strings.TrimSpace(*n) == "" {
			return fieldError("group.name", "must not be empty", "REQUIRED_FIELD")
		}
		if utf8.RuneCountInString(*n) > 100 {
			return fieldError("group.name", "must be at most 100 characters", "MAX_LENGTH")
		}
	}
	if p := gi.privacy(); p != nil {
		switch *p {
		case "PUBLIC", "PRIVATE", "SECRET", "UNKNOWN":
		default:
			return fieldError("group.privacyStatus", "must be one of PUBLIC, PRIVATE, SECRET", "FORMAT")
		}
	}
	if gi.Description != nil && utf8.RuneCountInString(*gi.Description) > 20480 {
		return fieldError("group.description", "must be at most 20480 characters", "MAX_LENGTH")
	}
	if gi.Teaser != nil && utf8.RuneCountInString(*gi.Teaser) > 1000 {
		return fieldError("group.teaser", "must be at most 1000 characters", "MAX_LENGTH")
	}
	if gi.MemberTitle != nil && (utf8.RuneCountInString(*gi.MemberTitle) > 1000 || *gi.MemberTitle == "") {
		return fieldError("group.memberTitle", "must be 1-1000 characters", "MAX_LENGTH")
	}
	return nil
}

// createGroup: POST {G}/groups {group, creatorId?, contentType?}. The
// creator (or the site owner) becomes ADMIN, membersCount 1. Under
// GroupCreationWithApproval a creatorId other than the site owner makes a
// PENDING group request instead: the answer's group has no id, and
// groupRequest (a simulator guess at the wire shape, see internal/wix/README.md)
// holds the request.
func createGroup(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Group       *groupInput `json:"group"`
		CreatorID   string      `json:"creatorId"`
		ContentType string      `json:"contentType"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if req.Group == nil {
		return nil, fieldError("group", "must not be empty", "REQUIRED_FIELD")
	}
	if e := validateGroupInput(req.Group, true); e != nil {
		return nil, e
	}
	if e := checkDescription(req.Group.Description, req.ContentType); e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if req.CreatorID != "" {
		if _, ok := st.memberByID[req.CreatorID]; !ok {
			return nil, appError(http.StatusNotFound, "MEMBER_NOT_FOUND", "member "+req.CreatorID+" not found")
		}
	}
	g := Group{Name: *req.Group.name(), Settings: req.Group.Settings, CoverImage: req.Group.CoverImage, MemberTitle: "Members"}
	if p := req.Group.privacy(); p != nil {
		g.PrivacyStatus = *p
	}
	if req.Group.Description != nil {
		g.Description = *req.Group.Description
	}
	if req.Group.Teaser != nil {
		g.Teaser = *req.Group.Teaser
	}
	if req.Group.MemberTitle != nil {
		g.MemberTitle = *req.Group.MemberTitle
	}
	if g.Settings != nil {
		merged := defaultSettings()
		for k, v := range g.Settings {
			merged[k] = v
		}
		g.Settings = merged
	}
	request, e := st.createPolicy(req.CreatorID)
	if e != nil {
		return nil, e
	}
	if request {
		if g.PrivacyStatus == "" || g.PrivacyStatus == "UNKNOWN" {
			g.PrivacyStatus = "PUBLIC"
		}
		gq := &GroupRequest{ID: st.newID(), Status: "PENDING", Group: g, CreatorID: req.CreatorID, Created: st.now()}
		st.requests = append(st.requests, gq)
		out := st.groupRequestJSON(gq)
		switch st.modes.PendingAnswer {
		case PendingAnswerWithRequest:
			return map[string]any{"group": out["group"], "groupRequest": out}, nil
		case PendingAnswerRequestID:
			gj := out["group"].(map[string]any)
			gj["id"] = gq.ID
			return map[string]any{"group": gj}, nil
		}
		return map[string]any{"group": out["group"]}, nil
	}
	gr := st.createGroupLocked(g, req.CreatorID, st.now())
	return map[string]any{"group": st.groupOut(&gr.Group)}, nil
}

func (st *Site) lookupGroup(id string) (*group, *apiError) {
	g, ok := st.groupByID[id]
	if !ok {
		return nil, errGroupNotFound(id)
	}
	return g, nil
}

func getGroup(st *Site, r *http.Request) (any, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"group": st.groupOut(&g.Group)}, nil
}

// getGroupBySlug: slugs are case-sensitive.
func getGroupBySlug(st *Site, r *http.Request) (any, *apiError) {
	slug := r.PathValue("slug")
	if slug == "" || utf8.RuneCountInString(slug) > 100 {
		return nil, fieldError("slug", "must be 1-100 characters", "MAX_LENGTH")
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, ok := st.groupBySlug[slug]
	if !ok {
		return nil, appError(http.StatusNotFound, "GROUP_NOT_FOUND", "Group with slug "+slug+" not found")
	}
	return map[string]any{"group": st.groupOut(&g.Group)}, nil
}

// updateGroup: PATCH, partial, no field mask. Renaming a PUBLIC/PRIVATE group
// changes its slug; any update moves lastActivityDate.
func updateGroup(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Group       *groupInput `json:"group"`
		ContentType string      `json:"contentType"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if req.Group == nil {
		return nil, fieldError("group", "must not be empty", "REQUIRED_FIELD")
	}
	if e := validateGroupInput(req.Group, false); e != nil {
		return nil, e
	}
	if e := checkDescription(req.Group.Description, req.ContentType); e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	in := req.Group
	reslug := false
	if n := in.name(); n != nil && *n != g.Name {
		st.renameGroupLocked(g, *n)
		reslug = true
	}
	if p := in.privacy(); p != nil && *p != "UNKNOWN" && *p != g.PrivacyStatus {
		reslug = reslug || g.PrivacyStatus == "SECRET" || *p == "SECRET"
		g.PrivacyStatus = *p
	}
	if reslug {
		st.setSlugLocked(g)
	}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if in.Teaser != nil {
		g.Teaser = *in.Teaser
	}
	if in.MemberTitle != nil {
		g.MemberTitle = *in.MemberTitle
	}
	if in.Settings != nil {
		if g.Settings == nil {
			g.Settings = map[string]any{}
		}
		for k, v := range in.Settings {
			g.Settings[k] = v
		}
	}
	if in.CoverImage != nil {
		g.CoverImage = in.CoverImage
	}
	now := st.now()
	g.UpdatedDate, g.LastActivityDate = now, now
	return map[string]any{"group": st.groupOut(&g.Group)}, nil
}

// deleteGroup hides the group for good: later Get/List/Query do not find it.
func deleteGroup(st *Site, r *http.Request) (any, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	st.deleteGroupLocked(g)
	return map[string]any{"group": st.groupOut(&g.Group)}, nil
}

var groupSortFields = []string{"name", "createdDate", "membersCount", "lastActivityDate"}
var groupAliases = map[string]string{"title": "name", "recentActivityDate": "lastActivityDate"}

func sortGroups(gs []*group, specs []sortSpec) {
	slices.SortStableFunc(gs, func(a, b *group) int {
		for _, sp := range specs {
			var c int
			switch sp.Field {
			case "name":
				c = cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
			case "createdDate":
				c = a.CreatedDate.Compare(b.CreatedDate)
			case "membersCount":
				c = cmp.Compare(a.MembersCount, b.MembersCount)
			case "lastActivityDate":
				c = a.LastActivityDate.Compare(b.LastActivityDate)
			}
			if sp.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(b.seq, a.seq)
	})
}

// pageGroups answers a page of the groups among from that pred keeps.
func pageGroups(st *Site, from []*group, pred pred, specs []sortSpec, limit, offset int) map[string]any {
	var gs []*group
	for _, g := range from {
		if !st.visibleInQuery(g) {
			continue
		}
		if pred == nil || pred(func(f string) []string {
			if f == "name" && g.Name != "" {
				return []string{g.Name}
			}
			return nil
		}) {
			gs = append(gs, g)
		}
	}
	if len(specs) == 0 {
		specs = []sortSpec{{Field: "createdDate", Desc: true}}
	}
	sortGroups(gs, specs)
	lo, hi := pageBounds(len(gs), limit, offset)
	out := make([]any, 0, hi-lo)
	for _, g := range gs[lo:hi] {
		out = append(out, st.groupOut(&g.Group))
	}
	return map[string]any{"groups": out, "metadata": st.pageMeta(len(out), offset, len(gs))}
}

// listGroups: GET ?limit&offset, default sort createdDate DESC, limit ≤ 100.
// An admin API key sees SECRET groups too.
func listGroups(st *Site, r *http.Request) (any, *apiError) {
	limit, offset, e := queryPage(r)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return pageGroups(st, st.groups, nil, nil, limit, offset), nil
}

type queryBody struct {
	Query struct {
		Filter  map[string]any `json:"filter"`
		Sort    []sortItem     `json:"sort"`
		Sorting []sortItem     `json:"sorting"`
		Paging  paging         `json:"paging"`
	} `json:"query"`
}

// parseQuery decodes a {query: {filter, sort, paging}} body, resolves its
// paging (defLimit, maxLimit) and compiles its filter against spec: the
// preamble shared by the query endpoints.
func parseQuery(r *http.Request, spec fieldSpec, defLimit, maxLimit int) (req queryBody, limit, offset int, p pred, e *apiError) {
	if e = decodeBody(r, &req); e != nil {
		return req, 0, 0, nil, e
	}
	if limit, offset, e = req.Query.Paging.resolve("query.paging.", defLimit, maxLimit); e != nil {
		return req, 0, 0, nil, e
	}
	p, e = compileFilter(req.Query.Filter, spec)
	return req, limit, offset, p, e
}

var groupFilterSpec = fieldSpec{
	ops:     map[string][]string{"name": {"$eq", "$ne", "$in", "$startsWith", "$exists", "$hasSome"}},
	aliases: map[string]string{"title": "name"},
	prefix:  "query.filter.",
}

// queryGroups: filter on title/name; sort on title/name, createdDate,
// membersCount, recentActivityDate/lastActivityDate.
func queryGroups(st *Site, r *http.Request) (any, *apiError) {
	req, limit, offset, pred, e := parseQuery(r, groupFilterSpec, 100, 100)
	if e != nil {
		return nil, e
	}
	specs, e := parseSort(req.Query.Sort, groupSortFields, groupAliases, "query.sort")
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return pageGroups(st, st.candidates(req.Query.Filter), pred, specs, limit, offset), nil
}

// candidates returns a superset of the groups filter keeps (the filter
// still applies): for a find-by-name filter, the groups of that name from
// the name index, else every group. Callers hold st.mu.
func (st *Site) candidates(filter map[string]any) []*group {
	if name, ok := nameEquals(filter); ok {
		return st.groupsByName[name]
	}
	return st.groups
}

// nameEquals reports the name of a filter that is exactly "name (or title)
// equals a string", the find-by-name query, which the name index answers
// without a scan of every group.
func nameEquals(filter map[string]any) (string, bool) {
	if len(filter) != 1 {
		return "", false
	}
	for k, v := range filter {
		if k != "name" && k != "title" {
			return "", false
		}
		if ops, isOps := v.(map[string]any); isOps {
			if len(ops) != 1 {
				return "", false
			}
			v = ops["$eq"]
		}
		s, ok := v.(string)
		return s, ok
	}
	return "", false
}

// ---- group members ----

func groupMemberJSON(gm *GroupMember) map[string]any {
	return map[string]any{"memberId": gm.MemberID, "role": map[string]any{"value": gm.Role}, "joinedDate": wixTime(gm.JoinedDate)}
}

type memberIDsBody struct {
	MemberIDs     []string `json:"memberIds"`
	SiteMemberIDs []string `json:"siteMemberIds"`
}

func (b memberIDsBody) ids() []string {
	if len(b.MemberIDs) > 0 {
		return b.MemberIDs
	}
	return b.SiteMemberIDs
}

// addGroupMembers: at most 100 ids. Site members with a PUBLIC profile join
// at once; members with a PRIVATE profile get an invitation instead and are
// left out of the answer ("Public members are added right away, while private
// members receive an invitation", @wix/auto_sdk_groups_members addGroupMembers).
// The answer lists every id that is a member afterwards, those that already
// were included (idempotent; unconfirmed, see internal/wix/README.md). Unknown
// member ids → 404 MEMBER_NOT_FOUND (a guessed code) and nothing is added.
func addGroupMembers(st *Site, r *http.Request) (any, *apiError) {
	var req memberIDsBody
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	ids := req.ids()
	if len(ids) == 0 {
		return nil, fieldError("memberIds", "must not be empty", "REQUIRED_FIELD")
	}
	if len(ids) > 100 {
		return nil, fieldError("memberIds", "must contain at most 100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	for _, id := range ids {
		if _, ok := st.memberByID[id]; !ok {
			return nil, appError(http.StatusNotFound, "MEMBER_NOT_FOUND", "member "+id+" not found")
		}
	}
	now := st.now()
	var join []string
	for _, id := range ids {
		if _, ok := g.index[id]; !ok && st.memberByID[id].PrivacyStatus == "PRIVATE" {
			st.inviteLocked(g, id, now)
		} else {
			join = append(join, id)
		}
	}
	st.addGroupMembersLocked(g, join, now)
	out := make([]any, 0, len(join))
	seen := make(map[string]bool, len(join))
	for _, id := range join {
		if gm := g.index[id]; gm != nil && !seen[id] {
			seen[id] = true
			out = append(out, groupMemberJSON(gm))
		}
	}
	return map[string]any{"members": out}, nil
}

// removeGroupMembers: memberIds as repeated query params or a JSON body, at
// most 100; ids that are not members are ignored. Returns {}.
func removeGroupMembers(st *Site, r *http.Request) (any, *apiError) {
	var req memberIDsBody
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	ids := req.ids()
	q := r.URL.Query()
	for _, k := range []string{"memberIds", "siteMemberIds"} {
		for _, v := range q[k] {
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id != "" {
					ids = append(ids, id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil, fieldError("memberIds", "must not be empty", "REQUIRED_FIELD")
	}
	if len(ids) > 100 {
		return nil, fieldError("memberIds", "must contain at most 100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	st.removeGroupMembersLocked(g, ids, st.now())
	return map[string]any{}, nil
}

// pageEntries pages the group's members without sorting when the order is
// joinedDate (entries are kept in join order).
func pageEntries(g *group, keep func(*GroupMember) bool, specs []sortSpec, limit, offset int) map[string]any {
	desc := true
	byJoin := len(specs) == 0 || (len(specs) == 1 && specs[0].Field == "joinedDate")
	if len(specs) > 0 {
		desc = specs[0].Desc
	}
	var out []any
	total := 0
	if byJoin && keep == nil {
		total = len(g.entries)
		lo, hi := pageBounds(total, limit, offset)
		out = make([]any, 0, hi-lo)
		for i := lo; i < hi; i++ {
			idx := i
			if desc {
				idx = total - 1 - i
			}
			out = append(out, groupMemberJSON(g.entries[idx]))
		}
	} else {
		sel := make([]*GroupMember, 0, len(g.entries))
		for _, e := range g.entries {
			if keep == nil || keep(e) {
				sel = append(sel, e)
			}
		}
		if len(specs) == 0 {
			specs = []sortSpec{{Field: "joinedDate", Desc: true}}
		}
		pos := make(map[*GroupMember]int, len(sel))
		for i, e := range sel {
			pos[e] = i
		}
		slices.SortStableFunc(sel, func(a, b *GroupMember) int {
			for _, sp := range specs {
				var c int
				if sp.Field == "role" {
					c = cmp.Compare(a.Role, b.Role)
				} else {
					c = cmp.Compare(pos[a], pos[b])
				}
				if sp.Desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return cmp.Compare(pos[b], pos[a])
		})
		total = len(sel)
		lo, hi := pageBounds(total, limit, offset)
		out = make([]any, 0, hi-lo)
		for _, e := range sel[lo:hi] {
			out = append(out, groupMemberJSON(e))
		}
	}
	return map[string]any{"members": out, "metadata": metadata(len(out), offset, total)}
}

// listGroupMembers: GET ?limit&offset (limit ≤ 100, default 100), joinedDate DESC.
func listGroupMembers(st *Site, r *http.Request) (any, *apiError) {
	limit, offset, e := queryPage(r)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	return pageEntries(g, nil, nil, limit, offset), nil
}

// groupMemberFilterSpec: Wix filters group members on role only, with eq,
// ne, hasSome, in and exists (@wix/auto_sdk_groups_members@1.0.19
// build/cjs/index.typings.d.ts, MembersQueryBuilder: every filter method
// takes propertyName 'role'). memberId is not filterable there, so it is
// refused here too ($nin is kept: no builder of the SDK has it, which says
// nothing of this field).
var groupMemberFilterSpec = fieldSpec{
	ops:    map[string][]string{"role": {"$eq", "$ne", "$in", "$nin", "$hasSome", "$exists"}},
	prefix: "query.filter.",
}

// queryGroupMembers: filter on role (e.g. {"role": {"$eq": "ADMIN"}}, also
// {"role.value": ...}); sort on role, joinedDate (alias joinedOn).
func queryGroupMembers(st *Site, r *http.Request) (any, *apiError) {
	spec := groupMemberFilterSpec
	spec.aliases = map[string]string{"role.value": "role"}
	req, limit, offset, pred, e := parseQuery(r, spec, 100, 100)
	if e != nil {
		return nil, e
	}
	specs, e := parseSort(req.Query.Sort, []string{"role", "joinedDate"}, map[string]string{"joinedOn": "joinedDate"}, "query.sort")
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	var keep func(*GroupMember) bool
	if len(req.Query.Filter) > 0 {
		keep = func(gm *GroupMember) bool {
			return pred(func(f string) []string {
				if f == "role" {
					return []string{gm.Role}
				}
				return nil
			})
		}
	}
	return pageEntries(g, keep, specs, limit, offset), nil
}

// listMemberships: the groups a site member belongs to.
func listMemberships(st *Site, r *http.Request) (any, *apiError) {
	limit, offset, e := queryPage(r)
	if e != nil {
		return nil, e
	}
	id := r.PathValue("memberId")
	st.mu.RLock()
	defer st.mu.RUnlock()
	var all []any
	for _, g := range st.groups {
		if gm, ok := g.index[id]; ok {
			all = append(all, map[string]any{"groupId": g.ID, "status": "JOINED", "role": map[string]any{"value": gm.Role}})
		}
	}
	lo, hi := pageBounds(len(all), limit, offset)
	page := append([]any{}, all[lo:hi]...)
	return map[string]any{"memberships": page, "metadata": metadata(len(page), offset, len(all))}, nil
}
