package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// hostileCampaignEnv serves the simulator's site through rewrite, which may
// change a List Group Members request or its answer.
func hostileCampaignEnv(t *testing.T, n int, before func(r *http.Request), rewrite func(r *http.Request, body []byte) []byte) (*campaignEnv, *wixsim.Site, string, *atomic.Int64) {
	t.Helper()
	env := testenv.Start(t)
	sim := wixsim.New(wixsim.Options{Members: -1, Groups: -1})
	site := sim.Site("test-site")
	// The site owner: a member without email, never in the group.
	site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	var ids []string
	for i := range n {
		email := fmt.Sprintf("hostile%03d@example.com", i)
		ids = append(ids, site.AddMember(wixsim.MemberSeed{FirstName: "H", LastName: fmt.Sprint(i), LoginEmail: email}).ID)
		site.SetSubscription(email, "SUBSCRIBED")
	}
	g := site.AddGroup("Hostile", "", ids...)
	site.RemoveFromGroup(g.ID, site.OwnerID())
	var lists atomic.Int64
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/groups/"+g.ID+"/members") {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		lists.Add(1)
		if before != nil {
			before(r)
		}
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			body = rewrite(r, body)
		}
		for k, vs := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	pub, _ := env.EventPublisher()
	h := NewSendCampaign(client, pub, env.JS, env.Log)
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(h))
	return &campaignEnv{t: t, env: env, h: h}, site, g.ID, &lists
}

// TestCampaignHostileWixDuplicateMemberInAPage: a List Group Members answer
// that names one member twice (a hostile or buggy Wix) must not count that
// member twice: MembersSeen is "distinct members of the groups" and Selected
// "MemberSelected events published by this command".
func TestCampaignHostileWixDuplicateMemberInAPage(t *testing.T) {
	e, _, g, _ := hostileCampaignEnv(t, 3, nil, func(_ *http.Request, body []byte) []byte {
		var page map[string]any
		if err := json.Unmarshal(body, &page); err != nil {
			return body
		}
		ms, _ := page["members"].([]any)
		if len(ms) > 0 {
			page["members"] = append(ms, ms[0]) // the first member again
		}
		out, _ := json.Marshal(page)
		return out
	})
	done, failed := e.run(map[string]any{"id": "dup-page-1", "campaignId": "dup-page", "groupIds": []string{g},
		"audience": map[string]any{"type": messages.AudienceAll}})
	if failed != nil {
		t.Fatalf("campaign failed: %+v", failed)
	}
	stored := e.selected("dup-page")
	if len(stored) != 3 || done.Selected != 3 || done.MembersSeen != 3 || done.AlreadySelected != 0 {
		t.Fatalf("stored %d member_selected events; campaign_completed says selected %d, seen %d, already %d; want 3, 3, 3, 0",
			len(stored), done.Selected, done.MembersSeen, done.AlreadySelected)
	}
}

// TestCampaignFromAWixServingShortPages: List Group Members serving 50 a
// page (fewer than the 100 asked), its total counting all 230 members:
// every member is selected, once. A short page ended the campaign after
// its first 50 members.
func TestCampaignFromAWixServingShortPages(t *testing.T) {
	e, _, g, lists := hostileCampaignEnv(t, 230, func(r *http.Request) {
		q := r.URL.Query()
		q.Set("limit", "50")
		r.URL.RawQuery = q.Encode()
	}, func(_ *http.Request, body []byte) []byte { return body })
	done, failed := e.run(map[string]any{"id": "short-1", "campaignId": "short", "groupIds": []string{g},
		"audience": map[string]any{"type": messages.AudienceAll}})
	if failed != nil {
		t.Fatalf("campaign failed: %+v", failed)
	}
	stored := e.selected("short")
	if len(stored) != 230 || done.Selected != 230 || done.MembersSeen != 230 {
		t.Fatalf("stored %d member_selected events; campaign_completed says selected %d, seen %d; want 230 each (%d lists)",
			len(stored), done.Selected, done.MembersSeen, lists.Load())
	}
	// 50 a page read one member early: ⌈(230−1)/49⌉ = 5 lists.
	if n := lists.Load(); n != 5 {
		t.Errorf("%d List Group Members calls, want 5", n)
	}
}

// TestCampaignHostileWixPaginationNeverEnds: a Wix that ignores the offset
// and answers every List Group Members with the same full page and
// tooManyToCount (no total) must not keep a campaign paging for ever: it
// must end (completed or failed) after a bounded number of calls.
func TestCampaignHostileWixPaginationNeverEnds(t *testing.T) {
	e, _, g, lists := endlessPagingEnv(t)
	awaitCampaignEndWithinBound(t, e, lists, "endless-1",
		fmt.Sprintf(`{"id":"endless-1","campaignId":"endless","groupIds":[%q],"audience":{"type":"all"}}`, g))
}

