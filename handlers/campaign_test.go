package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

func campaignRuntimeConfig() runtime.Config {
	return runtime.Config{
		AckWait:       5 * time.Second,
		MaxDeliver:    5,
		Retries:       -1,
		RetryInitial:  10 * time.Millisecond,
		RetryMax:      50 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		NakDelay:      func(int) time.Duration { return 300 * time.Millisecond },
	}
}

type campaignEnv struct {
	t   *testing.T
	env *testenv.Env
	wx  *testenv.WixEnv
	h   *SendCampaign
	n   int
}

func newCampaignEnv(t *testing.T, configure func(*SendCampaign)) *campaignEnv {
	t.Helper()
	env := testenv.Start(t)
	wx := testenv.StartWix(t, wixsim.Options{Members: -1, Groups: -1})
	pub, _ := env.EventPublisher()
	h := NewSendCampaign(wx.Client, pub, env.JS, env.Log)
	if configure != nil {
		configure(h)
	}
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(h))
	// The site owner: an ordinary member without email, never in a group.
	wx.Site().AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	return &campaignEnv{t: t, env: env, wx: wx, h: h}
}

// member adds a member; email "" means none; status "" means no
// subscription record.
func (e *campaignEnv) member(first, email, status string) string {
	e.n++
	m := e.wx.Site().AddMember(wixsim.MemberSeed{FirstName: first, LastName: fmt.Sprintf("L%d", e.n), LoginEmail: email})
	if email != "" && status != "" {
		e.wx.Site().SetSubscription(email, status)
	}
	return m.ID
}

func (e *campaignEnv) group(name string, ids ...string) string {
	g := e.wx.Site().AddGroup(name, "", ids...)
	if len(ids) == 0 {
		e.wx.Site().RemoveFromGroup(g.ID, e.wx.Site().OwnerID())
	}
	return g.ID
}

// run publishes a send_campaign command and waits for its completion
// (campaign_completed or command_failed).
func (e *campaignEnv) run(cmd map[string]any) (*messages.CampaignCompleted, *messages.CommandFailed) {
	e.t.Helper()
	w := e.env.Watch(e.env.Subjects.Events())
	// A string "content" is spliced into the body as is (json.Marshal would
	// compact it).
	content, _ := cmd["content"].(string)
	rest := maps.Clone(cmd)
	delete(rest, "content")
	body, err := json.Marshal(rest)
	if err != nil {
		e.t.Fatal(err)
	}
	if content != "" {
		body = append(append(append(body[:len(body)-1], `,"content":`...), content...), '}')
	}
	e.env.Publish(messages.CmdSendCampaign, string(body))
	id := cmd["id"].(string)
	m := w.Next(60*time.Second, func(m *nats.Msg) bool {
		return m.Header.Get("Groupflow-Command-Id") == id &&
			(strings.HasSuffix(m.Subject, messages.EvtCampaignCompleted) || strings.HasSuffix(m.Subject, messages.EvtCommandFailed))
	})
	if strings.HasSuffix(m.Subject, messages.EvtCommandFailed) {
		f := testenv.Decode[messages.CommandFailed](e.t, m)
		return nil, &f
	}
	c := testenv.Decode[messages.CampaignCompleted](e.t, m)
	return &c, nil
}

// selected returns the stored member_selected events of a campaign, by
// member id, failing on a duplicate event id.
func (e *campaignEnv) selected(campaignID string) map[string]messages.MemberSelected {
	e.t.Helper()
	out, dups := campaignStored(e.t, e.env, campaignID)
	if dups > 0 {
		e.t.Errorf("campaign %s: %d duplicate member_selected events stored", campaignID, dups)
	}
	return out
}

