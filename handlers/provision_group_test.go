package handlers

import (
	"context"
	"errors"
	"fmt"
	"groupflow/internal/runtime"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

func provisionHandler(e *wfEnv) *ProvisionGroup {
	return NewProvisionGroup(e.Sites, e.Ledger, ProvisionConfig{DefaultRegion: "US"}, e.Log)
}

func provisioned(t *testing.T, e *wfEnv, m *nats.Msg) messages.GroupProvisioned {
	t.Helper()
	return expect[messages.GroupProvisioned](t, e, m, messages.EvtGroupProvisioned)
}

// sameSet compares id lists as sets (each id once).
func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("%s:\n got %v\nwant %v", what, g, w)
	}
}

func TestProvisionMixedRoster(t *testing.T) {
	e := newWF(t)
	st := e.Site
	owner := st.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner", LoginEmail: "owner@example.com"})
	ann := st.AddMember(wixsim.MemberSeed{FirstName: "Ann", LastName: "Lee", LoginEmail: "ann@example.com"})
	bob := st.AddMember(wixsim.MemberSeed{FirstName: "Bob", LastName: "Stone", LoginEmail: "bob@example.com"})
	carol := st.AddMember(wixsim.MemberSeed{FirstName: "Carol", LastName: "Ng", LoginEmail: "carol@example.com", Phones: []string{"(212) 555-0142"}})
	jose := st.AddMember(wixsim.MemberSeed{FirstName: "José", LastName: "García", LoginEmail: "jose@example.com"})
	zoe := st.AddMember(wixsim.MemberSeed{FirstName: "Zoë", LastName: "Brandt", Nickname: "Zoë B", LoginEmail: "zoe@example.com"})
	st.AddMember(wixsim.MemberSeed{FirstName: "Sam", LastName: "Lee", LoginEmail: "sam1@example.com"})
	st.AddMember(wixsim.MemberSeed{FirstName: "Sam", LastName: "Lee", LoginEmail: "sam2@example.com"})
	// A contact (not a member) with a phone, and two members sharing one.
	st.AddContact(wixsim.ContactSeed{FirstName: "Not", LastName: "Member", Phones: []string{"+1 212 555 0199"}})
	st.AddMember(wixsim.MemberSeed{FirstName: "Twin", LastName: "One", LoginEmail: "t1@example.com", Phones: []string{"+44 20 7946 0001"}})
	st.AddMember(wixsim.MemberSeed{FirstName: "Twin", LastName: "Two", LoginEmail: "t2@example.com", Phones: []string{"+44 20 7946 0001"}})
	e.start(runtime.Adapt(provisionHandler(e)))

	people := []messages.Person{
		{Email: "ANN@example.com", Ref: "r0"},      // 0 email, case-insensitive
		{ContactID: bob.ContactID, Ref: "r1"},      // 1 contact id
		{Phone: "212.555.0142", Ref: "r2"},         // 2 phone, default region US
		{Name: "  jose   GARCIA ", Ref: "r3"},      // 3 name, accent- and case-insensitive
		{FirstName: "zoe", LastName: "b"},          // 4 nickname "Zoë B"
		{Name: "Sam Lee", Ref: "r5"},               // 5 ambiguous
		{Email: "nobody@example.com", Ref: "r6"},   // 6 not found
		{Email: "not-an-email", Ref: "r7"},         // 7 invalid
		{Phone: "12345", Ref: "r8"},                // 8 plausible, not a possible number
		{Ref: "r9"},                                // 9 no identifier
		{ContactID: ann.ContactID, Ref: "r10"},     // 10 duplicate of row 0
		{Email: "ann@example.com", Ref: "r11"},     // 11 duplicate of row 0
		{Phone: "+1 (212) 555-0199", Ref: "r12"},   // 12 contact, not a member
		{Phone: "+442079460001", Ref: "r13"},       // 13 two members
		{Name: "Nobody Here", Ref: "r14"},          // 14 name not found
		{Email: "owner@example.com", Ref: "r15"},   // 15 the creator: already a member
		{ContactID: "no-such-contact", Ref: "r16"}, // 16 unknown contact id
		{Phone: "+1 212 555 0100", Ref: "r17"},     // 17 no contact
	}
	body := map[string]any{"group": map[string]any{"name": "Yoga Monday", "privacyStatus": "PRIVATE", "description": "Mondays"}, "people": people}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "mixed-1", body))

	wantNotAdded := []messages.RowOutcome{
		{Row: 6, Ref: "r5", Kind: "name", Reason: messages.ReasonAmbiguous, Detail: detailAmbiguousName, Candidates: 2},
		{Row: 7, Ref: "r6", Kind: "email", Reason: messages.ReasonNotFound, Detail: detailNoMemberEmail},
		{Row: 8, Ref: "r7", Kind: "email", Reason: messages.ReasonInvalid, Detail: messages.ProblemMalformedEmail},
		{Row: 9, Ref: "r8", Kind: "phone", Reason: messages.ReasonInvalid, Detail: detailUnparsablePhone},
		{Row: 10, Ref: "r9", Reason: messages.ReasonInvalid, Detail: messages.ProblemNoIdentifier},
		{Row: 11, Ref: "r10", Kind: "contactId", Reason: messages.ReasonDuplicate, Detail: "same member as row 1 (ref r0)"},
		{Row: 12, Ref: "r11", Kind: "email", Reason: messages.ReasonDuplicate, Detail: "same member as row 1 (ref r0)"},
		{Row: 13, Ref: "r12", Kind: "phone", Reason: messages.ReasonNotFound, Detail: detailPhoneNotMember},
		{Row: 14, Ref: "r13", Kind: "phone", Reason: messages.ReasonAmbiguous, Detail: detailAmbiguousPhone, Candidates: 2},
		{Row: 15, Ref: "r14", Kind: "name", Reason: messages.ReasonNotFound, Detail: detailNoMemberName},
		{Row: 17, Ref: "r16", Kind: "contactId", Reason: messages.ReasonNotFound, Detail: detailNoMemberContact},
		{Row: 18, Ref: "r17", Kind: "phone", Reason: messages.ReasonNotFound, Detail: detailNoContactPhone},
	}
	if !reflect.DeepEqual(ev.NotAdded, wantNotAdded) {
		t.Errorf("notAdded:\n got %+v\nwant %+v", ev.NotAdded, wantNotAdded)
	}
	// 1 query groups + 1 create + 1 members by email + 1 contacts by phone
	// + 1 members by contact id + 1 name scan page (11 members) + 1 add.
	if ev.Added != 5 || ev.AlreadyMembers != 1 || ev.Reused || ev.Removed != nil || ev.Name != "Yoga Monday" || ev.WixCalls != 7 {
		t.Errorf("event = %+v", ev)
	}
	g, ok := st.Group(ev.GroupID)
	if !ok || g.Slug != ev.Slug || g.PrivacyStatus != "PRIVATE" || g.Description != "Mondays" {
		t.Fatalf("group %+v", g)
	}
	sameSet(t, "members", st.GroupMemberIDs(ev.GroupID), []string{owner.ID, ann.ID, bob.ID, carol.ID, jose.ID, zoe.ID})
	if got := e.Wix.Calls(); got != 7 {
		t.Errorf("simulator calls %d, want 7: %v", got, e.Wix.Sim.Calls(e.Wix.SiteID))
	}
}

