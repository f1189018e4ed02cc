package wixsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Group creation settings of a site (Wix dashboard: Groups > General
// Settings > Group Creation; @wix/auto_sdk_groups_groups createGroup doc).
const (
	// GroupCreationAllMembers: site members create groups without approval.
	// The simulator's default, so that `make run` behaves as before.
	GroupCreationAllMembers = "ALL_MEMBERS"
	// GroupCreationWithApproval: a group created for a site member (a
	// creatorId other than the site owner) becomes a group request with
	// status PENDING until approved. Wix's default for a new site.
	GroupCreationWithApproval = "MEMBERS_WITH_APPROVAL"
	// GroupCreationAdminsOnly: only the site owner (or an API key without
	// creatorId) may create groups; others get 403.
	GroupCreationAdminsOnly = "ADMINS"
)

// Answers of Create Group when the create became a group request. Wix's
// wire shape is unconfirmed: the SDK documents CreateGroupResponse as
// { group?: Group } only (@wix/auto_sdk_groups_groups@1.0.19
// build/cjs/index.typings.d.ts), and the Velo listGroupRequests example
// shows a request _id equal to its group's _id.
const (
	// PendingAnswerGroupOnly (the default): {"group": {...}} without an id.
	PendingAnswerGroupOnly = ""
	// PendingAnswerWithRequest adds "groupRequest": {id, status, group}.
	PendingAnswerWithRequest = "WITH_REQUEST"
	// PendingAnswerRequestID answers {"group": {...}} whose id is the
	// request's id, which is not (yet) a group: Get Group answers 404.
	PendingAnswerRequestID = "REQUEST_ID"
)

// Modes are optional behaviours of the simulator that model a live site more
// closely but would change `make run`. The zero value keeps them all off.
// The behaviours that are simply correct (phones, contentType, invitations
// for private members, the idempotent Add Group Members answer) are always on.
type Modes struct {
	// GroupCreation is the site's group creation setting: one of the
	// GroupCreation* constants ("" = GroupCreationAllMembers).
	GroupCreation string
	// PendingAnswer is how Create Group answers when the create became a
	// group request: one of the PendingAnswer* constants.
	PendingAnswer string
	// LegacyFieldNames answers groups with the legacy names title,
	// privacyLevel and recentActivityDate instead of name, privacyStatus and
	// lastActivityDate, so that the client's fallbacks are exercised.
	LegacyFieldNames bool
	// QueryGroupsLag makes a new group appear in Query Groups and List Groups
	// only this long (simulator clock) after its creation: eventual
	// consistency of the search index. Get Group finds it at once.
	QueryGroupsLag time.Duration
	// TooManyToCountOver, when positive, makes query/list answers whose total
	// exceeds it leave out metadata.total and set metadata.tooManyToCount
	// ("the server failed to calculate the total field").
	TooManyToCountOver int
}

// SetModes changes the modes of this site.
func (st *Site) SetModes(m Modes) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.modes = m
}

// Modes returns the modes of this site.
func (st *Site) Modes() Modes {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.modes
}

// groupOut renders a group in the site's field naming (callers hold st.mu).
func (st *Site) groupOut(g *Group) map[string]any {
	out := groupJSON(g)
	if st.modes.LegacyFieldNames {
		out["title"] = out["name"]
		out["privacyLevel"] = out["privacyStatus"]
		out["recentActivityDate"] = out["lastActivityDate"]
		delete(out, "name")
		delete(out, "privacyStatus")
		delete(out, "lastActivityDate")
	}
	return out
}

// visibleInQuery reports whether g is in the search index yet (callers hold st.mu).
func (st *Site) visibleInQuery(g *group) bool {
	lag := st.modes.QueryGroupsLag
	return lag <= 0 || !st.now().Before(g.CreatedDate.Add(lag))
}

// pageMeta is metadata(count, offset, total) with tooManyToCount when the
// site's mode says so (callers hold st.mu).
func (st *Site) pageMeta(count, offset, total int) map[string]any {
	m := metadata(count, offset, total)
	if n := st.modes.TooManyToCountOver; n > 0 && total > n {
		delete(m, "total")
		m["tooManyToCount"] = true
	}
	return m
}

// ---- group descriptions (contentType) ----

// Content types of a group description (@wix/auto_sdk_groups_groups
// ContentType). Without contentType the description is DraftJS.
var contentTypes = []string{"PLAIN_TEXT", "DRAFTJS", "RICH_CONTENT"}

// checkDescription validates a description against its content type. The
// SDK documents description as "Group description in DraftJS format" and
// contentType as optional; what Wix does with plain text sent without a
// contentType is unconfirmed: the simulator rejects it (400), so that a
// client forgetting contentType fails here the way it could fail, or be
// garbled, on a live site.
func checkDescription(desc *string, contentType string) *apiError {
	if contentType != "" && !slices.Contains(contentTypes, contentType) {
		return fieldError("contentType", "must be one of PLAIN_TEXT, DRAFTJS, RICH_CONTENT", "FORMAT")
	}
	if desc == nil || *desc == "" || contentType == "PLAIN_TEXT" {
		return nil
	}
	var doc map[string]json.RawMessage
	key := "blocks" // DraftJS raw content: {"blocks": [...], "entityMap": {}}
	if contentType == "RICH_CONTENT" {
		key = "nodes" // Ricos: {"nodes": [...]}
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(*desc)), &doc); err != nil || doc[key] == nil {
		ct := contentType
		if ct == "" {
			ct = "DRAFTJS (no contentType given)"
		}
		return fieldError("group.description", "is not "+ct+" content; send contentType PLAIN_TEXT for plain text", "FORMAT")
	}
	return nil
}

