package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestProvisionHostileWixHugeErrorMessage: a Create Group refused with an
// error body whose message is 2 MiB of text with control characters (a
// hostile or buggy Wix, a proxy dumping a page into JSON) is dead-lettered
// and announced like any permanent refusal, with a bounded, single-line
// reason: the error text goes into the ledger, the dead letter and the
// command_failed event, each bounded by the broker's payload limit.
func TestProvisionHostileWixHugeErrorMessage(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	huge := strings.Repeat("refused\x1b[31m\r\n", (2<<20)/15)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":` + mustJSON(t, huge) + `,"details":{"applicationError":{"code":` + mustJSON(t, huge) + `,"description":` + mustJSON(t, huge) + `}}}`))
			return
		}
		e.Wix.Sim.Handler().ServeHTTP(w, r)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "huge-err", map[string]any{
		"group": map[string]any{"name": "Huge Error"}, "people": []messages.Person{{Email: "a@example.com"}}})
	expectFailed(t, e, m, "huge-err", messages.FailurePermanent, "400 Bad Request")
	f := expect[messages.CommandFailed](t, e, m, messages.EvtCommandFailed)
	if len(f.Reason) > 4<<10 || strings.ContainsAny(f.Reason, "\x1b\r\n") {
		t.Fatalf("command_failed reason of %d bytes (control characters: %v)", len(f.Reason), strings.ContainsAny(f.Reason, "\x1b\r\n"))
	}
}

// TestProvisionHostileWixInvalidGroupID: a Create Group answer whose group
// id carries a terminal escape and 2 MiB of text fails the command
// (permanent) instead of becoming the id of group_provisioned, of the
// ledger's checkpoint and of the URLs of the calls after it.
func TestProvisionHostileWixInvalidGroupID(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	evil := "evil\x1b]0;pwned\x07" + strings.Repeat("x", 2<<20)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.Wix.Sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups") && rec.Code == http.StatusOK {
			var v map[string]map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Error(err)
			}
			v["group"]["id"] = evil
			body, _ = json.Marshal(v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "evil-id", map[string]any{
		"group": map[string]any{"name": "Evil Id"}, "people": []messages.Person{{Email: "a@example.com"}}})
	expectFailed(t, e, m, "evil-id", messages.FailurePermanent, "invalid group id")
	if strings.Contains(string(m.Data), "pwned") || len(m.Data) > 8<<10 {
		t.Fatalf("command_failed of %d bytes names the id", len(m.Data))
	}
}