// TestProvisionCallBudget asserts the formula exactly:
// 1 query + 1 create + ⌈n/100⌉ member queries + ⌈resolved/100⌉ adds (+1 questions, +1 rules).
func TestProvisionCallBudget(t *testing.T) {
	e := newWF(t)
	const total = 10000
	// The site owner (the first member) creates the groups; the roster is
	// made of the others.
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner", LoginEmail: "owner@example.com"})
	members := make([]wixsim.Member, total)
	for i := range total {
		members[i] = e.Site.AddMember(wixsim.MemberSeed{FirstName: "M", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("m%05d@example.com", i)})
	}
	e.start(runtime.Adapt(provisionHandler(e)))
	ceil := func(n int) int64 { return int64((n + 99) / 100) }
	tests := []struct {
		n, unknown int
		by         string
		extras     bool
		short      bool
	}{
		{n: 10, by: "email", short: true},
		{n: 100, by: "email", short: true},
		{n: 1000, by: "email", short: true},
		{n: 10000, by: "email"},
		{n: 10, by: "contactId", extras: true, short: true},
		{n: 1000, by: "contactId", short: true},
		{n: 250, unknown: 50, by: "email", extras: true, short: true}, // 200 resolved: 2 adds
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d-%d-extras=%v", tt.by, tt.n, tt.unknown, tt.extras), func(t *testing.T) {
			if testing.Short() && !tt.short {
				t.Skip("10,000 rows")
			}
			people := make([]messages.Person, tt.n)
			for i := range tt.n {
				m := members[i]
				switch {
				case i >= tt.n-tt.unknown:
					people[i] = messages.Person{Email: fmt.Sprintf("unknown%d@example.org", i)}
				case tt.by == "email":
					people[i] = messages.Person{Email: m.LoginEmail}
				default:
					people[i] = messages.Person{ContactID: m.ContactID}
				}
			}
			name := fmt.Sprintf("Budget %s %d %d", tt.by, tt.n, tt.unknown)
			body := map[string]any{"group": map[string]any{"name": name}, "people": people}
			want := 2 + ceil(tt.n) + ceil(tt.n-tt.unknown)
			if tt.extras {
				body["questions"] = []messages.Question{{Text: "Why?"}}
				body["rules"] = []messages.Rule{{Title: "Be kind"}}
				want += 2
			}
			e.Wix.Sim.ResetCalls()
			start := time.Now()
			ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "budget-"+strings.ReplaceAll(name, " ", "-"), body))
			t.Logf("n=%d (%s, %d unknown): %d Wix calls in %s", tt.n, tt.by, tt.unknown, ev.WixCalls, time.Since(start).Round(time.Millisecond))
			if ev.WixCalls != want || e.Wix.Calls() != want {
				t.Fatalf("wixCalls %d, simulator %d, want %d: %v", ev.WixCalls, e.Wix.Calls(), want, e.Wix.Sim.Calls(e.Wix.SiteID))
			}
			if ev.Added != tt.n-tt.unknown || len(ev.NotAdded) != tt.unknown {
				t.Fatalf("added %d, notAdded %d", ev.Added, len(ev.NotAdded))
			}
			if got := len(e.Site.GroupMemberIDs(ev.GroupID)); got != tt.n-tt.unknown+1 {
				t.Fatalf("group has %d members, want %d + creator", got, tt.n-tt.unknown)
			}
			if tt.extras && (len(e.Site.Questions(ev.GroupID)) != 1 || len(e.Site.Rules(ev.GroupID)) != 1) {
				t.Fatal("questions or rules not set")
			}
		})
	}
}

