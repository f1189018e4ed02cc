package wix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"
)

// Stable operation names (metrics "endpoint" label, logs, APIError.Op).
const (
	OpGroupsCreate        = "groups.create"
	OpGroupsGet           = "groups.get"
	OpGroupsList          = "groups.list"
	OpGroupsQuery         = "groups.query"
	OpGroupsUpdate        = "groups.update"
	OpGroupsDelete        = "groups.delete"
	OpGroupMembersAdd     = "groupMembers.add"
	OpGroupMembersRemove  = "groupMembers.remove"
	OpGroupMembersList    = "groupMembers.list"
	OpGroupMembersQuery   = "groupMembers.query"
	OpMembersQuery        = "members.query"
	OpMembersGet          = "members.get"
	OpSubscriptionsQuery  = "emailSubscriptions.query"
	OpQuestionsList       = "questions.list"
	OpQuestionsReplace    = "questions.replace"
	OpQuestionsAnswers    = "questions.listAnswers"
	OpRulesList           = "rules.list"
	OpRulesReplace        = "rules.replace"
	OpContactsQuery       = "contacts.query"
	membersQueryPath      = "/members/v1/members/query"
	membersPath           = "/members/v1/members"
	subscriptionsQuery    = "/email-marketing/v1/email-subscriptions/query"
	contactsQueryPath     = "/contacts/v4/contacts/query"
	groupsCollectionPath  = "/groups"
	groupsQuerySuffixPath = "/groups/query"
)

// requireID rejects an empty path ID, which would silently hit another
// endpoint.
func requireID(what, id string) error {
	if id == "" {
		return invalid("empty %s", what)
	}
	return nil
}

// maxAnswerIDBytes bounds an id in Wix's answers (Wix's ids are
// 36-character GUIDs); under messages.maxAnswerIDBytes, so that an id taken from
// Wix is also a valid id of the contract's events and commands.
const maxAnswerIDBytes = 128

// checkAnswerID checks an id (what: "group id", ...) from a Wix answer
// before it goes into the ledger, events, logs and later URLs: empty, or
// at most maxAnswerIDBytes bytes of printable ASCII without spaces. The error names
// neither the id nor any of its bytes.
func checkAnswerID(what, id string) error {
	if len(id) > maxAnswerIDBytes {
		return fmt.Errorf("invalid %s in the answer: %d bytes, max %d", what, len(id), maxAnswerIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("invalid %s in the answer: byte %d is not printable ASCII", what, i)
		}
	}
	return nil
}

// checkPaging rejects page sizes over MaxPageSize and negative values.
func checkPaging(p *Paging) error {
	if p == nil {
		return nil
	}
	if p.Limit < 0 || p.Offset < 0 {
		return invalid("negative paging (limit %d, offset %d)", p.Limit, p.Offset)
	}
	if p.Limit > MaxPageSize {
		return invalid("paging limit %d over %d", p.Limit, MaxPageSize)
	}
	return nil
}

// pagingQuery encodes p as ?limit=&offset= (zero values left out).
func pagingQuery(p Paging) url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	return q
}

func (s *Site) groupPath(groupID string) string {
	return s.c.cfg.GroupsPrefix + "/groups/" + url.PathEscape(groupID)
}

type groupEnvelope struct {
	Group *Group `json:"group,omitempty"`
}