// ---- group requests (Create Group Requests API) ----

// GroupRequest is a request to create a group, made when a site member
// creates a group under GroupCreationWithApproval.
type GroupRequest struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"` // PENDING, APPROVED, REJECTED, CANCELED
	Group     Group     `json:"group"`  // ID set once approved
	CreatorID string    `json:"creatorId"`
	Reason    string    `json:"rejectionReason,omitempty"`
	Created   time.Time `json:"createdDate"`
}

// mustRequest reports whether a create for creatorID becomes a request, or
// is refused (callers hold st.mu).
func (st *Site) createPolicy(creatorID string) (request bool, e *apiError) {
	byMember := creatorID != "" && creatorID != st.ownerID
	switch st.modes.GroupCreation {
	case GroupCreationWithApproval:
		return byMember, nil
	case GroupCreationAdminsOnly:
		if byMember {
			return false, appError(http.StatusForbidden, "PERMISSION_DENIED", "only admins may create groups on this site")
		}
	}
	return false, nil
}

func (st *Site) groupRequestJSON(r *GroupRequest) map[string]any {
	g := st.groupOut(&r.Group)
	if r.Group.ID == "" { // not created yet: no id, slug, dates or owner
		for _, k := range []string{"id", "slug", "createdDate", "updatedDate", "lastActivityDate", "recentActivityDate", "membersCount"} {
			delete(g, k)
		}
	}
	out := map[string]any{"id": r.ID, "status": r.Status, "group": g, "requestDetails": map[string]any{}}
	if r.Reason != "" {
		out["requestDetails"] = map[string]any{"rejectionReason": r.Reason}
	}
	return out
}

// approveLocked creates the requested group (callers hold st.mu).
func (st *Site) approveLocked(r *GroupRequest) {
	if r.Status != "PENDING" {
		return
	}
	gr := st.createGroupLocked(r.Group, r.CreatorID, st.now())
	r.Group = gr.Group
	r.Status = "APPROVED"
}

// ApproveGroupRequest approves a pending group request, creating its group,
// and returns the group (ok=false when there is no such pending request).
func (st *Site) ApproveGroupRequest(id string) (Group, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range st.requests {
		if r.ID == id && r.Status == "PENDING" {
			st.approveLocked(r)
			return r.Group, true
		}
	}
	return Group{}, false
}

// GroupRequests returns the group requests of the site, oldest first.
func (st *Site) GroupRequests() []GroupRequest {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]GroupRequest, len(st.requests))
	for i, r := range st.requests {
		out[i] = *r
	}
	return out
}

// groupRequestsPaths are the Group Requests collection at the REST docs' URL
// (https://dev.wix.com/docs/rest/api-reference/wix-groups/create-requests:
// POST https://www.wixapis.com/social-groups/v2/group-requests/approve) and
// at the SDK's (@wix/auto_sdk_groups_group-requests@1.0.20
// build/cjs/index.typings.js: srcPath /_api/social-groups-proxy/group-requests,
// protoPath /v2/group-requests).
var groupRequestsPaths = []string{"/social-groups/v2/group-requests", "/_api/social-groups-proxy/group-requests/v2/group-requests"}

// suffixed returns each of paths with suffix appended.
func suffixed(paths []string, suffix string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p + suffix
	}
	return out
}

func (s *Server) groupRequestRoutes() {
	s.handle("GET", "groupRequests.list", listGroupRequests, groupRequestsPaths...)
	s.handle("POST", "groupRequests.approve", approveGroupRequests, suffixed(groupRequestsPaths, "/approve")...)
	s.handle("POST", "groupRequests.reject", rejectGroupRequests, suffixed(groupRequestsPaths, "/reject")...)
}

// listGroupRequests: GET ?limit&offset (limit ≤ 100), newest first.
func listGroupRequests(st *Site, r *http.Request) (any, *apiError) {
	limit, offset, e := queryPage(r)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	n := len(st.requests)
	lo, hi := pageBounds(n, limit, offset)
	out := make([]any, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, st.groupRequestJSON(st.requests[n-1-i]))
	}
	return map[string]any{"groupRequests": out, "metadata": st.pageMeta(len(out), offset, n)}, nil
}

func approveGroupRequests(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		IDs []string `json:"groupRequestIds"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.IDs) == 0 || len(req.IDs) > 100 {
		return nil, fieldError("groupRequestIds", "must contain 1-100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []any{}
	for _, r := range st.requests {
		if slices.Contains(req.IDs, r.ID) {
			st.approveLocked(r)
			out = append(out, st.groupRequestJSON(r))
		}
	}
	return map[string]any{"groupRequest": out}, nil
}

func rejectGroupRequests(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Rejections []struct {
			ID     string `json:"groupRequestId"`
			Reason string `json:"reason"`
		} `json:"rejections"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.Rejections) == 0 || len(req.Rejections) > 100 {
		return nil, fieldError("rejections", "must contain 1-100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []any{}
	for _, rj := range req.Rejections {
		for _, r := range st.requests {
			if r.ID == rj.ID && r.Status == "PENDING" {
				r.Status, r.Reason = "REJECTED", rj.Reason
				out = append(out, st.groupRequestJSON(r))
			}
		}
	}
	return map[string]any{"groupRequest": out}, nil
}