// TestProvisionNamesCost: names cost min(⌈M/100⌉, k+1) calls, k for one name.
func TestProvisionNamesCost(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	for i := range 999 {
		e.Site.AddMember(wixsim.MemberSeed{FirstName: fmt.Sprintf("Fïrst%04d", i), LastName: "Lee", LoginEmail: fmt.Sprintf("n%d@example.com", i)})
	}
	e.start(runtime.Adapt(provisionHandler(e)))
	tests := []struct {
		names     int
		nameCalls int64
	}{
		{1, 1},   // one search
		{3, 4},   // probe + 3 searches (10 pages would cost more)
		{9, 10},  // probe + 9 remaining pages beat probe + 9 searches: scan
		{30, 10}, // scan: 10 pages
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.names), func(t *testing.T) {
			people := make([]messages.Person, tt.names)
			for i := range people {
				people[i] = messages.Person{Name: fmt.Sprintf("FIRST%04d lee", i*7)}
			}
			e.Wix.Sim.ResetCalls()
			ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, fmt.Sprint("names-", tt.names),
				map[string]any{"group": map[string]any{"name": fmt.Sprint("Names ", tt.names)}, "people": people}))
			if ev.Added != tt.names || len(ev.NotAdded) != 0 {
				t.Fatalf("event %+v", ev)
			}
			if got := e.calls(wix.OpMembersQuery); got != tt.nameCalls {
				t.Fatalf("member queries %d, want %d", got, tt.nameCalls)
			}
		})
	}
}