func campaignStored(t testing.TB, env *testenv.Env, campaignID string) (map[string]messages.MemberSelected, int) {
	out := map[string]messages.MemberSelected{}
	ids := map[string]bool{}
	dups := 0
	for _, m := range env.Events(messages.EvtMemberSelected) {
		var ev messages.MemberSelected
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("decode %s: %v", m, err)
		}
		if ev.CampaignID != campaignID {
			continue
		}
		id := m.Header.Get("ce-id")
		if ids[id] {
			dups++
		}
		ids[id] = true
		out[ev.MemberID] = ev
	}
	return out, dups
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestCampaignEndToEnd(t *testing.T) {
	e := newCampaignEnv(t, nil)

	// consent mix
	subA := e.member("Ann", "ann@example.com", wix.StatusSubscribed)
	subB := e.member("Bob", "BOB@Example.com", wix.StatusSubscribed)
	unsub := e.member("Cid", "cid@example.com", wix.StatusUnsubscribed)
	pend := e.member("Dee", "dee@example.com", wix.StatusPending)
	notSet := e.member("Eve", "eve@example.com", "")
	unknown := e.member("Fay", "fay@example.com", wix.StatusUnknown)
	noEmail := e.member("Gus", "", "")
	e.n++
	contactOnly := e.wx.Site().AddMember(wixsim.MemberSeed{FirstName: "Hal", LastName: "Contact", Emails: []string{"hal@example.net"}}).ID
	e.wx.Site().SetSubscription("hal@example.net", wix.StatusSubscribed)
	mix := e.group("Consent mix", subA, subB, unsub, pend, notSet, unknown, noEmail, contactOnly)

	// two groups sharing a member
	x := e.member("Xia", "xia@example.com", wix.StatusSubscribed)
	y := e.member("Yan", "yan@example.com", wix.StatusSubscribed)
	z := e.member("Zed", "zed@example.com", wix.StatusSubscribed)
	g1 := e.group("Runners", x, y)
	g2 := e.group("Swimmers", z, x)

	// interest
	i1 := e.member("Ina", "ina@example.com", wix.StatusSubscribed)
	i2 := e.member("Ivo", "ivo@example.com", wix.StatusSubscribed)
	i3 := e.member("Ida", "ida@example.com", wix.StatusSubscribed)
	i4 := e.member("Ike", "ike@example.com", wix.StatusSubscribed)
	i5 := e.member("Ila", "ila@example.com", wix.StatusSubscribed)
	yoga := e.group("Yoga", i1, i2, i3, i4, i5)
	qs := e.wx.Site().SetQuestions(yoga, "What do you practise?", "Anything else?")
	e.wx.Site().SetAnswer(yoga, i1, qs[0].ID, "I love Hot Yoga, and PILATES.")
	e.wx.Site().SetAnswer(yoga, i2, qs[0].ID, "Café crème lover — hôt yóga every week")
	e.wx.Site().SetAnswer(yoga, i3, qs[0].ID, "yogalates only; hotyoga")
	e.wx.Site().SetAnswer(yoga, i4, qs[0].ID, "hot tub, then yoga")
	e.wx.Site().SetAnswer(yoga, i5, qs[1].ID, "pilates and hot yoga")

	empty := e.group("Empty")

	content := `{ "templateId" : "spring<offer>",  "vars": {"a": 1.50} }`
	type want struct {
		selected   []string
		groups     map[string][]string
		keywords   map[string][]string
		seen       int
		skipped    messages.Skipped
		failed     bool
		checkCalls map[string]int64
	}
	cases := []struct {
		name string
		cmd  map[string]any
		want want
	}{
		{
			name: "consent mix and missing emails",
			cmd:  map[string]any{"campaignId": "c-mix", "groupIds": []string{mix}, "content": content},
			want: want{
				selected: sorted(subA, subB, contactOnly), seen: 8,
				skipped:    messages.Skipped{NoEmail: 1, Unsubscribed: 1, NotSubscribed: map[string]int{"PENDING": 1, "NOT_SET": 1, "UNKNOWN": 1}},
				checkCalls: map[string]int64{wix.OpGroupMembersList: 1, wix.OpMembersQuery: 1, wix.OpSubscriptionsQuery: 1},
			},
		},
		{
			name: "member in two groups is selected once with both groups",
			cmd:  map[string]any{"campaignId": "c-two", "groupIds": []string{g1, g2}},
			want: want{
				selected: sorted(x, y, z), seen: 3,
				groups:     map[string][]string{x: {g1, g2}, y: {g1}, z: {g2}},
				checkCalls: map[string]int64{wix.OpGroupMembersList: 2, wix.OpMembersQuery: 1, wix.OpSubscriptionsQuery: 1},
			},
		},
		{
			name: "interest any with phrase and accents",
			cmd: map[string]any{"campaignId": "c-any", "groupIds": []string{yoga},
				"audience": map[string]any{"type": "interest", "keywords": []string{`"hot yoga"`, "pilates"}}},
			want: want{
				selected: sorted(i1, i2, i5), seen: 5, skipped: messages.Skipped{NotMatched: 2},
				keywords:   map[string][]string{i1: {`"hot yoga"`, "pilates"}, i2: {`"hot yoga"`}, i5: {`"hot yoga"`, "pilates"}},
				checkCalls: map[string]int64{wix.OpQuestionsAnswers: 1, wix.OpMembersQuery: 1, wix.OpSubscriptionsQuery: 1, wix.OpGroupMembersList: 0},
			},
		},
		{
			name: "interest all",
			cmd: map[string]any{"campaignId": "c-all", "groupIds": []string{yoga},
				"audience": map[string]any{"type": "interest", "keywords": []string{"YOGA", "cafe"}, "match": "all"}},
			want: want{selected: []string{i2}, seen: 5, skipped: messages.Skipped{NotMatched: 4},
				keywords: map[string][]string{i2: {"YOGA", "cafe"}}},
		},
		{
			name: "interest restricted to a question",
			cmd: map[string]any{"campaignId": "c-q", "groupIds": []string{yoga},
				"audience": map[string]any{"type": "interest", "keywords": []string{"pilates"}, "questionIds": []string{qs[0].ID}}},
			want: want{selected: []string{i1}, seen: 5, skipped: messages.Skipped{NotMatched: 4}},
		},
		{
			name: "interest with no match makes no member or subscription query",
			cmd: map[string]any{"campaignId": "c-none", "groupIds": []string{yoga},
				"audience": map[string]any{"type": "interest", "keywords": []string{"crossfit"}}},
			want: want{seen: 5, skipped: messages.Skipped{NotMatched: 5},
				checkCalls: map[string]int64{wix.OpQuestionsAnswers: 1, wix.OpMembersQuery: 0, wix.OpSubscriptionsQuery: 0}},
		},
		{
			name: "empty group",
			cmd:  map[string]any{"campaignId": "c-empty", "groupIds": []string{empty}},
			want: want{checkCalls: map[string]int64{wix.OpGroupMembersList: 1, wix.OpMembersQuery: 0, wix.OpSubscriptionsQuery: 0}},
		},
		{
			name: "group that does not exist",
			cmd:  map[string]any{"campaignId": "c-404", "groupIds": []string{"00000000-0000-0000-0000-000000000404"}},
			want: want{failed: true},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wx.Sim.ResetCalls()
			tc.cmd["id"] = fmt.Sprintf("cmd-%d", i)
			done, failed := e.run(tc.cmd)
			if tc.want.failed {
				if failed == nil || failed.Kind != messages.FailurePermanent {
					t.Fatalf("want command_failed (permanent), got %+v / %+v", done, failed)
				}
				var dl bool
				for _, d := range e.env.DeadLetters() {
					dl = dl || strings.Contains(string(d.Body), tc.cmd["campaignId"].(string))
				}
				if !dl {
					t.Error("command not dead-lettered")
				}
				return
			}
			if failed != nil {
				t.Fatalf("command failed: %+v", failed)
			}
			got := e.selected(tc.cmd["campaignId"].(string))
			if !slices.Equal(keys(got), sorted(tc.want.selected...)) {
				t.Errorf("selected %v, want %v", keys(got), sorted(tc.want.selected...))
			}
			if done.Selected != len(tc.want.selected) || done.MembersSeen != tc.want.seen {
				t.Errorf("completed selected=%d seen=%d, want %d %d", done.Selected, done.MembersSeen, len(tc.want.selected), tc.want.seen)
			}
			ws := tc.want.skipped
			gs := done.Skipped
			if gs.NoEmail != ws.NoEmail || gs.Unsubscribed != ws.Unsubscribed || gs.NotMatched != ws.NotMatched || fmt.Sprint(gs.NotSubscribed) != fmt.Sprint(ws.NotSubscribed) {
				t.Errorf("skipped %+v, want %+v", gs, ws)
			}
			for id, g := range tc.want.groups {
				if !slices.Equal(got[id].GroupIDs, g) {
					t.Errorf("member %s groups %v, want %v", id, got[id].GroupIDs, g)
				}
			}
			for id, k := range tc.want.keywords {
				if !slices.Equal(got[id].MatchedKeywords, k) {
					t.Errorf("member %s keywords %v, want %v", id, got[id].MatchedKeywords, k)
				}
			}
			calls := e.wx.Sim.Calls(e.wx.SiteID)
			for op, n := range tc.want.checkCalls {
				if calls[op] != n {
					t.Errorf("%s calls = %d, want %d (all: %v)", op, calls[op], n, calls)
				}
			}
			if done.WixCalls != e.wx.Calls() {
				t.Errorf("wixCalls = %d, simulator counted %d", done.WixCalls, e.wx.Calls())
			}
		})
	}

	t.Run("event fields and content byte for byte", func(t *testing.T) {
		e.t = t
		var raw []byte
		for _, m := range e.env.Events(messages.EvtMemberSelected) {
			if strings.Contains(string(m.Data), `"memberId":"`+subB+`"`) {
				raw = m.Data
				if m.Header.Get("ce-id") != messages.EventID(messages.EvtMemberSelected, "", "c-mix", subB) {
					t.Errorf("ce-id %q", m.Header.Get("ce-id"))
				}
			}
		}
		if !strings.Contains(string(raw), `"content":`+content) {
			t.Errorf("content not passed through byte for byte: %s", raw)
		}
		var ev messages.MemberSelected
		_ = json.Unmarshal(raw, &ev)
		m, _ := e.wx.Site().Member(subB)
		if ev.Email != "bob@example.com" || ev.ContactID != m.ContactID || ev.FirstName != "Bob" || ev.LastName == "" || !slices.Equal(ev.GroupIDs, []string{mix}) {
			t.Errorf("event %+v", ev)
		}
	})
}

