package wixsim

import (
	"slices"
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

// TestContactsFilterOperators: Contacts v4 serves $ne and $exists on id,
// the phone fields and the email fields besides $eq, $in and $startsWith
// (https://dev.wix.com/docs/rest/api-reference/contacts/contacts/contact-v4/sort-filter-and-search:
// id "$eq, $ne, $in, $exists"; primaryInfo.email, primaryInfo.phone,
// info.emails.email, info.phones.phone, info.phones.e164Phone "$eq, $ne,
// $in, $exists, $startsWith").
func TestContactsFilterOperators(t *testing.T) {
	e := newEnv(t, Options{})
	st, zoe, jose, ann, anon := scenario(t, e)
	lead := st.AddContact(ContactSeed{FirstName: "Lead", Phones: []string{"+44 20 7946 0123"}})
	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"id $ne", map[string]any{"id": map[string]any{"$ne": zoe.ContactID}}, []string{jose.ContactID, ann.ContactID, anon.ContactID, lead}},
		{"id $exists", map[string]any{"id": map[string]any{"$exists": true}}, []string{zoe.ContactID, jose.ContactID, ann.ContactID, anon.ContactID, lead}},
		{"e164Phone $exists", map[string]any{"info.phones.e164Phone": map[string]any{"$exists": true}}, []string{zoe.ContactID, jose.ContactID, lead}},
		{"e164Phone $ne", map[string]any{"info.phones.e164Phone": map[string]any{"$ne": "+12125550142"}}, []string{jose.ContactID, ann.ContactID, anon.ContactID, lead}},
		{"phone $exists false", map[string]any{"info.phones.phone": map[string]any{"$exists": false}}, []string{ann.ContactID, anon.ContactID}},
		{"primary phone $ne", map[string]any{"primaryInfo.phone": map[string]any{"$ne": "(415) 555-0101"}}, []string{zoe.ContactID, ann.ContactID, anon.ContactID, lead}},
		{"email $exists", map[string]any{"info.emails.email": map[string]any{"$exists": true}}, []string{zoe.ContactID, jose.ContactID, ann.ContactID}},
		{"primary email $ne", map[string]any{"primaryInfo.email": map[string]any{"$ne": "jose@example.com"}}, []string{zoe.ContactID, ann.ContactID, anon.ContactID, lead}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("POST", "/contacts/v4/contacts/query", map[string]any{"query": map[string]any{"filter": c.filter, "paging": map[string]any{"limit": 10}}})
			if r.status != 200 {
				t.Fatalf("status %d: %v", r.status, r.body)
			}
			var got []string
			for _, ct := range list(r.body, "contacts") {
				got = append(got, str(ct, "id"))
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v want %v", got, want)
			}
		})
	}
}