func TestProvisionReuseSyncAndDuplicateName(t *testing.T) {
	e := newWF(t)
	st := e.Site
	var ms []wixsim.Member
	for i := range 6 {
		ms = append(ms, st.AddMember(wixsim.MemberSeed{FirstName: "P", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("p%d@example.com", i)}))
	}
	admin, coAdmin := ms[0], ms[5]
	g := st.AddGroup("Pilates Tuesday", "PUBLIC", admin.ID, ms[1].ID, ms[2].ID)
	st.AddToGroup(g.ID, coAdmin.ID)
	e.start(runtime.Adapt(provisionHandler(e)))
	roster := func(idx ...int) []messages.Person {
		var p []messages.Person
		for _, i := range idx {
			p = append(p, messages.Person{Email: ms[i].LoginEmail})
		}
		return p
	}
	tests := []struct {
		name        string
		body        map[string]any
		wantReused  bool
		wantAdded   int
		wantAlready int
		wantRemoved []string
		wantMembers []string // nil: don't check
		wantCalls   int64
		wantGroups  int
	}{
		{
			name:       "add reuses the group by name",
			body:       map[string]any{"people": roster(1, 3)},
			wantReused: true, wantAdded: 1, wantAlready: 1,
			wantMembers: []string{admin.ID, ms[1].ID, ms[2].ID, ms[3].ID, coAdmin.ID},
			wantCalls:   4, // query + list members + members by email + add
			wantGroups:  1,
		},
		{
			name: "sync removes non-roster members, never admins",
			// 3 of the 5 members go: more than half, so the command says so
			// (TestProvisionSyncMassRemovalGuard covers the refusal).
			body:       map[string]any{"people": roster(1, 4), "membership": "sync", "allowMassRemoval": true},
			wantReused: true, wantAdded: 1, wantAlready: 1,
			wantRemoved: []string{ms[2].ID, ms[3].ID, coAdmin.ID},
			wantMembers: []string{admin.ID, ms[1].ID, ms[4].ID},
			wantCalls:   5, // + 1 remove
			wantGroups:  1,
		},
		{
			name:       "allowDuplicateName creates a second group",
			body:       map[string]any{"people": roster(1), "allowDuplicateName": true},
			wantAdded:  1,
			wantCalls:  4, // query + create + members by email + add
			wantGroups: 2,
		},
	}
	// The co-admin: make it ADMIN of the group to check that sync keeps
	// admins only; here it is a plain member and is removed.
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["group"] = map[string]any{"name": "Pilates Tuesday"}
			e.Wix.Sim.ResetCalls()
			ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, fmt.Sprint("reuse-", i), tt.body))
			if ev.Reused != tt.wantReused || ev.Added != tt.wantAdded || ev.AlreadyMembers != tt.wantAlready || ev.WixCalls != tt.wantCalls {
				t.Fatalf("event %+v", ev)
			}
			sameSet(t, "removed", ev.Removed, tt.wantRemoved)
			if tt.wantReused && ev.GroupID != g.ID {
				t.Fatalf("group %s, want %s", ev.GroupID, g.ID)
			}
			if tt.wantMembers != nil {
				sameSet(t, "members", st.GroupMemberIDs(g.ID), tt.wantMembers)
			}
			if n := len(st.GroupsByName("Pilates Tuesday")); n != tt.wantGroups {
				t.Fatalf("%d groups named Pilates Tuesday, want %d", n, tt.wantGroups)
			}
		})
	}
}

func TestProvisionSyncNeverRemovesAdmins(t *testing.T) {
	e := newWF(t)
	st := e.Site
	a := st.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	b := st.AddMember(wixsim.MemberSeed{FirstName: "B", LoginEmail: "b@example.com"})
	c := st.AddMember(wixsim.MemberSeed{FirstName: "C", LoginEmail: "c@example.com"})
	g := st.AddGroup("Swim Team", "", a.ID, b.ID, c.ID) // a is ADMIN
	e.start(runtime.Adapt(provisionHandler(e)))
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "sync-admin",
		map[string]any{"group": map[string]any{"name": "Swim Team"}, "membership": "sync", "people": []messages.Person{{Email: "b@example.com"}}}))
	sameSet(t, "removed", ev.Removed, []string{c.ID})
	sameSet(t, "members", st.GroupMemberIDs(g.ID), []string{a.ID, b.ID})
}