// TestCampaignCallBudget checks the exact Wix call budget:
// campaignListPages(m) list pages (⌈(m−1)/99⌉, at least 1: each page after
// the first overlaps the one before by a member) + ⌈m/100⌉ member queries
// + ⌈e/100⌉ subscription queries.
func TestCampaignCallBudget(t *testing.T) {
	e := newCampaignEnv(t, nil)
	for _, tc := range []struct{ m, noEmail int }{{100, 0}, {100, 30}, {1000, 150}, {1000, 0}, {250, 1}} {
		t.Run(fmt.Sprintf("m=%d_noemail=%d", tc.m, tc.noEmail), func(t *testing.T) {
			e.t = t
			ids := make([]string, tc.m)
			for i := range ids {
				email := fmt.Sprintf("b%d-%d-%d@example.com", tc.m, tc.noEmail, i)
				if i < tc.noEmail {
					email = ""
				}
				status := wix.StatusSubscribed
				if i%3 == 0 {
					status = wix.StatusUnsubscribed
				}
				ids[i] = e.member("B", email, status)
			}
			g := e.group(fmt.Sprintf("Budget %d %d", tc.m, tc.noEmail), ids...)
			e.wx.Sim.ResetCalls()
			cid := fmt.Sprintf("budget-%d-%d", tc.m, tc.noEmail)
			done, failed := e.run(map[string]any{"id": cid, "campaignId": cid, "groupIds": []string{g}})
			if failed != nil {
				t.Fatal(failed)
			}
			em := tc.m - tc.noEmail
			want := map[string]int64{wix.OpGroupMembersList: campaignListPages(tc.m), wix.OpMembersQuery: int64((tc.m + 99) / 100), wix.OpSubscriptionsQuery: int64((em + 99) / 100)}
			calls := e.wx.Sim.Calls(e.wx.SiteID)
			for op, n := range want {
				if calls[op] != n {
					t.Errorf("%s = %d, want %d", op, calls[op], n)
				}
			}
			total := want[wix.OpGroupMembersList] + want[wix.OpMembersQuery] + want[wix.OpSubscriptionsQuery]
			if e.wx.Calls() != total || done.WixCalls != total {
				t.Errorf("total calls sim=%d event=%d, want %d (%v)", e.wx.Calls(), done.WixCalls, total, calls)
			}
			if done.MembersSeen != tc.m || done.Skipped.NoEmail != tc.noEmail || done.Selected+done.Skipped.Unsubscribed != em {
				t.Errorf("completed %+v", done)
			}
			if got := len(e.selected(cid)); got != done.Selected {
				t.Errorf("stored %d events, completed says %d", got, done.Selected)
			}
		})
	}
}

