package wix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

func (s *Site) groupMembersPath(groupID string) string {
	return s.c.cfg.GroupMembersPrefix + "/groups/" + url.PathEscape(groupID) + "/members"
}

// checkIDs rejects more than max IDs or an empty ID.
func checkIDs(what string, ids []string, max int) error {
	if len(ids) > max {
		return invalid("%d %s, max %d per call (use Chunk)", len(ids), what, max)
	}
	for i, id := range ids {
		if id == "" {
			return invalid("%s[%d] is empty", what, i)
		}
	}
	return nil
}

type memberIDsBody struct {
	MemberIDs []string `json:"memberIds"`
}

type groupMembersEnvelope struct {
	Members []GroupMember `json:"members"`
}

// decodeWix decodes an answer into e, its members through groupMemberJSON.
func (e *groupMembersEnvelope) decodeWix(raw []byte) error {
	var v struct {
		Members []groupMemberJSON `json:"members"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	ms, err := groupMembersOf(v.Members)
	if err != nil {
		return err
	}
	e.Members = ms
	return nil
}

// AddGroupMembers adds up to MaxMemberIDsPerAdd site members to a group and
// returns the new group members. Private site members get an invitation
// instead. More IDs is a permanent error before any call; no IDs is a no-op
// without a call.
func (s *Site) AddGroupMembers(ctx context.Context, groupID string, memberIDs []string) ([]GroupMember, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("add group members: %w", err)
	}
	if err := checkIDs("member ids", memberIDs, MaxMemberIDsPerAdd); err != nil {
		return nil, fmt.Errorf("add group members to %s: %w", groupID, err)
	}
	if len(memberIDs) == 0 {
		return nil, nil
	}
	var out groupMembersEnvelope
	err := s.do(ctx, call{op: OpGroupMembersAdd, method: http.MethodPost, path: s.groupMembersPath(groupID),
		body: memberIDsBody{MemberIDs: memberIDs}, out: &out})
	if err != nil {
		return nil, fmt.Errorf("add %d members to group %s: %w", len(memberIDs), groupID, err)
	}
	return out.Members, nil
}

// RemoveGroupMembers removes up to MaxMemberIDsPerAdd members from a group,
// SDK style: DELETE with ?memberIds=a&memberIds=b. No IDs is a no-op.
func (s *Site) RemoveGroupMembers(ctx context.Context, groupID string, memberIDs []string) error {
	if err := requireID("group id", groupID); err != nil {
		return fmt.Errorf("remove group members: %w", err)
	}
	if err := checkIDs("member ids", memberIDs, MaxMemberIDsPerAdd); err != nil {
		return fmt.Errorf("remove group members from %s: %w", groupID, err)
	}
	if len(memberIDs) == 0 {
		return nil
	}
	err := s.do(ctx, call{op: OpGroupMembersRemove, method: http.MethodDelete, path: s.groupMembersPath(groupID),
		query: url.Values{"memberIds": memberIDs}})
	if err != nil {
		return fmt.Errorf("remove %d members from group %s: %w", len(memberIDs), groupID, err)
	}
	return nil
}

// ListGroupMembers returns one page of a group's members (default sort
// joinedDate DESC).
func (s *Site) ListGroupMembers(ctx context.Context, groupID string, p Paging) (*GroupMembersPage, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("list group members: %w", err)
	}
	if err := checkPaging(&p); err != nil {
		return nil, fmt.Errorf("list group members of %s: %w", groupID, err)
	}
	var out GroupMembersPage
	err := s.do(ctx, call{op: OpGroupMembersList, method: http.MethodGet, path: s.groupMembersPath(groupID),
		query: pagingQuery(p), out: &out})
	if err != nil {
		return nil, fmt.Errorf("list group members of %s: %w", groupID, err)
	}
	return &out, nil
}

// QueryGroupMembers runs a WQL query on a group's members (filter on role,
// sort on role or joinedDate).
func (s *Site) QueryGroupMembers(ctx context.Context, groupID string, q Query) (*GroupMembersPage, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("query group members: %w", err)
	}
	if err := checkPaging(q.Paging); err != nil {
		return nil, fmt.Errorf("query group members of %s: %w", groupID, err)
	}
	var out GroupMembersPage
	err := s.do(ctx, call{op: OpGroupMembersQuery, method: http.MethodPost, path: s.groupMembersPath(groupID) + "/query",
		body: queryEnvelope{Query: q}, out: &out})
	if err != nil {
		return nil, fmt.Errorf("query group members of %s: %w", groupID, err)
	}
	return &out, nil
}