// TestProvisionCrashMidBatches stops the processor (no ack) in the middle of
// the add batches; the redelivery, on a new processor, resumes: one group,
// every row added once, no batch sent twice.
func TestProvisionCrashMidBatches(t *testing.T) {
	e := newWF(t)
	e.Config.ShutdownGrace = 200 * time.Millisecond
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	var people []messages.Person
	var ids []string
	for i := range 350 {
		m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "C", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("c%d@example.com", i)})
		people = append(people, messages.Person{Email: m.LoginEmail})
		ids = append(ids, m.ID)
	}
	owner := e.Site.OwnerID()
	var crash atomic.Bool
	crash.Store(true)
	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	h := provisionHandler(e)
	h.hook = func(ctx context.Context, point string) error {
		if point == "add.1" && crash.Load() {
			reached <- struct{}{}
			// The processor is shut down while the command is mid-way; the
			// attempt then dies without an ack. (The runtime does not cancel
			// a running handler's context on shutdown: the router waits for
			// it, so the test releases it.)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return errors.New("processor went away")
		}
		return nil
	}
	first := e.start(runtime.Adapt(h))
	e.Publish(messages.CmdProvisionGroup, mustJSON(t, map[string]any{"id": "crash-1", "group": map[string]any{"name": "Crash Class"}, "people": people}))
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("handler never reached batch 1")
	}
	if got := len(e.Site.GroupMemberIDs(e.Site.GroupsByName("Crash Class")[0].ID)); got != 201 {
		t.Fatalf("at the crash the group has %d members, want 200 + creator", got)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- first.Stop() }()
	close(release)
	if err := <-stopped; err != nil {
		t.Logf("stop: %v", err)
	}
	crash.Store(false)
	e.start(runtime.Adapt(h))
	ev := provisioned(t, e, e.Evts.Next(60*time.Second, func(m *nats.Msg) bool { return m.Header.Get("Groupflow-Command-Id") == "crash-1" }))
	groups := e.Site.GroupsByName("Crash Class")
	if len(groups) != 1 || groups[0].ID != ev.GroupID {
		t.Fatalf("groups %+v", groups)
	}
	sameSet(t, "members", e.Site.GroupMemberIDs(ev.GroupID), append(ids, owner))
	if ev.Added != 350 || ev.AlreadyMembers != 0 || len(ev.NotAdded) != 0 {
		t.Fatalf("event %+v", ev)
	}
	// No write redone: one create, 4 adds. The reads are (no checkpoint
	// of them, issue 14): the roster is resolved again (4 member queries)
	// and the group's members listed (3 pages) to see which adds were done.
	c := e.Wix.Sim.Calls(e.Wix.SiteID)
	if c[wix.OpGroupsCreate] != 1 || c[wix.OpGroupMembersAdd] != 4 || c[wix.OpMembersQuery] != 8 || c[wix.OpGroupMembersList] != 3 {
		t.Fatalf("calls %v: want 1 create, 4 adds, 4+4 member queries, 3 member pages", c)
	}
	// Both attempts: query, create, 4 queries, 2 adds | query, 4 queries, 3 pages, 2 adds.
	if ev.WixCalls != 8+10 {
		t.Fatalf("wixCalls %d, want 18", ev.WixCalls)
	}
}

// TestProvisionLostCreateResponse: the create reached Wix but the attempt
// failed before the group id was saved; the retry finds the group by name.
func TestProvisionLostCreateResponse(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	var failed atomic.Bool
	h := provisionHandler(e)
	h.hook = func(_ context.Context, point string) error {
		if point == "created" && failed.CompareAndSwap(false, true) {
			return errors.New("simulated timeout after the create reached Wix")
		}
		return nil
	}
	e.start(runtime.Adapt(h))
	for i, allowDup := range []bool{false, true} {
		failed.Store(false)
		if allowDup {
			e.Site.AddGroup("Lost Response", "")
		}
		e.Wix.Sim.ResetCalls()
		before := len(e.Site.GroupsByName("Lost Response"))
		ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, fmt.Sprint("lost-", i), map[string]any{
			"group": map[string]any{"name": "Lost Response"}, "people": []messages.Person{{Email: m.LoginEmail}}, "allowDuplicateName": allowDup}))
		if got := len(e.Site.GroupsByName("Lost Response")); got != before+1 {
			t.Fatalf("allowDup=%v: %d groups, want %d", allowDup, got, before+1)
		}
		// Both attempts' calls are counted: query, create | query, members,
		// the group's members (what an earlier attempt added), add.
		if ev.Reused || ev.Added != 1 || e.calls(wix.OpGroupsCreate) != 1 || e.calls(wix.OpGroupsQuery) != 2 || e.calls(wix.OpGroupMembersList) != 1 || ev.WixCalls != 6 {
			t.Fatalf("allowDup=%v: event %+v, calls %v", allowDup, ev, e.Wix.Sim.Calls(e.Wix.SiteID))
		}
		if !slices.Contains(e.Site.GroupMemberIDs(ev.GroupID), m.ID) {
			t.Fatal("member not added to the created group")
		}
	}
}