// TestCampaignHostileWixPaginationNeverEndsSeveralGroups: the same endless
// List Group Members in a campaign over two groups (the collect phase, one
// ledger page checkpoint per answer) must end too.
func TestCampaignHostileWixPaginationNeverEndsSeveralGroups(t *testing.T) {
	e, site, g, lists := endlessPagingEnv(t)
	m := site.AddMember(wixsim.MemberSeed{FirstName: "Other", LastName: "Group", LoginEmail: "other@example.com"})
	site.SetSubscription("other@example.com", "SUBSCRIBED")
	other := site.AddGroup("Other", "", m.ID)
	awaitCampaignEndWithinBound(t, e, lists, "endless-2",
		fmt.Sprintf(`{"id":"endless-2","campaignId":"endless2","groupIds":[%q,%q],"audience":{"type":"all"}}`, other.ID, g))
}

// endlessPagingEnv is hostileCampaignEnv over a 150-member group whose Wix
// ignores the offset (every List Group Members answer is the first page)
// and answers tooManyToCount instead of a total.
func endlessPagingEnv(t *testing.T) (*campaignEnv, *wixsim.Site, string, *atomic.Int64) {
	t.Helper()
	dropOffset := func(r *http.Request) {
		q := r.URL.Query()
		q.Del("offset")
		r.URL.RawQuery = q.Encode()
	}
	return hostileCampaignEnv(t, 150, dropOffset, func(_ *http.Request, body []byte) []byte {
		return bytes.Replace(body, []byte(`"metadata":{`), []byte(`"metadata":{"tooManyToCount":true,`), 1)
	})
}

// awaitCampaignEndWithinBound publishes the campaign command body (id id)
// and fails the test unless its completion or failure event arrives before
// more than 300 List Group Members calls have been made: 300 full pages
// would be 30,000 members of a 150-member group.
func awaitCampaignEndWithinBound(t *testing.T, e *campaignEnv, lists *atomic.Int64, id, body string) {
	t.Helper()
	ended := make(chan *nats.Msg, 16)
	sub, err := e.env.Conn().ChanSubscribe(e.env.Subjects.Events(), ended)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	e.env.Publish(messages.CmdSendCampaign, body)
	const bound = 300
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case m := <-ended:
			if m.Header.Get("Groupflow-Command-Id") == id &&
				(strings.HasSuffix(m.Subject, messages.EvtCampaignCompleted) || strings.HasSuffix(m.Subject, messages.EvtCommandFailed)) {
				t.Logf("ended with %s after %d list calls", m.Subject, lists.Load())
				return
			}
		case <-tick.C:
			if n := lists.Load(); n > bound {
				t.Fatalf("campaign still paging after %d List Group Members calls over a 150-member group (the same page every time, no total): it never ends", n)
			}
		case <-deadline:
			t.Fatalf("campaign neither ended nor paged past %d calls in 2 minutes (%d calls)", bound, lists.Load())
		}
	}
}

// TestCampaignHostileWixDuplicateMemberAcrossPages: a member of the first
// List Group Members page named again on the last page (a hostile or buggy
// Wix; not adjacent, so Recent does not catch it) is one member: the events
// stream keeps one member_selected event, and the completion must not count
// the member twice in Selected or MembersSeen.
func TestCampaignHostileWixDuplicateMemberAcrossPages(t *testing.T) {
	var first atomic.Value
	e, _, g, _ := hostileCampaignEnv(t, 250, nil, func(r *http.Request, body []byte) []byte {
		var page map[string]any
		if err := json.Unmarshal(body, &page); err != nil {
			return body
		}
		ms, _ := page["members"].([]any)
		switch off := r.URL.Query().Get("offset"); {
		case off == "" || off == "0":
			if len(ms) > 0 {
				first.Store(ms[0])
			}
			return body
		case len(ms) < 100: // the last page (offset 198: pages overlap by one member)
			if m := first.Load(); m != nil {
				page["members"] = append(ms, m)
			}
		default:
			return body
		}
		out, _ := json.Marshal(page)
		return out
	})
	done, failed := e.run(map[string]any{"id": "dup-pages-1", "campaignId": "dup-pages", "groupIds": []string{g},
		"audience": map[string]any{"type": messages.AudienceAll}})
	if failed != nil {
		t.Fatalf("campaign failed: %+v", failed)
	}
	stored := e.selected("dup-pages")
	if len(stored) != 250 || done.Selected != 250 || done.MembersSeen != 250 || done.AlreadySelected != 0 {
		t.Fatalf("stored %d member_selected events; campaign_completed says selected %d, seen %d, already %d; want 250, 250, 250, 0",
			len(stored), done.Selected, done.MembersSeen, done.AlreadySelected)
	}
}