// TestCampaignCrashResumesWithoutDuplicates kills an attempt in the middle
// of publishing a batch (a transient error → delayed redelivery) and checks
// that every subscribed member is stored exactly once, that the completion
// is published once, and that no Wix call was repeated. The "after window"
// variants shrink the events stream's duplicate window so JetStream cannot
// drop the republished events: only the stream scan prevents duplicates
// (the control variant disables it and must see duplicates).
func TestCampaignCrashResumesWithoutDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name        string
		afterWindow bool
		noScan      bool
		multi       bool
	}{
		{name: "inside duplicate window"},
		{name: "after duplicate window, stream scanned", afterWindow: true},
		{name: "after duplicate window, several groups", afterWindow: true, multi: true},
		{name: "control: after window without scan duplicates", afterWindow: true, noScan: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var published, crashes atomic.Int64
			crashAt := map[int64]bool{150: true, 260: true} // mid second and third batch
			e := newCampaignEnv(t, func(h *SendCampaign) {
				if tc.afterWindow {
					h.WithDedupeWindow(time.Nanosecond)
				}
				h.campaignNoScan = tc.noScan
				h.campaignBeforePublish = func(string) error {
					n := published.Add(1)
					if crashAt[n] {
						crashes.Add(1)
						return errors.New("simulated crash")
					}
					return nil
				}
			})
			if tc.afterWindow {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s, err := e.env.JS.Stream(ctx, e.env.Subjects.EventStream())
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.Duplicates = 100 * time.Millisecond // the redelivery comes 300ms later
				if _, err := e.env.JS.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			var ids, ids2 []string
			for i := range 300 {
				ids = append(ids, e.member("C", fmt.Sprintf("crash%d@example.com", i), wix.StatusSubscribed))
			}
			groups := []string{e.group("Crash", ids...)}
			// 300 members: 4 list pages (offsets 0, 99, 198, 297), 3 member
			// and 3 subscription queries.
			budget := campaignListPages(300) + 3 + 3
			if tc.multi {
				for i := range 50 {
					ids2 = append(ids2, e.member("D", fmt.Sprintf("crash2-%d@example.com", i), wix.StatusSubscribed))
				}
				groups = append(groups, e.group("Crash 2", append(ids2, ids[:20]...)...))
				// Collected: 4 + 1 list pages (the second group has 70
				// members), then 350 distinct members: 4 + 4 queries.
				budget = campaignListPages(300) + campaignListPages(70) + 4 + 4
			}
			e.wx.Sim.ResetCalls()
			done, failed := e.run(map[string]any{"id": "crash-cmd", "campaignId": "crash", "groupIds": groups})
			if failed != nil {
				t.Fatal(failed)
			}
			if crashes.Load() != 2 {
				t.Fatalf("crashes = %d, want 2", crashes.Load())
			}
			got, dups := campaignStored(t, e.env, "crash")
			if tc.noScan {
				if dups == 0 {
					t.Error("control: expected duplicates without the stream scan (the test would prove nothing)")
				}
				return
			}
			if dups != 0 {
				t.Errorf("%d duplicate member_selected events stored", dups)
			}
			if len(got) != len(ids)+len(ids2) || done.Selected != len(got) {
				t.Errorf("stored %d distinct, completed %d, want %d", len(got), done.Selected, len(ids)+len(ids2))
			}
			if e.wx.Calls() != budget || done.WixCalls != budget {
				t.Errorf("calls sim=%d event=%d, want %d: %v", e.wx.Calls(), done.WixCalls, budget, e.wx.Sim.Calls(e.wx.SiteID))
			}
			if n := len(e.env.Events(messages.EvtCampaignCompleted)); n != 1 {
				t.Errorf("%d campaign_completed stored", n)
			}
		})
	}
}