// memberListProxy returns a Wix client whose List Group Members answers
// pass through rewrite (the page's decoded members and metadata) after the
// simulator answered; every other call goes to the simulator untouched.
func memberListProxy(t *testing.T, e *wfEnv, rewrite func(r *http.Request, page map[string]any)) *wix.Client {
	t.Helper()
	return proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.Wix.Sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/members") && strings.Contains(r.URL.Path, "/groups/") && rec.Code == http.StatusOK {
			var page map[string]any
			if err := json.Unmarshal(body, &page); err != nil {
				t.Error(err)
			}
			rewrite(r, page)
			body, _ = json.Marshal(page)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// TestProvisionSyncDuplicatedMemberListing: a List Group Members answer
// that names the group's admin ten times more (an odd Wix, or offset
// paging shifted by joins) does not make a group of 10 look like one of
// 20: the sync that would remove 6 of its 10 members is still refused by
// the mass-removal guard, nothing written. And a member listed twice is
// removed and reported once.
func TestProvisionSyncDuplicatedMemberListing(t *testing.T) {
	e := newWF(t)
	st := e.Site
	var ms []wixsim.Member
	for i := range 10 {
		ms = append(ms, st.AddMember(wixsim.MemberSeed{FirstName: "D", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("d%d@example.com", i)}))
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	g := st.AddGroup("Dup Listing", "", ids...) // ms[0] is the admin
	var repeat atomic.Value                     // the member id repeated, and how often
	repeat.Store([2]any{"", 0})
	client := memberListProxy(t, e, func(_ *http.Request, page map[string]any) {
		rp := repeat.Load().([2]any)
		members, _ := page["members"].([]any)
		for _, m := range slices.Clone(members) {
			if m.(map[string]any)["memberId"] == rp[0] {
				for range rp[1].(int) {
					members = append(members, m)
				}
			}
		}
		page["members"] = members
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	roster := func(ms ...wixsim.Member) []messages.Person {
		var p []messages.Person
		for _, m := range ms {
			p = append(p, messages.Person{Email: m.LoginEmail})
		}
		return p
	}

	repeat.Store([2]any{ms[0].ID, 10})
	e.Wix.Sim.ResetCalls()
	m := e.send(messages.CmdProvisionGroup, "dup-admin", map[string]any{"group": map[string]any{"name": "Dup Listing"}, "membership": "sync", "people": roster(ms[1:4]...)})
	expectFailed(t, e, m, "dup-admin", messages.FailurePermanent, "sync would remove 6 of the group's 10 members, more than half")
	if w := e.writes(); w != 0 || len(st.GroupMemberIDs(g.ID)) != 10 {
		t.Fatalf("%d writes, %d members", w, len(st.GroupMemberIDs(g.ID)))
	}

	repeat.Store([2]any{ms[9].ID, 1})
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "dup-removed", map[string]any{"group": map[string]any{"name": "Dup Listing"}, "membership": "sync", "people": roster(ms[1:9]...)}))
	if !slices.Equal(ev.Removed, []string{ms[9].ID}) || ev.AlreadyMembers != 8 {
		t.Fatalf("removed %v (want [%s]), already %d", ev.Removed, ms[9].ID, ev.AlreadyMembers)
	}
	sameSet(t, "members", st.GroupMemberIDs(g.ID), ids[:9])
}

// TestProvisionMemberListingThatNeverEnds: a Wix that answers List Group
// Members with the same full page at every offset, saying more follow
// (tooManyToCount), was read for ever, a call each, the list growing; now
// the command fails (permanent) after maxIdlePages pages that bring
// no new member, having written nothing.
func TestProvisionMemberListingThatNeverEnds(t *testing.T) {
	e := newWF(t)
	st := e.Site
	var ids []string
	for i := range 150 {
		ids = append(ids, st.AddMember(wixsim.MemberSeed{FirstName: "L", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("l%d@example.com", i)}).ID)
	}
	st.AddGroup("Endless", "", ids...)
	var mu sync.Mutex
	var first []any
	client := memberListProxy(t, e, func(_ *http.Request, page map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first, _ = page["members"].([]any)
		}
		page["members"] = first
		page["metadata"] = map[string]any{"count": len(first), "tooManyToCount": true}
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	e.Wix.Sim.ResetCalls()
	m := e.send(messages.CmdProvisionGroup, "endless", map[string]any{"group": map[string]any{"name": "Endless"}, "people": []messages.Person{{Email: "l1@example.com"}}})
	expectFailed(t, e, m, "endless", messages.FailurePermanent, "its paging does not advance")
	if n := e.calls(wix.OpGroupMembersList); n != maxIdlePages+1 {
		t.Fatalf("%d List Group Members calls, want %d", n, maxIdlePages+1)
	}
	if w := e.writes(); w != 0 {
		t.Fatalf("%d writes", w)
	}
}

// TestProvisionSyncRefusedRemovalIsReported: a sync whose Remove Group
// Members batch Wix refuses (403) completes, as the removal is left for the
// next sync, but its group_provisioned names the members it did not remove
// and why (notRemoved); before, the event listed no removal and said nothing
// of the refused ones, as if the group were now exactly the roster.
func TestProvisionSyncRefusedRemovalIsReported(t *testing.T) {
	e := newWF(t)
	st := e.Site
	var ms []wixsim.Member
	for i := range 5 {
		ms = append(ms, st.AddMember(wixsim.MemberSeed{FirstName: "F", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("f%d@example.com", i)}))
	}
	g := st.AddGroup("Refused Removal", "", ms[0].ID, ms[1].ID, ms[2].ID, ms[3].ID, ms[4].ID)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/members") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"not allowed","details":{"applicationError":{"code":"FORBIDDEN","description":"not allowed"}}}`))
			return
		}
		e.Wix.Sim.Handler().ServeHTTP(w, r)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	people := []messages.Person{{Email: ms[1].LoginEmail}, {Email: ms[2].LoginEmail}}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "refused-removal", map[string]any{"group": map[string]any{"name": "Refused Removal"}, "membership": "sync", "people": people}))
	if len(ev.Removed) != 0 {
		t.Fatalf("removed %v", ev.Removed)
	}
	var notRemoved []string
	for _, o := range ev.NotRemoved {
		notRemoved = append(notRemoved, o.MemberID)
		if !strings.Contains(o.Reason, "403") {
			t.Fatalf("not removed %+v: reason without the status", o)
		}
	}
	sameSet(t, "notRemoved", notRemoved, []string{ms[3].ID, ms[4].ID})
	if n := len(st.GroupMemberIDs(g.ID)); n != 5 {
		t.Fatalf("%d members, want 5", n)
	}
}

