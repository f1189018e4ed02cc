package wixcontract_test

import (
	"slices"
	"testing"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// TestMembersFieldsets: PUBLIC returns id, contactId, dates and profile with
// UNKNOWN statuses; EXTENDED adds loginEmail and real statuses; FULL adds the
// contact's names, emails and phones.
func TestMembersFieldsets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	c := ctx(t)
	ada := e.sim.Site(siteA).AddMember(wixsim.MemberSeed{
		FirstName: "Ada", LastName: "Lovelace", LoginEmail: "ada@example.com",
		Emails: []string{"ada.work@example.com"}, Phones: []string{"+1 212 555 0142"},
	})
	type want struct {
		loginEmail, status string
		contact, lastLogin bool
	}
	tests := []struct {
		fieldsets []string
		want      want
	}{
		{nil, want{"", "UNKNOWN", false, false}},
		{[]string{wix.FieldsetPublic}, want{"", "UNKNOWN", false, false}},
		{[]string{wix.FieldsetExtended}, want{"ada@example.com", "APPROVED", false, false}},
		{[]string{wix.FieldsetFull}, want{"ada@example.com", "APPROVED", true, true}},
		{[]string{wix.FieldsetPublic, wix.FieldsetExtended, wix.FieldsetFull}, want{"ada@example.com", "APPROVED", true, true}},
	}
	check := func(t *testing.T, m wix.Member, w want) {
		t.Helper()
		if m.ID != ada.ID || m.ContactID != ada.ContactID || m.Profile.Nickname != "Ada L." || m.Profile.Slug == "" || m.CreatedDate == nil {
			t.Fatalf("public fields missing: %+v", m)
		}
		if m.LoginEmail != w.loginEmail || m.Status != w.status {
			t.Fatalf("loginEmail %q status %q, want %q %q", m.LoginEmail, m.Status, w.loginEmail, w.status)
		}
		hasContact := len(m.Contact.Emails) > 0 || len(m.Contact.Phones) > 0 || m.Contact.FirstName != ""
		if hasContact != w.contact || (m.LastLoginDate != nil) != w.lastLogin {
			t.Fatalf("contact %+v lastLogin %v, want contact=%v lastLogin=%v", m.Contact, m.LastLoginDate, w.contact, w.lastLogin)
		}
		if w.contact {
			if m.Contact.FirstName != "Ada" || m.Contact.LastName != "Lovelace" ||
				!slices.Equal(m.Contact.Emails, []string{"ada@example.com", "ada.work@example.com"}) ||
				!slices.Equal(m.Contact.Phones, []string{"+1 212 555 0142"}) {
				t.Fatalf("FULL contact %+v", m.Contact)
			}
		}
		if m.Email() != w.loginEmail {
			t.Fatalf("Email() = %q", m.Email())
		}
	}
	for _, tt := range tests {
		t.Run(fmtSets(tt.fieldsets), func(t *testing.T) {
			p, err := e.site.QueryMembers(c, wix.MembersQuery{
				Filter:    map[string]any{"loginEmail": map[string]any{"$in": []string{"ADA@example.com"}}},
				Fieldsets: tt.fieldsets,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Members) != 1 || p.Metadata.Total != 1 {
				t.Fatalf("query: %+v", p)
			}
			check(t, p.Members[0], tt.want)
			m, err := e.site.GetMember(c, ada.ID, tt.fieldsets...)
			if err != nil {
				t.Fatal(err)
			}
			check(t, *m, tt.want)
		})
	}
}

func fmtSets(s []string) string {
	if len(s) == 0 {
		return "default"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "+" + x
	}
	return out
}

// TestMembersQueryFeatures: filters, sorting (sent as "sorting") and search.
func TestMembersQueryFeatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: -1}})
	c := ctx(t)
	st := e.sim.Site(siteA)
	var ids []string
	for _, n := range []struct{ first, last string }{{"Zoe", "Adams"}, {"Ann", "Brown"}, {"Max", "Adams"}} {
		ids = append(ids, st.AddMember(wixsim.MemberSeed{FirstName: n.first, LastName: n.last, LoginEmail: n.first + "@example.com"}).ID)
	}
	tests := []struct {
		name string
		q    wix.MembersQuery
		want []string
	}{
		{"id $in", wix.MembersQuery{Filter: map[string]any{"id": map[string]any{"$in": []string{ids[2], ids[0]}}}}, []string{ids[0], ids[2]}},
		{"lastName $eq, sorting firstName", wix.MembersQuery{
			Filter:  map[string]any{"contact.lastName": "Adams"},
			Sorting: []wix.Sort{{FieldName: "contact.firstName"}},
		}, []string{ids[2], ids[0]}},
		{"sorting nickname DESC", wix.MembersQuery{Sorting: []wix.Sort{{FieldName: "profile.nickname", Order: "DESC"}}}, []string{ids[0], ids[2], ids[1]}},
		{"search", wix.MembersQuery{Search: &wix.MembersSearch{Expression: "brown", Fields: []string{"contact.lastName"}}}, []string{ids[1]}},
		{"$or", wix.MembersQuery{Filter: map[string]any{"$or": []any{
			map[string]any{"contact.firstName": "Ann"}, map[string]any{"contact.firstName": "Max"},
		}}}, []string{ids[1], ids[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.site.QueryMembers(c, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range p.Members {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEmailSubscriptions: top-level filter email $in; emails without a
// record are absent and read as NOT_SET.
func TestEmailSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: -1}})
	c := ctx(t)
	st := e.sim.Site(siteA)
	st.SetSubscription("a@example.com", wix.StatusSubscribed)
	st.SetSubscription("b@example.com", wix.StatusUnsubscribed)
	st.SetSubscription("c@example.com", wix.StatusPending)
	emails := []string{"A@example.com", "b@example.com", "c@example.com", "none@example.com"}
	p, err := e.site.QueryEmailSubscriptions(c, emails, wix.Paging{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Subscriptions) != 3 || p.Metadata.Total != 3 {
		t.Fatalf("page %+v", p)
	}
	want := map[string]string{"A@example.com": wix.StatusSubscribed, "b@example.com": wix.StatusUnsubscribed,
		"c@example.com": wix.StatusPending, "none@example.com": wix.StatusNotSet}
	for em, w := range want {
		if got := p.Status(em); got != w {
			t.Errorf("Status(%s) = %s, want %s", em, got, w)
		}
	}
	for _, s := range p.Subscriptions {
		if s.ID == "" || s.DeliverabilityStatus == "" || s.CreatedDate == nil {
			t.Errorf("subscription fields missing: %+v", s)
		}
	}
	// Paging across the $in results.
	p2, err := e.site.QueryEmailSubscriptions(c, emails, wix.Paging{Limit: 2, Offset: 2})
	if err != nil || len(p2.Subscriptions) != 1 || p2.Metadata.Offset != 2 || p2.Metadata.Total != 3 {
		t.Fatalf("second page %+v, %v", p2, err)
	}
	before := e.sim.TotalCalls(siteA)
	if p, err := e.site.QueryEmailSubscriptions(c, nil, wix.Paging{}); err != nil || len(p.Subscriptions) != 0 {
		t.Fatalf("no emails: %+v %v", p, err)
	}
	if e.sim.TotalCalls(siteA) != before {
		t.Fatal("no emails should cost no call")
	}
}

// TestContactsQuery resolves a phone through Contacts, then the member by
// contactId (the documented phone flow).
func TestContactsQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: -1}})
	c := ctx(t)
	st := e.sim.Site(siteA)
	m := st.AddMember(wixsim.MemberSeed{FirstName: "Grace", LastName: "Hopper", LoginEmail: "grace@example.com", Phones: []string{"+1 212 555 0199"}})
	st.AddContact(wixsim.ContactSeed{FirstName: "Not", LastName: "Member", Phones: []string{"+44 20 7946 0000"}})
	p, err := e.site.QueryContacts(c, wix.Query{Filter: map[string]any{"info.phones.phone": map[string]any{"$in": []string{"+1 212 555 0199"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Contacts) != 1 || p.Metadata.Total != 1 {
		t.Fatalf("contacts %+v", p)
	}
	ct := p.Contacts[0]
	if ct.ID != m.ContactID || ct.FirstName != "Grace" || ct.LastName != "Hopper" || len(ct.Phones) != 1 ||
		!slices.Equal(ct.Emails, []string{"grace@example.com"}) {
		t.Fatalf("contact %+v", ct)
	}
	mp, err := e.site.QueryMembers(c, wix.MembersQuery{Filter: map[string]any{"contactId": map[string]any{"$in": []string{ct.ID}}}, Fieldsets: []string{wix.FieldsetFull}})
	if err != nil || len(mp.Members) != 1 || mp.Members[0].ID != m.ID {
		t.Fatalf("member by contact: %+v, %v", mp, err)
	}
	all, err := e.site.QueryContacts(c, wix.Query{Paging: &wix.Paging{Limit: 1, Offset: 1}})
	if err != nil || len(all.Contacts) != 1 || all.Metadata.Total != 2 || all.Metadata.Offset != 1 {
		t.Fatalf("contacts paging %+v, %v", all, err)
	}
}