// TestCampaignRepeatedReportsAlreadySelected: a campaign sent again (new
// command id, same campaign id) inside the events stream's duplicate window
// selects no one twice, and says so: alreadySelected, not selected.
func TestCampaignRepeatedReportsAlreadySelected(t *testing.T) {
	e := newCampaignEnv(t, nil)
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = e.member("R", fmt.Sprintf("r%d@example.com", i), wix.StatusSubscribed)
	}
	g := e.group("Repeat", ids...)
	first, failed := e.run(map[string]any{"id": "rep-1", "campaignId": "rep", "groupIds": []string{g}})
	if failed != nil {
		t.Fatal(failed)
	}
	if first.Selected != 150 || first.AlreadySelected != 0 {
		t.Fatalf("first: selected %d already %d, want 150 and 0", first.Selected, first.AlreadySelected)
	}
	again, failed := e.run(map[string]any{"id": "rep-2", "campaignId": "rep", "groupIds": []string{g}})
	if failed != nil {
		t.Fatal(failed)
	}
	if again.Selected != 0 || again.AlreadySelected != 150 || again.MembersSeen != 150 {
		t.Fatalf("repeat: seen %d selected %d already %d, want 150, 0, 150", again.MembersSeen, again.Selected, again.AlreadySelected)
	}
	if got := len(e.selected("rep")); got != 150 {
		t.Fatalf("%d member_selected events stored, want 150", got)
	}
}