func TestProvisionResentCommandMakesNoWixCall(t *testing.T) {
	e := newWF(t)
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	e.start(runtime.Adapt(provisionHandler(e)))
	body := map[string]any{"group": map[string]any{"name": "Resent"}, "people": []messages.Person{{Email: m.LoginEmail}}}
	first := e.send(messages.CmdProvisionGroup, "resent-1", body)
	provisioned(t, e, first)
	e.Wix.Sim.ResetCalls()
	again := e.send(messages.CmdProvisionGroup, "resent-1", body, nats.MsgIdHdr, "another-publish")
	if string(again.Data) != string(first.Data) || again.Header.Get("ce-id") != first.Header.Get("ce-id") {
		t.Fatalf("different outcome:\n%s\n%s", first.Data, again.Data)
	}
	if n := e.Wix.Calls(); n != 0 {
		t.Fatalf("re-sent command made %d Wix calls", n)
	}
	if n := len(e.Site.GroupsByName("Resent")); n != 1 {
		t.Fatalf("%d groups", n)
	}
}

func TestProvisionTransientFaultsRetriedToSuccess(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	var people []messages.Person
	var ids []string
	for i := range 250 {
		m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "F", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("f%d@example.com", i)})
		people = append(people, messages.Person{Email: m.LoginEmail})
		ids = append(ids, m.ID)
	}
	owner := e.Site.OwnerID()
	e.start(runtime.Adapt(provisionHandler(e)))
	e.Wix.Sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{503: 0.3, 500: 0.1}, Seed: 7})
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "flaky-1", map[string]any{
		"group": map[string]any{"name": "Flaky"}, "people": people, "membership": "sync", "rules": []messages.Rule{{Title: "R"}}}))
	e.Wix.Sim.SetFaults(wixsim.Faults{})
	if n := len(e.Site.GroupsByName("Flaky")); n != 1 {
		t.Fatalf("%d groups", n)
	}
	sameSet(t, "members", e.Site.GroupMemberIDs(ev.GroupID), append(ids, owner))
	if ev.Added != 250 || len(ev.Removed) != 0 || len(e.Site.Rules(ev.GroupID)) != 1 {
		t.Fatalf("event %+v", ev)
	}
}