// TestProvisionResolutionThatNeverEnds: a Wix that answers Query Members
// with the same full page at every offset, saying more follow, was read for
// ever while resolving the roster (a call each, never failing); now the
// command fails (permanent) after maxIdlePages pages that bring no new
// member, before any write: a resolution cut short is never taken for the
// roster.
func TestProvisionResolutionThatNeverEnds(t *testing.T) {
	e := newWF(t)
	st := e.Site
	for i := range 120 {
		st.AddMember(wixsim.MemberSeed{FirstName: "Q", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("q%d@example.com", i)})
	}
	var queries atomic.Int64
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/members/query") {
			e.Wix.Sim.Handler().ServeHTTP(w, r)
			return
		}
		queries.Add(1)
		serveFirstPageForEver(w, r, e.Wix.Sim.Handler(), []byte(`{"query":{"paging":{"limit":100,"offset":0}},"fieldsets":["FULL"]}`))
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "endless-resolve", map[string]any{"group": map[string]any{"name": "Endless Resolve"}, "people": []messages.Person{{Email: "q1@example.com"}}})
	expectFailed(t, e, m, "endless-resolve", messages.FailurePermanent, "its paging does not advance")
	if n := queries.Load(); n != maxIdlePages+1 {
		t.Fatalf("%d Query Members, want %d", n, maxIdlePages+1)
	}
	if w := e.writes(); w != 1 { // the group's create only
		t.Fatalf("%d writes", w)
	}
}

// TestProvisionHostileWixHugeReusedGroupSettings: a reused group whose
// Query Groups answer carries a teaser and a member title of 600,000
// characters each (Wix allows 1,000) is reported in settingsDiffer with its
// values cut to the contract's limits, so the group step's checkpoint and
// group_provisioned stay small and the command completes with its member
// added; before, both values went whole into the checkpoint and the event.
func TestProvisionHostileWixHugeReusedGroupSettings(t *testing.T) {
	e := newWF(t)
	admin := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Admin", LoginEmail: "admin@example.com"})
	a := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	g := e.Site.AddGroup("Huge Settings", "", admin.ID)
	huge := strings.Repeat("t", 600_000)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.Wix.Sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups/query") && rec.Code == http.StatusOK {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Error(err)
			}
			for _, x := range v["groups"].([]any) {
				x.(map[string]any)["teaser"] = huge
				x.(map[string]any)["memberTitle"] = huge
			}
			body, _ = json.Marshal(v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "huge-settings", map[string]any{
		"group": map[string]any{"name": "Huge Settings", "teaser": "Short", "memberTitle": "Yogis"}, "people": []messages.Person{{Email: "a@example.com"}}})
	ev := provisioned(t, e, m)
	if ev.GroupID != g.ID || ev.Added != 1 || len(ev.SettingsDiffer) != 2 || len(m.Data) > 8<<10 {
		t.Fatalf("event of %d bytes: group %s added %d, %d settings differ", len(m.Data), ev.GroupID, ev.Added, len(ev.SettingsDiffer))
	}
	for _, d := range ev.SettingsDiffer {
		if n := utf8.RuneCountInString(d.Group); n > messages.MaxGroupTeaserLen+1 || !strings.HasPrefix(d.Group, "ttt") {
			t.Fatalf("%s: group value of %d characters", d.Setting, n)
		}
	}
	sameSet(t, "members", e.Site.GroupMemberIDs(g.ID), []string{admin.ID, a.ID})
}

