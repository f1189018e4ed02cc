package wixsim

import (
	"testing"
)

// TestGroupMembersQueryFilterFields: Query Group Members filters on role
// only, with eq, ne, hasSome, in and exists
// (@wix/auto_sdk_groups_members@1.0.19 build/cjs/index.typings.d.ts,
// MembersQueryBuilder). A filter Wix refuses (memberId) is refused here too,
// and one Wix serves ($hasSome on role) is served.
func TestGroupMembersQueryFilterFields(t *testing.T) {
	e := newEnv(t, Options{})
	st := e.srv.Site(testSite)
	all := st.Members()
	g := st.AddGroup("Filter Fidelity", "PUBLIC", all[0].ID, all[1].ID, all[2].ID)
	q := M + "/groups/" + g.ID + "/members/query"

	r := e.call("POST", q, map[string]any{"query": map[string]any{"filter": map[string]any{"memberId": map[string]any{"$eq": all[1].ID}}}})
	if r.status != 400 || violation(r) != "query.filter.memberId" {
		t.Fatalf("memberId filter: status %d field %q, want 400 query.filter.memberId: %v", r.status, violation(r), r.body)
	}

	ok := e.ok("POST", q, map[string]any{"query": map[string]any{"filter": map[string]any{"role": map[string]any{"$hasSome": []any{"ADMIN"}}}}})
	if n := len(list(ok, "members")); n != 1 || str(ok, "members", 0, "memberId") != all[0].ID || str(ok, "members", 0, "role", "value") != "ADMIN" {
		t.Fatalf("role $hasSome ADMIN: %v", ok)
	}
}