type createGroupRequest struct {
	Group       Group  `json:"group"`
	CreatorID   string `json:"creatorId,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

type updateGroupRequest struct {
	Group       *Group `json:"group,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

// ContentTypePlainText marks a group description as plain text. Without a
// contentType Wix reads description as DraftJS (@wix/auto_sdk_groups_groups
// Group.description, ContentType).
const ContentTypePlainText = "PLAIN_TEXT"

// descriptionType is the contentType to send with g: PLAIN_TEXT when g has a
// description (this client sends descriptions as plain text), else none.
func descriptionType(g Group) string {
	if g.Description != "" {
		return ContentTypePlainText
	}
	return ""
}

// GroupRequest is a request to create a group (Create Group Requests API),
// made instead of a group when the site requires approval of groups created
// by members.
type GroupRequest struct {
	// ID is the group request id.
	ID string `json:"id"`
	// Status is PENDING, APPROVED, REJECTED or CANCELED.
	Status string `json:"status"`
	// Group is the requested group; its ID is set once approved (unconfirmed).
	Group Group `json:"group"`
	// RequestDetails holds the rejection reason.
	RequestDetails struct {
		RejectionReason string `json:"rejectionReason,omitempty"`
	} `json:"requestDetails"`
}

// Group request statuses.
const (
	RequestPending  = "PENDING"
	RequestApproved = "APPROVED"
	RequestRejected = "REJECTED"
	RequestCanceled = "CANCELED"
)

// PendingGroupError is returned by CreateGroup when Wix answered without a
// group id: the site requires approval, and the create became a group
// request. RequestID is the request's id when the answer held it ("" if not:
// look it up with ListGroupRequests).
type PendingGroupError struct {
	Name      string
	RequestID string
}

func (e *PendingGroupError) Error() string {
	if e.RequestID == "" {
		return fmt.Sprintf("group %q is pending approval (the site requires approval of groups created by members)", e.Name)
	}
	return fmt.Sprintf("group %q is pending approval as group request %s (the site requires approval of groups created by members)", e.Name, e.RequestID)
}

// groupRequestsPath is the Group Requests collection under
// Config.GroupRequestsPrefix. REST docs
// (https://dev.wix.com/docs/rest/api-reference/wix-groups/create-requests):
// POST https://www.wixapis.com/social-groups/v2/group-requests/approve; the
// SDK (@wix/auto_sdk_groups_group-requests@1.0.20 build/cjs/index.typings.js)
// maps protoPath /v2/group-requests under /_api/social-groups-proxy/group-requests.
const groupRequestsPath = "/group-requests"

// OpGroupRequestsList is the operation name of List Group Requests.
const OpGroupRequestsList = "groupRequests.list"

// GroupRequestsPage is one page of List Group Requests.
type GroupRequestsPage struct {
	GroupRequests []GroupRequest  `json:"groupRequests"`
	Metadata      *PagingMetadata `json:"metadata,omitempty"`
}

// ListGroupRequests returns one page of the site's group requests (GET
// ?limit=&offset=, limit ≤ MaxPageSize).
func (s *Site) ListGroupRequests(ctx context.Context, p Paging) (*GroupRequestsPage, error) {
	if err := checkPaging(&p); err != nil {
		return nil, fmt.Errorf("list group requests: %w", err)
	}
	var out GroupRequestsPage
	err := s.do(ctx, call{op: OpGroupRequestsList, method: http.MethodGet, path: s.c.cfg.GroupRequestsPrefix + groupRequestsPath, query: pagingQuery(p), out: &out})
	if err != nil {
		return nil, fmt.Errorf("list group requests: %w", err)
	}
	return &out, nil
}

// CreateGroup creates g (Name required, at most MaxGroupNameLen characters).
// creatorID, if set, is the member who becomes the group's first admin.
// Read-only fields of g are not sent. Because creating is not idempotent,
// CreateGroup retries only failures that prove Wix did not process the
// request (429, connection refused); after a timeout or 5xx it returns the
// (transient) error and the caller should look the group up before retrying.
// A description is sent with contentType PLAIN_TEXT. An answer without a
// group id (the create became a group request awaiting approval) is a
// *PendingGroupError, never a Group with an empty ID.
func (s *Site) CreateGroup(ctx context.Context, g Group, creatorID string) (*Group, error) {
	if g.Name == "" {
		return nil, fmt.Errorf("create group: %w", invalid("empty name"))
	}
	if n := utf8.RuneCountInString(g.Name); n > MaxGroupNameLen {
		return nil, fmt.Errorf("create group: %w", invalid("name has %d characters, max %d", n, MaxGroupNameLen))
	}
	var out createGroupAnswer
	err := s.do(ctx, call{
		op: OpGroupsCreate, method: http.MethodPost, path: s.c.cfg.GroupsPrefix + groupsCollectionPath,
		body: createGroupRequest{Group: g.writable(false), CreatorID: creatorID, ContentType: descriptionType(g)}, out: &out, unsafeRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	if out.Group == nil || out.Group.ID == "" {
		pe := &PendingGroupError{Name: g.Name}
		if r := firstNonNil(out.GroupRequest, out.CreateRequest); r != nil {
			pe.RequestID = r.ID
		}
		return nil, pe
	}
	return out.Group, nil
}

// createGroupAnswer is Create Group's answer.
type createGroupAnswer struct {
	Group *Group `json:"group"`
	// GroupRequest (or createRequest) is where the simulator puts the
	// pending request; Wix's wire shape for it is unconfirmed.
	GroupRequest  *GroupRequest `json:"groupRequest"`
	CreateRequest *GroupRequest `json:"createRequest"`
}

// decodeWix decodes an answer into a, its group through groupJSON.
func (a *createGroupAnswer) decodeWix(raw []byte) error {
	var v struct {
		Group         *groupJSON    `json:"group"`
		GroupRequest  *GroupRequest `json:"groupRequest"`
		CreateRequest *GroupRequest `json:"createRequest"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	g, err := v.Group.ptr()
	if err != nil {
		return err
	}
	a.Group, a.GroupRequest, a.CreateRequest = g, v.GroupRequest, v.CreateRequest
	return nil
}

// decodeWix decodes an answer into e, its group through groupJSON.
func (e *groupEnvelope) decodeWix(raw []byte) error {
	var v struct {
		Group *groupJSON `json:"group,omitempty"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	var err error
	e.Group, err = v.Group.ptr()
	return err
}

func groupOrEmpty(g *Group) *Group {
	if g == nil {
		return &Group{}
	}
	return g
}

// GetGroup returns one group; a missing group is an APIError with status 404
// (see IsNotFound).
func (s *Site) GetGroup(ctx context.Context, groupID string) (*Group, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("get group: %w", err)
	}
	var out groupEnvelope
	if err := s.do(ctx, call{op: OpGroupsGet, method: http.MethodGet, path: s.groupPath(groupID), out: &out}); err != nil {
		return nil, fmt.Errorf("get group %s: %w", groupID, err)
	}
	return groupOrEmpty(out.Group), nil
}

// ListGroups returns one page of groups (GET ?limit=&offset=, default sort
// createdDate DESC). Metadata.Total counts all groups.
func (s *Site) ListGroups(ctx context.Context, p Paging) (*GroupsPage, error) {
	if err := checkPaging(&p); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var out GroupsPage
	err := s.do(ctx, call{op: OpGroupsList, method: http.MethodGet, path: s.c.cfg.GroupsPrefix + groupsCollectionPath,
		query: pagingQuery(p), out: &out})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return &out, nil
}

type queryEnvelope struct {
	Query Query `json:"query"`
}

// QueryGroups runs a WQL query on groups. Wix filters only on "title" (the
// legacy name of name) and sorts on title, createdDate, membersCount and
// recentActivityDate.
func (s *Site) QueryGroups(ctx context.Context, q Query) (*GroupsPage, error) {
	if err := checkPaging(q.Paging); err != nil {
		return nil, fmt.Errorf("query groups: %w", err)
	}
	var out GroupsPage
	err := s.do(ctx, call{op: OpGroupsQuery, method: http.MethodPost, path: s.c.cfg.GroupsPrefix + groupsQuerySuffixPath,
		body: queryEnvelope{Query: q}, out: &out})
	if err != nil {
		return nil, fmt.Errorf("query groups: %w", err)
	}
	return &out, nil
}

// UpdateGroup patches the group g.ID with the non-empty writable fields of g
// (PATCH, no field mask). Only group admins may update.
func (s *Site) UpdateGroup(ctx context.Context, g Group) (*Group, error) {
	if err := requireID("group id", g.ID); err != nil {
		return nil, fmt.Errorf("update group: %w", err)
	}
	if n := utf8.RuneCountInString(g.Name); n > MaxGroupNameLen {
		return nil, fmt.Errorf("update group %s: %w", g.ID, invalid("name has %d characters, max %d", n, MaxGroupNameLen))
	}
	w := g.writable(true)
	var out groupEnvelope
	err := s.do(ctx, call{op: OpGroupsUpdate, method: http.MethodPatch, path: s.groupPath(g.ID),
		body: updateGroupRequest{Group: &w, ContentType: descriptionType(g)}, out: &out})
	if err != nil {
		return nil, fmt.Errorf("update group %s: %w", g.ID, err)
	}
	return groupOrEmpty(out.Group), nil
}

// DeleteGroup deletes (hides) a group for good and returns it.
func (s *Site) DeleteGroup(ctx context.Context, groupID string) (*Group, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("delete group: %w", err)
	}
	var out groupEnvelope
	if err := s.do(ctx, call{op: OpGroupsDelete, method: http.MethodDelete, path: s.groupPath(groupID), out: &out}); err != nil {
		return nil, fmt.Errorf("delete group %s: %w", groupID, err)
	}
	return groupOrEmpty(out.Group), nil
}