func TestProvisionPermanentWixErrorIsDeadLettered(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "perm-1", map[string]any{
		"group": map[string]any{"name": "No Creator"}, "creatorId": "no-such-member", "people": []messages.Person{{Email: "a@example.com"}}})
	expectFailed(t, e, m, "perm-1", messages.FailurePermanent, "404")
	if n := len(e.Site.GroupsByName("No Creator")); n != 0 {
		t.Fatalf("%d groups", n)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProvisionSyncMassRemovalGuard: a sync that would remove more than half
// of a group's members, or that keeps no one while removing someone, is
// refused (permanent, dead-lettered) before any member is added or removed,
// unless the command says "allowMassRemoval": true. Unresolved rows do not
// count as members to keep; admins are never removed and count as members.
func TestProvisionSyncMassRemovalGuard(t *testing.T) {
	e := newWF(t)
	st := e.Site
	seed := func(prefix string, n int) []wixsim.Member {
		out := make([]wixsim.Member, n)
		for i := range n {
			out[i] = st.AddMember(wixsim.MemberSeed{FirstName: prefix, LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("%s%d@example.com", prefix, i)})
		}
		return out
	}
	idsOf := func(ms []wixsim.Member) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	roster := func(ms ...wixsim.Member) []messages.Person {
		var p []messages.Person
		for _, m := range ms {
			p = append(p, messages.Person{Email: m.LoginEmail})
		}
		return p
	}
	// The group: 5,000 members (an admin and 4,999 others) and a
	// sync roster of one newcomer.
	big := seed("big", 5000)
	newcomer := st.AddMember(wixsim.MemberSeed{FirstName: "New", LoginEmail: "newcomer@example.com"})
	bigGroup := st.AddGroup("Big Group", "", idsOf(big)...)
	e.start(runtime.Adapt(provisionHandler(e)))

	t.Run("roster of one against 5,000 members: refused, nothing written", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		m := e.send(messages.CmdProvisionGroup, "mass-1", map[string]any{"group": map[string]any{"name": "Big Group"}, "membership": "sync", "people": roster(newcomer)})
		expectFailed(t, e, m, "mass-1", messages.FailurePermanent,
			"sync would remove 4999 of the group's 5000 members, more than half (at most 2500 without allowMassRemoval; 1 of 1 rows resolved to members); send allowMassRemoval:true to allow it")
		if w := e.writes(); w != 0 {
			t.Fatalf("%d writes: %v", w, e.Wix.Sim.Calls(e.Wix.SiteID))
		}
		if n := len(st.GroupMemberIDs(bigGroup.ID)); n != 5000 {
			t.Fatalf("group has %d members, want 5000", n)
		}
	})

	t.Run("with allowMassRemoval: removes them, never the admin", func(t *testing.T) {
		ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "mass-2", map[string]any{"group": map[string]any{"name": "Big Group"}, "membership": "sync", "people": roster(newcomer), "allowMassRemoval": true}))
		if ev.Added != 1 || len(ev.Removed) != 4999 || ev.GroupID != bigGroup.ID {
			t.Fatalf("added %d, removed %d, group %s", ev.Added, len(ev.Removed), ev.GroupID)
		}
		sameSet(t, "members", st.GroupMemberIDs(bigGroup.ID), []string{big[0].ID, newcomer.ID})
	})

	// A group of 10: an admin and 9 others.
	ten := seed("ten", 10)
	unknown := func(n int) []messages.Person {
		var p []messages.Person
		for i := range n {
			p = append(p, messages.Person{Email: fmt.Sprintf("nobody%d@example.org", i)})
		}
		return p
	}
	tests := []struct {
		name    string
		people  []messages.Person
		removed int    // when accepted
		reason  string // when refused
	}{
		{name: "removing fewer than half: done", people: roster(ten[1:6]...), removed: 4},
		{name: "removing exactly half: done", people: roster(ten[1:5]...), removed: 5},
		{name: "removing more than half: refused", people: roster(ten[1:4]...),
			reason: "sync would remove 6 of the group's 10 members, more than half (at most 5 without allowMassRemoval; 3 of 3 rows resolved to members)"},
		{name: "unresolved rows are not kept: refused", people: append(roster(ten[1:4]...), unknown(6)...),
			reason: "sync would remove 6 of the group's 10 members, more than half (at most 5 without allowMassRemoval; 3 of 9 rows resolved to members)"},
		{name: "no row resolves: refused", people: unknown(3),
			reason: "sync would remove 9 of the group's 10 members and no row of the roster resolved to a member (0 of 3 rows)"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprint("Ten ", i)
			g := st.AddGroup(name, "", idsOf(ten)...)
			e.Wix.Sim.ResetCalls()
			id := fmt.Sprint("ten-", i)
			m := e.send(messages.CmdProvisionGroup, id, map[string]any{"group": map[string]any{"name": name}, "membership": "sync", "people": tt.people})
			if tt.reason != "" {
				expectFailed(t, e, m, id, messages.FailurePermanent, tt.reason)
				if w := e.writes(); w != 0 || len(st.GroupMemberIDs(g.ID)) != 10 {
					t.Fatalf("%d writes, %d members", w, len(st.GroupMemberIDs(g.ID)))
				}
				return
			}
			ev := provisioned(t, e, m)
			if len(ev.Removed) != tt.removed || len(st.GroupMemberIDs(g.ID)) != 10-tt.removed {
				t.Fatalf("removed %d, want %d; %d members left", len(ev.Removed), tt.removed, len(st.GroupMemberIDs(g.ID)))
			}
		})
	}

	t.Run("a new group has no one to remove", func(t *testing.T) {
		ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "new-sync", map[string]any{"group": map[string]any{"name": "Brand New"}, "membership": "sync", "people": unknown(2)}))
		if ev.Reused || len(ev.Removed) != 0 || len(ev.NotAdded) != 2 {
			t.Fatalf("event %+v", ev)
		}
	})

	t.Run("empty roster: invalid, no Wix call", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		m := e.send(messages.CmdProvisionGroup, "empty-sync", map[string]any{"group": map[string]any{"name": "Big Group"}, "membership": "sync", "people": []messages.Person{}})
		expectFailed(t, e, m, "empty-sync", messages.FailureInvalid, "allowMassRemoval:true")
		if n := e.Wix.Calls(); n != 0 {
			t.Fatalf("%d Wix calls", n)
		}
	})
}