// TestProvisionGroupQueryThatNeverEnds: a Wix that answers Query Groups
// with the same full page at every offset, saying more follow, was read for
// ever looking for the group by name; now the command fails (permanent)
// after maxIdlePages pages that bring no new group, with no write.
func TestProvisionGroupQueryThatNeverEnds(t *testing.T) {
	e := newWF(t)
	for i := range 120 {
		e.Site.AddGroup(fmt.Sprintf("Other %03d", i), "")
	}
	var queries atomic.Int64
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/groups/query") {
			e.Wix.Sim.Handler().ServeHTTP(w, r)
			return
		}
		queries.Add(1)
		serveFirstPageForEver(w, r, e.Wix.Sim.Handler(), []byte(`{"query":{"paging":{"limit":100,"offset":0}}}`))
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "endless-groups", map[string]any{"group": map[string]any{"name": "Needle"}})
	expectFailed(t, e, m, "endless-groups", messages.FailurePermanent, "its paging does not advance")
	if n := queries.Load(); n != maxIdlePages+1 {
		t.Fatalf("%d Query Groups, want %d", n, maxIdlePages+1)
	}
	if w := e.writes(); w != 0 {
		t.Fatalf("%d writes", w)
	}
}

// TestProvisionNamesFromAWixServingShortPages: a Wix serving 50 members a
// page (fewer than the 100 requested) of a site of 120, its total counting
// them all, resolves every name of the roster: the name scan's first page
// told the site's size, yet a short first page was taken for the whole
// site, and the 70 others were never matched — rows reported not found,
// whom a sync would have removed from the group.
func TestProvisionNamesFromAWixServingShortPages(t *testing.T) {
	e := newWF(t)
	st := e.Site
	for i := range 120 {
		st.AddMember(wixsim.MemberSeed{FirstName: "Short", LastName: fmt.Sprintf("Page%d", i), LoginEmail: fmt.Sprintf("sp%d@example.com", i)})
	}
	client := shortPagesWix(t, e, "/members/query")
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "short-pages", map[string]any{"group": map[string]any{"name": "Short Pages"},
		"people": []messages.Person{{Name: "Short Page3"}, {Name: "Short Page75"}, {Name: "Short Page119"}}})
	ev := provisioned(t, e, m)
	if ev.Added != 3 || len(ev.NotAdded) != 0 {
		t.Fatalf("added %d, not added %+v; want the 3 named members added", ev.Added, ev.NotAdded)
	}
}

// shortPagesWix is e's simulator behind a proxy that cuts the paging limit
// of every query to path to 50 (a Wix serving fewer than the 100 asked a
// page; its totals still count everything).
func shortPagesWix(t *testing.T, e *wfEnv, path string) *wix.Client {
	t.Helper()
	return proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, path) {
			raw, _ := io.ReadAll(r.Body)
			var q map[string]any
			if json.Unmarshal(raw, &q) == nil {
				if qq, ok := q["query"].(map[string]any); ok {
					if p, ok := qq["paging"].(map[string]any); ok {
						if l, ok := p["limit"].(float64); !ok || l > 50 {
							p["limit"] = 50
						}
					}
				}
				raw, _ = json.Marshal(q)
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		}
		e.Wix.Sim.Handler().ServeHTTP(w, r)
	})
}

// TestProvisionPhonesFromAWixServingShortPages: Query Contacts serving 50
// a page (fewer than the 100 requested) of 120 matching contacts, its total
// counting them all, resolves every phone of the roster: a short page
// ended the lookup, and the 70 others were reported not found.
func TestProvisionPhonesFromAWixServingShortPages(t *testing.T) {
	e := newWF(t)
	st := e.Site
	var people []messages.Person
	for i := range 120 {
		ph := fmt.Sprintf("+1 212-555-%04d", 1000+i)
		st.AddMember(wixsim.MemberSeed{FirstName: "Phone", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("ph%d@example.com", i), Phones: []string{ph}})
		people = append(people, messages.Person{Phone: ph})
	}
	client := shortPagesWix(t, e, "/contacts/query")
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "short-phones", map[string]any{"group": map[string]any{"name": "Short Phones"}, "people": people})
	ev := provisioned(t, e, m)
	if ev.Added+ev.AlreadyMembers != 120 || len(ev.NotAdded) != 0 { // the creator is one of them
		t.Fatalf("added %d, %d not added (first %+v); want the 120 members added", ev.Added, len(ev.NotAdded), ev.NotAdded[:min(1, len(ev.NotAdded))])
	}
}