// TestInterestCampaignNamesGroupsWithoutQuestions: an interest campaign on
// a group without membership questions says so instead of a bare seen=0.
func TestInterestCampaignNamesGroupsWithoutQuestions(t *testing.T) {
	e := newCampaignEnv(t, nil)
	g := e.group("No Questions", e.member("N", "n1@example.com", wix.StatusSubscribed))
	done, failed := e.run(map[string]any{"id": "noq-1", "campaignId": "noq", "groupIds": []string{g},
		"audience": map[string]any{"type": "interest", "keywords": []string{"yoga"}}})
	if failed != nil {
		t.Fatal(failed)
	}
	if done.MembersSeen != 0 || !slices.Equal(done.GroupsWithoutQuestions, []string{g}) {
		t.Fatalf("completed %+v, want groupsWithoutQuestions [%s]", done, g)
	}
}

// TestCampaignFailureReasonSaysItOnce: the reason of a failed group read
// names the call and the group once ("list members of group X: list group
// members of X: …" before).
func TestCampaignFailureReasonSaysItOnce(t *testing.T) {
	e := newCampaignEnv(t, nil)
	const missing = "00000000-0000-4000-8000-00000000dead"
	_, failed := e.run(map[string]any{"id": "missing-1", "campaignId": "missing", "groupIds": []string{missing}})
	if failed == nil {
		t.Fatal("a campaign on a missing group completed")
	}
	if strings.Count(failed.Reason, "list group members of") != 1 || strings.Contains(failed.Reason, "list members of group") {
		t.Fatalf("reason repeats itself: %q", failed.Reason)
	}
	t.Logf("reason: %s", failed.Reason)
}