// TestProvisionSyncResumesAfterPartialRemoval: an attempt that fails after
// the first remove batch is resumed by the redelivery (the guard's decision
// is checkpointed with the member list taken before the first write): every
// batch is sent once and the outcome is the one of an uninterrupted run.
func TestProvisionSyncResumesAfterPartialRemoval(t *testing.T) {
	e := newWF(t)
	var ms []wixsim.Member
	for i := range 401 {
		ms = append(ms, e.Site.AddMember(wixsim.MemberSeed{FirstName: "R", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("r%d@example.com", i)}))
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	g := e.Site.AddGroup("Resume Sync", "", ids...) // ms[0] is the admin
	var failed atomic.Bool
	h := provisionHandler(e)
	h.hook = func(_ context.Context, point string) error {
		if point == "remove.0" && failed.CompareAndSwap(false, true) {
			return errors.New("simulated crash after the first remove batch")
		}
		return nil
	}
	e.start(runtime.Adapt(h))
	// Keep 201 of 401 (the admin + 200): remove 200, at most half.
	var people []messages.Person
	for _, m := range ms[:201] {
		people = append(people, messages.Person{Email: m.LoginEmail})
	}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "resume-sync", map[string]any{"group": map[string]any{"name": "Resume Sync"}, "membership": "sync", "people": people}))
	if !failed.Load() || len(ev.Removed) != 200 || ev.AlreadyMembers != 201 {
		t.Fatalf("crashed %v, event removed %d already %d", failed.Load(), len(ev.Removed), ev.AlreadyMembers)
	}
	sameSet(t, "members", e.Site.GroupMemberIDs(g.ID), ids[:201])
	if n := e.calls(wix.OpGroupMembersRemove); n != 2 {
		t.Fatalf("%d remove calls, want 2 (none redone)", n)
	}
}

// TestProvisionReusedGroupSettings: a reused group's differing privacy is
// reported, and changed only when the command asks (updateSettings).
func TestProvisionReusedGroupSettings(t *testing.T) {
	e := newWF(t)
	st := e.Site
	owner := st.AddMember(wixsim.MemberSeed{FirstName: "O", LastName: "W", LoginEmail: "owner@example.com"})
	g := st.AddGroup("Yoga Friday", "PUBLIC", owner.ID)
	e.start(runtime.Adapt(provisionHandler(e)))
	body := map[string]any{"group": map[string]any{"name": "Yoga Friday", "privacyStatus": "PRIVATE"}}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "settings-1", body))
	want := []messages.SettingDifference{{Setting: "privacyStatus", Group: "PUBLIC", Command: "PRIVATE"}}
	if !ev.Reused || ev.SettingsUpdated || !reflect.DeepEqual(ev.SettingsDiffer, want) {
		t.Fatalf("without updateSettings: %+v", ev)
	}
	if got := groupPrivacy(t, st, g.ID); got != "PUBLIC" {
		t.Fatalf("privacy changed to %s without updateSettings", got)
	}
	body["updateSettings"] = true
	e.Wix.Sim.ResetCalls()
	ev = provisioned(t, e, e.send(messages.CmdProvisionGroup, "settings-2", body))
	if !ev.SettingsUpdated || !reflect.DeepEqual(ev.SettingsDiffer, want) || e.calls(wix.OpGroupsUpdate) != 1 {
		t.Fatalf("with updateSettings: %+v (%d updates)", ev, e.calls(wix.OpGroupsUpdate))
	}
	if got := groupPrivacy(t, st, g.ID); got != "PRIVATE" {
		t.Fatalf("privacy %s after updateSettings, want PRIVATE", got)
	}
	// Same settings: nothing to report, nothing updated.
	ev = provisioned(t, e, e.send(messages.CmdProvisionGroup, "settings-3", body))
	if len(ev.SettingsDiffer) != 0 || ev.SettingsUpdated {
		t.Fatalf("same settings: %+v", ev)
	}
}

func groupPrivacy(t *testing.T, st *wixsim.Site, id string) string {
	t.Helper()
	g, ok := st.Group(id)
	if !ok {
		t.Fatalf("no group %s", id)
	}
	return g.PrivacyStatus
}
