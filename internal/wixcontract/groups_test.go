package wixcontract_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"groupflow/internal/failure"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// prefixes are the two group path layouts Wix has published.
var prefixes = []struct {
	name string
	cfg  wix.Config
	path string // expected groups path prefix on the wire
}{
	{"proxy", wix.Config{}, "/social-groups-proxy/groups/v2"},
	{"legacy", wix.Config{GroupsPrefix: wix.LegacyGroupsPrefix, GroupMembersPrefix: wix.LegacyGroupMembersPrefix}, "/social-groups/v2"},
}

// TestGroupsLifecycle runs create/get/list/query/update/delete and the group
// member calls under both path prefixes.
func TestGroupsLifecycle(t *testing.T) {
	for _, p := range prefixes {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{cfg: p.cfg, sim: wixsim.Options{Groups: -1}})
			c := ctx(t)
			ids := e.publicMemberIDs(siteA)
			creator := ids[1]

			g, err := e.site.CreateGroup(c, wix.Group{Name: "Book Club", Description: "Reading together", PrivacyStatus: wix.PrivacyPrivate}, creator)
			if err != nil {
				t.Fatal(err)
			}
			if g.ID == "" || g.Name != "Book Club" || g.PrivacyStatus != wix.PrivacyPrivate || g.Slug != "book-club" {
				t.Fatalf("created group %+v", g)
			}
			if g.MembersCount != 1 || g.OwnerID != creator || g.CreatedDate == nil || g.LastActivityDate == nil {
				t.Fatalf("creator should be the only member and owner: %+v", g)
			}
			if e.tr.count(p.path+"/groups") != 1 {
				t.Fatalf("create did not use prefix %s", p.path)
			}

			got, err := e.site.GetGroup(c, g.ID)
			if err != nil || got.ID != g.ID || got.Description != "Reading together" {
				t.Fatalf("get: %+v, %v", got, err)
			}

			// The creator is an ADMIN; adds and removes keep membersCount.
			added, err := e.site.AddGroupMembers(c, g.ID, ids[2:7])
			if err != nil || len(added) != 5 {
				t.Fatalf("add: %v, %v", added, err)
			}
			for _, m := range added {
				if m.Role != wix.RoleMember || m.JoinedDate == nil {
					t.Fatalf("added member %+v", m)
				}
			}
			// Adding again is idempotent: the answer lists the member again
			// (every id that is a member afterwards; unconfirmed on Wix).
			if again, err := e.site.AddGroupMembers(c, g.ID, ids[2:3]); err != nil || len(again) != 1 || again[0].MemberID != ids[2] {
				t.Fatalf("re-add: %v, %v", again, err)
			}
			if err := e.site.RemoveGroupMembers(c, g.ID, ids[5:7]); err != nil {
				t.Fatal(err)
			}
			lp, err := e.site.ListGroupMembers(c, g.ID, wix.Paging{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(lp.Members) != 4 || lp.Metadata.Total != 4 || lp.Metadata.Count != 4 {
				t.Fatalf("list members: %+v", lp)
			}
			qp, err := e.site.QueryGroupMembers(c, g.ID, wix.Query{Filter: map[string]any{"role": map[string]any{"$eq": wix.RoleAdmin}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(qp.Members) != 1 || qp.Members[0].MemberID != creator || qp.Members[0].Role != wix.RoleAdmin {
				t.Fatalf("admins: %+v", qp.Members)
			}
			got, _ = e.site.GetGroup(c, g.ID)
			if got.MembersCount != 4 {
				t.Fatalf("membersCount %d after adds/removes, want 4", got.MembersCount)
			}

			up, err := e.site.UpdateGroup(c, wix.Group{ID: g.ID, Name: "Book Club 2", Teaser: "new"})
			if err != nil {
				t.Fatal(err)
			}
			if up.Name != "Book Club 2" || up.Teaser != "new" || up.Description != "Reading together" || up.Slug != "book-club-2" {
				t.Fatalf("update: %+v", up)
			}

			if _, err := e.site.CreateGroup(c, wix.Group{Name: "Chess"}, ""); err != nil {
				t.Fatal(err)
			}
			list, err := e.site.ListGroups(c, wix.Paging{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if list.Metadata.Total != 2 || len(list.Groups) != 2 || list.Groups[0].Name != "Chess" {
				t.Fatalf("list (createdDate DESC): %+v", list)
			}
			q, err := e.site.QueryGroups(c, wix.Query{
				Filter: map[string]any{"title": map[string]any{"$startsWith": "book"}},
				Sort:   []wix.Sort{{FieldName: "membersCount", Order: "DESC"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Groups) != 1 || q.Groups[0].ID != g.ID {
				t.Fatalf("query: %+v", q)
			}

			del, err := e.site.DeleteGroup(c, g.ID)
			if err != nil || del.ID != g.ID {
				t.Fatalf("delete: %+v, %v", del, err)
			}
			_, err = e.site.GetGroup(c, g.ID)
			if !wix.IsNotFound(err) || !failure.IsPermanent(err) {
				t.Fatalf("get deleted: %v", err)
			}
		})
	}
}

// TestNotFound: every call on an unknown group is a permanent 404.
func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	c := ctx(t)
	const id = "00000000-0000-0000-0000-00000000dead"
	member := e.memberIDs(siteA)[0]
	calls := []struct {
		name string
		do   func() error
	}{
		{"groups.get", func() error { _, err := e.site.GetGroup(c, id); return err }},
		{"groups.update", func() error { _, err := e.site.UpdateGroup(c, wix.Group{ID: id, Name: "x"}); return err }},
		{"groups.delete", func() error { _, err := e.site.DeleteGroup(c, id); return err }},
		{"groupMembers.add", func() error { _, err := e.site.AddGroupMembers(c, id, []string{member}); return err }},
		{"groupMembers.remove", func() error { return e.site.RemoveGroupMembers(c, id, []string{member}) }},
		{"groupMembers.list", func() error { _, err := e.site.ListGroupMembers(c, id, wix.Paging{}); return err }},
		{"groupMembers.query", func() error { _, err := e.site.QueryGroupMembers(c, id, wix.Query{}); return err }},
		{"questions.list", func() error { _, err := e.site.ListMembershipQuestions(c, id); return err }},
		{"questions.replace", func() error { _, err := e.site.ReplaceMembershipQuestions(c, id, nil); return err }},
		{"questions.listAnswers", func() error { _, err := e.site.ListAnswers(c, id, nil, wix.Paging{}); return err }},
		{"rules.list", func() error { _, err := e.site.ListRules(c, id); return err }},
		{"rules.replace", func() error { _, err := e.site.ReplaceRules(c, id, nil); return err }},
		{"members.get", func() error { _, err := e.site.GetMember(c, id); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !wix.IsNotFound(err) {
				t.Fatalf("want 404, got %v", err)
			}
			if !failure.IsPermanent(err) {
				t.Errorf("404 should be permanent: %v", err)
			}
			if ae := apiErr(t, err, http.StatusNotFound); ae.Code == "" || ae.Message == "" {
				t.Errorf("404 without Wix code/message: %+v", ae)
			}
		})
	}
}

// TestPaging pages across page boundaries: 250 members → 100/100/50, with
// the client's page iterators and explicit pages.
func TestPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: 250, Groups: -1}})
	c := ctx(t)
	ids := e.memberIDs(siteA)
	if len(ids) != 250 {
		t.Fatalf("seeded %d members", len(ids))
	}
	type meta struct{ count, offset, total int }
	want := []meta{{100, 0, 250}, {100, 100, 250}, {50, 200, 250}}
	check := func(t *testing.T, got []meta) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("pages %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("page %d metadata %v, want %v", i, got[i], want[i])
			}
		}
	}

	t.Run("members.query iterator", func(t *testing.T) {
		var got []meta
		seen := map[string]bool{}
		for page, err := range e.site.MemberPages(c, wix.MembersQuery{}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, meta{len(page.Members), page.Metadata.Offset, page.Metadata.Total})
			if page.Metadata.Count != len(page.Members) {
				t.Fatalf("metadata.count %d for %d members", page.Metadata.Count, len(page.Members))
			}
			for _, m := range page.Members {
				if seen[m.ID] {
					t.Fatalf("member %s twice", m.ID)
				}
				seen[m.ID] = true
			}
		}
		check(t, got)
		if len(seen) != 250 {
			t.Fatalf("saw %d members", len(seen))
		}
	})

	// A group of 250: the creator plus 249 added in chunks of 100.
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Everyone"}, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range wix.Chunk(ids[1:], wix.MaxMemberIDsPerAdd) {
		if _, err := e.site.AddGroupMembers(c, g.ID, chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Members with a private profile were invited: they accept.
	for _, id := range e.sim.Site(siteA).Invited(g.ID) {
		e.sim.Site(siteA).AcceptInvitation(g.ID, id)
	}
	t.Run("groupMembers.list iterator", func(t *testing.T) {
		var got []meta
		n := 0
		for page, err := range e.site.GroupMemberPages(c, g.ID, 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, meta{len(page.Members), page.Metadata.Offset, page.Metadata.Total})
			n += len(page.Members)
		}
		check(t, got)
		if n != 250 {
			t.Fatalf("iterated %d group members", n)
		}
	})
	t.Run("groupMembers.query pages", func(t *testing.T) {
		var got []meta
		for off := 0; off < 250; off += 100 {
			p, err := e.site.QueryGroupMembers(c, g.ID, wix.Query{Paging: &wix.Paging{Limit: 100, Offset: off}})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, meta{len(p.Members), p.Metadata.Offset, p.Metadata.Total})
		}
		check(t, got)
	})
	t.Run("groups.query iterator", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			if _, err := e.site.CreateGroup(c, wix.Group{Name: "Group " + string(rune('A'+i))}, ""); err != nil {
				t.Fatal(err)
			}
		}
		var sizes []int
		for page, err := range e.site.GroupPages(c, wix.Query{Paging: &wix.Paging{Limit: 2}}) {
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Groups))
			if page.Metadata.Total != 5 {
				t.Fatalf("total %d, want 5", page.Metadata.Total)
			}
		}
		if len(sizes) != 3 || sizes[0] != 2 || sizes[1] != 2 || sizes[2] != 1 {
			t.Fatalf("page sizes %v, want [2 2 1]", sizes)
		}
		lp, err := e.site.ListGroups(c, wix.Paging{Limit: 2, Offset: 4})
		if err != nil || len(lp.Groups) != 1 || lp.Metadata.Offset != 4 || lp.Metadata.Total != 5 {
			t.Fatalf("list last page: %+v, %v", lp, err)
		}
	})
	t.Run("beyond the end", func(t *testing.T) {
		p, err := e.site.QueryMembers(c, wix.MembersQuery{Paging: &wix.Paging{Limit: 100, Offset: 300}})
		if err != nil || len(p.Members) != 0 || p.Metadata.Total != 250 {
			t.Fatalf("%+v, %v", p, err)
		}
	})
}

// TestSiteIsolation: each site id has its own data.
func TestSiteIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	c := ctx(t)
	if err := e.client.AddSite(siteB, wix.Credentials{APIKey: apiKey}); err != nil {
		t.Fatal(err)
	}
	b, _ := e.client.Site("contract-site-b")
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Only on A"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetGroup(c, g.ID); !wix.IsNotFound(err) {
		t.Fatalf("site B sees site A's group: %v", err)
	}
	_, err = e.client.Site("nope")
	if !errors.Is(err, wix.ErrUnknownSite) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown site: %v", err)
	}
}
