package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/dlq"
	"groupflow/messages"
)

const (
	cmdStream = "GROUPS_COMMANDS"
	evtStream = "GROUPS_EVENTS"
	dlqStream = "GROUPS_DLQ"

	hdrCEID      = messages.HeaderCEID
	hdrCommandID = messages.HeaderCommandID
)

// command is one command sent by a scenario and what it must lead to.
type command struct {
	id, typ string
	body    []byte
	// wantDLQ: the command is invalid and must be dead-lettered (garbage).
	wantDLQ bool

	// provision_group
	groupName string
	rows      int
	resolved  []string // distinct member ids the roster resolves to
	// send_campaign
	campaignID, campaignKey string
	// propagate_rules
	targets int
}

// world is what commands are built from: the simulator's seeded data.
type world struct {
	members []simMember // candidates for rosters (the site owner excluded)
	groups  []simGroup  // seeded groups (campaign and rules targets)
}

func loadWorld(t testing.TB, sim *wixSim) *world {
	t.Helper()
	ms := sim.members(t)
	gs := sim.groups(t)
	if len(ms) < 50 || len(gs) < 4 {
		t.Fatalf("simulator seeded %d members, %d groups", len(ms), len(gs))
	}
	owner := sim.groupOwner(t, gs[0].ID)
	w := &world{groups: gs}
	for _, m := range ms {
		if m.ID != owner {
			w.members = append(w.members, m)
		}
	}
	// Campaign groups: keep them small enough for a quick run.
	slices.SortFunc(w.groups, func(a, b simGroup) int { return a.MembersCount - b.MembersCount })
	return w
}

var rulePool = []messages.Rule{
	{Title: "Be kind", Description: "Kindness is required."},
	{Title: "No spam", Description: "No self-promotion."},
	{Title: "Privacy", Description: "What is shared here stays here."},
	{Title: "Book ahead", Description: "Reserve 24 hours before class."},
	{Title: "Have fun"},
}

// mixedCommands builds n commands: rosters (provision_group), campaigns
// (send_campaign over seeded groups), rules (propagate_rules) and reports.
func (w *world) mixedCommands(run string, n int, rng *rand.Rand) []*command {
	var out []*command
	// Campaign group sets are drawn from a few fixed choices, so that several
	// campaigns over the same groups can be compared with each other.
	small := w.groups[:min(len(w.groups), 8)]
	campaignSets := [][]string{{small[len(small)-1].ID}, {small[len(small)-2].ID, small[len(small)-3].ID}, {small[len(small)-1].ID, small[len(small)-4].ID}}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", run, i)
		var c *command
		switch x := rng.IntN(100); {
		case x < 40:
			c = w.provision(id, rng)
		case x < 65:
			set := campaignSets[rng.IntN(len(campaignSets))]
			aud := map[string]any{"type": "all"}
			key := "all"
			if rng.IntN(3) == 0 {
				aud = map[string]any{"type": "interest", "keywords": []string{"yoga", `"hot yoga"`, "pilates"}}
				key = "interest"
			}
			c = &command{id: id, typ: messages.CmdSendCampaign, campaignID: "camp-" + id, campaignKey: key + ":" + strings.Join(set, ",")}
			c.body = mustJSON(map[string]any{"id": id, "campaignId": c.campaignID, "groupIds": set, "audience": aud,
				"content": map[string]any{"templateId": "chaos", "n": i}})
		case x < 85:
			k := 1 + rng.IntN(3)
			var targets []string
			for _, j := range rng.Perm(len(w.groups))[:k] {
				targets = append(targets, w.groups[j].ID)
			}
			rules := slices.Clone(rulePool[:1+rng.IntN(len(rulePool))])
			c = &command{id: id, typ: messages.CmdPropagateRules, targets: k}
			c.body = mustJSON(map[string]any{"id": id, "rules": rules, "targets": map[string]any{"groupIds": targets}})
		default:
			c = &command{id: id, typ: messages.CmdGenerateReport}
			c.body = mustJSON(map[string]any{"id": id, "top": 1 + rng.IntN(20), "idle": 1 + rng.IntN(20)})
		}
		out = append(out, c)
	}
	return out
}

// provision builds a roster of 5..180 rows: distinct members by email or
// contact id, and a few unknown emails.
func (w *world) provision(id string, rng *rand.Rand) *command {
	k := 5 + rng.IntN(min(176, len(w.members)-5))
	c := &command{id: id, typ: messages.CmdProvisionGroup, groupName: "Chaos " + id}
	var people []map[string]any
	for _, j := range rng.Perm(len(w.members))[:k] {
		m := w.members[j]
		if m.LoginEmail != "" && rng.IntN(3) > 0 {
			people = append(people, map[string]any{"email": m.LoginEmail})
		} else {
			people = append(people, map[string]any{"contactId": m.ContactID})
		}
		c.resolved = append(c.resolved, m.ID)
	}
	for j := range rng.IntN(4) {
		people = append(people, map[string]any{"email": fmt.Sprintf("nobody-%s-%d@nowhere.example", id, j)})
	}
	rng.Shuffle(len(people), func(a, b int) { people[a], people[b] = people[b], people[a] })
	c.rows = len(people)
	c.body = mustJSON(map[string]any{"id": id, "group": map[string]any{"name": c.groupName, "description": "chaos roster"},
		"people": people})
	return c
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// publishAll publishes commands in order, in bursts of 5, pausing 5*gap
// between bursts.
func publishAll(ctx context.Context, js jetstream.JetStream, cmds []*command, gap time.Duration) error {
	for i, c := range cmds {
		if err := publish(ctx, js, "groups.cmd."+c.typ, c.id, c.body); err != nil {
			return err
		}
		if gap > 0 && i%5 == 4 {
			gap := 5 * gap
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// isCompletion reports whether an event type completes a command.
func isCompletion(evtType string) bool {
	switch evtType {
	case messages.EvtMemberSelected, messages.EvtEmailSent, messages.EvtEmailFailed:
		return false
	}
	return true
}

// awaitOutcomes waits until every command has a completion event or a dead
// letter (or timeout); it returns how many have.
func awaitOutcomes(t testing.TB, js jetstream.JetStream, cmds []*command, timeout time.Duration, tick func()) int {
	t.Helper()
	want := map[string]bool{}
	for _, c := range cmds {
		want[c.id] = true
	}
	done := 0
	waitFor(timeout, time.Second, func() bool {
		if tick != nil {
			tick()
		}
		seen := map[string]bool{}
		for _, f := range []string{"groups.evt.>", "groups.dlq.>"} {
			stream := evtStream
			if strings.HasPrefix(f, "groups.dlq") {
				stream = dlqStream
			}
			msgs, err := tryReadStreamCompletions(js, stream, f)
			if err != nil {
				return false
			}
			for _, m := range msgs {
				id := commandIDOf(m)
				if stream == dlqStream {
					id = dlq.Parse(m.Seq, time.Time{}, m.Header, m.Data).CommandID
				}
				if want[id] {
					seen[id] = true
				}
			}
		}
		done = len(seen)
		return done == len(want)
	})
	return done
}

// tryReadStreamCompletions reads the completion events (or the DLQ), not the
// member_selected ones.
func tryReadStreamCompletions(js jetstream.JetStream, stream, filter string) ([]smsg, error) {
	if stream == dlqStream {
		return tryReadStream(js, stream, filter)
	}
	var out []smsg
	for _, t := range []string{messages.EvtGroupProvisioned, messages.EvtCampaignCompleted, messages.EvtRulesPropagated,
		messages.EvtReportGenerated, messages.EvtCommandFailed, messages.EvtMembershipQuestionsSet} {
		ms, err := tryReadStream(js, stream, "groups.evt."+t)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

func commandIDOf(m smsg) string {
	if id := m.Header.Get(hdrCommandID); id != "" {
		return id
	}
	var v struct {
		CommandID string `json:"commandId"`
	}
	_ = json.Unmarshal(m.Data, &v)
	return v.CommandID
}

func evtType(subject string) string { return subject[strings.LastIndexByte(subject, '.')+1:] }

// verdict is the outcome of verify.
type verdict struct {
	completed, deadLettered, lost, duplicated int
	selected                                  int // member_selected events
	problems                                  []string
}

func (v *verdict) problem(kind *int, format string, args ...any) {
	if kind != nil {
		*kind++
	}
	if len(v.problems) < 40 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

// verify checks the streams and the simulator after a run:
//   - every command has exactly one completion event (valid ones: of the
//     right type; garbage: command_failed) and, for garbage, one dead letter;
//   - no event id is stored twice in GROUPS_EVENTS;
//   - provision: one group per name in the simulator, its membersCount equal
//     to the distinct resolved roster (+ the owner), and added +
//     alreadyMembers + notAdded equal to the roster size;
//   - campaign: campaign_completed.selected equals the member_selected events
//     stored for it, none twice, and campaigns over the same groups and
//     audience select the same members;
//   - rules: one outcome per target, none failed.
func verify(t testing.TB, js jetstream.JetStream, sim *wixSim, cmds []*command) verdict {
	t.Helper()
	var v verdict
	evts := readStream(t, js, evtStream, "groups.evt.>")
	dlqs := readStream(t, js, dlqStream, "groups.dlq.>")

	ceIDs := map[string]int{}
	completions := map[string][]smsg{}
	selected := map[string]map[string]int{} // campaign id -> member id -> count
	for _, m := range evts {
		ce := m.Header.Get(hdrCEID)
		ceIDs[ce]++
		if ceIDs[ce] == 2 {
			v.problem(&v.duplicated, "event id %s stored twice in %s", ce, evtStream)
		}
		et := evtType(m.Subject)
		if et == messages.EvtMemberSelected {
			v.selected++
			var e messages.MemberSelected
			if err := json.Unmarshal(m.Data, &e); err != nil {
				v.problem(nil, "bad member_selected: %v", err)
				continue
			}
			if selected[e.CampaignID] == nil {
				selected[e.CampaignID] = map[string]int{}
			}
			selected[e.CampaignID][e.MemberID]++
			if selected[e.CampaignID][e.MemberID] == 2 {
				v.problem(&v.duplicated, "campaign %s selected member %s twice", e.CampaignID, e.MemberID)
			}
			continue
		}
		if isCompletion(et) {
			completions[commandIDOf(m)] = append(completions[commandIDOf(m)], m)
		}
	}
	dlqByID := map[string]int{}
	for _, m := range dlqs {
		dlqByID[dlq.Parse(m.Seq, time.Time{}, m.Header, m.Data).CommandID]++
	}

	groupsByName := map[string][]simGroup{}
	for _, g := range sim.groups(t) {
		groupsByName[g.Name] = append(groupsByName[g.Name], g)
	}
	owners := map[string]string{}
	campaignSets := map[string]map[string]bool{} // campaign key -> member set of the first campaign
	campaignFirst := map[string]string{}

	for _, c := range cmds {
		evs := completions[c.id]
		switch {
		case len(evs) == 0:
			v.problem(&v.lost, "%s %s: no completion event (dead letters: %d)", c.typ, c.id, dlqByID[c.id])
			continue
		case len(evs) > 1:
			v.problem(&v.duplicated, "%s %s: %d completion events", c.typ, c.id, len(evs))
		}
		ev := evs[0]
		et := evtType(ev.Subject)
		if c.wantDLQ {
			if et != messages.EvtCommandFailed {
				v.problem(&v.lost, "garbage %s %s: completed with %s, want command_failed: %s", c.typ, c.id, et, ev.Data)
				continue
			}
			switch dlqByID[c.id] {
			case 0:
				v.problem(&v.lost, "garbage %s %s: command_failed but no dead letter", c.typ, c.id)
			case 1:
				v.deadLettered++
			default:
				v.deadLettered++
				v.problem(&v.duplicated, "garbage %s %s: %d dead letters", c.typ, c.id, dlqByID[c.id])
			}
			continue
		}
		if et == messages.EvtCommandFailed {
			v.problem(&v.lost, "%s %s failed: %s", c.typ, c.id, ev.Data)
			continue
		}
		if dlqByID[c.id] > 0 {
			v.problem(&v.lost, "%s %s completed but also dead-lettered", c.typ, c.id)
		}
		v.completed++
		switch c.typ {
		case messages.CmdProvisionGroup:
			var e messages.GroupProvisioned
			_ = json.Unmarshal(ev.Data, &e)
			notAdded := len(e.NotAdded)
			if e.Truncated {
				notAdded = e.NotAddedTotal
			}
			// Members with a private profile are invited, not added (as on Wix).
			if got := e.Added + e.AlreadyMembers + e.Invited + notAdded; got != c.rows {
				v.problem(&v.lost, "provision %s: added %d + already %d + invited %d + notAdded %d = %d, roster has %d rows",
					c.id, e.Added, e.AlreadyMembers, e.Invited, notAdded, got, c.rows)
			}
			if got := e.Added + e.AlreadyMembers + e.Invited; got != len(c.resolved) {
				v.problem(&v.lost, "provision %s: %d members added, invited or already there, roster resolves to %d", c.id, got, len(c.resolved))
			}
			gs := groupsByName[c.groupName]
			switch {
			case len(gs) == 0:
				v.problem(&v.lost, "provision %s: no group named %q in the simulator", c.id, c.groupName)
				continue
			case len(gs) > 1:
				v.problem(&v.duplicated, "provision %s: %d groups named %q in the simulator", c.id, len(gs), c.groupName)
			}
			g := gs[0]
			if g.ID != e.GroupID {
				v.problem(&v.duplicated, "provision %s: event names group %s, the simulator has %s", c.id, e.GroupID, g.ID)
			}
			owner, ok := owners[g.ID]
			if !ok {
				owner = sim.groupOwner(t, g.ID)
				owners[g.ID] = owner
			}
			want := len(c.resolved) - e.Invited
			if !slices.Contains(c.resolved, owner) {
				want++
			}
			if g.MembersCount != want {
				v.problem(&v.lost, "provision %s: group %s has %d members, want %d (roster − invited + owner)", c.id, g.ID, g.MembersCount, want)
			}
		case messages.CmdSendCampaign:
			var e messages.CampaignCompleted
			_ = json.Unmarshal(ev.Data, &e)
			got := selected[c.campaignID]
			if e.Selected != len(got) {
				v.problem(&v.lost, "campaign %s: completed says %d selected, %d member_selected stored", c.id, e.Selected, len(got))
			}
			set := map[string]bool{}
			for m := range got {
				set[m] = true
			}
			if first, ok := campaignSets[c.campaignKey]; !ok {
				campaignSets[c.campaignKey], campaignFirst[c.campaignKey] = set, c.id
			} else if !sameSet(first, set) {
				v.problem(&v.lost, "campaign %s selected %d members, campaign %s over the same groups %d", c.id, len(set),
					campaignFirst[c.campaignKey], len(first))
			}
		case messages.CmdPropagateRules:
			var e messages.RulesPropagated
			_ = json.Unmarshal(ev.Data, &e)
			if len(e.Targets) != c.targets || e.Failed != 0 {
				v.problem(&v.lost, "rules %s: %d targets (want %d), %d failed: %s", c.id, len(e.Targets), c.targets, e.Failed, ev.Data)
			}
		}
	}
	// Anything in the DLQ for a valid command is counted above; anything
	// else there belongs to no command of ours.
	known := map[string]bool{}
	for _, c := range cmds {
		known[c.id] = true
	}
	for id, n := range dlqByID {
		if !known[id] && !strings.HasPrefix(id, "unknown-") { // unknown command types are checked apart

			v.problem(&v.lost, "dead letter for unknown command %q (%d)", id, n)
		}
	}
	return v
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func logProblems(t testing.TB, v verdict) {
	t.Helper()
	for _, p := range v.problems {
		t.Errorf("problem: %s", p)
	}
}

func countTypes(cmds []*command) string {
	n := map[string]int{}
	for _, c := range cmds {
		n[c.typ]++
	}
	var parts []string
	for _, k := range sortedKeys(n) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, ",")
}

// conclude verifies a run and reports its figures. Commands left without an
// outcome are diagnosed with a goroutine dump of the processor, then fail the
// test like any loss.
func conclude(t *testing.T, gf *groupflow, js jetstream.JetStream, sim *wixSim, cmds []*command, got int, fig func(verdict) figures) {
	t.Helper()
	v := verify(t, js, sim, cmds)
	f := fig(v)
	f.completed, f.deadLetter, f.lost, f.duplicated = v.completed, v.deadLettered, v.lost, v.duplicated
	if got < len(cmds) && v.duplicated == 0 && v.lost == len(cmds)-got {
		if stuck, inLedger := dumpStuck(t, gf); stuck > 0 {
			t.Logf("%d commands stuck, %d of them in a ledger read", stuck, inLedger)
		}
	}
	logProblems(t, v)
	report(t, f)
}

// dumpStuck makes the processor write a goroutine dump into its log
// (SIGQUIT, which ends it) and counts the goroutines running a command
// (runtime handle) and, among them, those blocked in a ledger KV get.
func dumpStuck(t testing.TB, gf *groupflow) (stuck, inLedger int) {
	t.Helper()
	gf.signal(syscall.SIGQUIT, 10*time.Second)
	b, err := os.ReadFile(gf.logPath)
	if err != nil {
		return 0, 0
	}
	for _, g := range strings.Split(string(b), "\ngoroutine ") {
		if !strings.Contains(g, "(*Runtime).handle") || !strings.Contains(g, "groupflow/internal/runtime.") {
			continue
		}
		stuck++
		if strings.Contains(g, "groupflow/internal/ledger.(*Ledger).getEntry") && strings.Contains(g, "jetstream.(*jetStream).apiRequest") {
			inLedger++
		}
		if stuck <= 3 { // where it waits, in the test's own output (the log may be cut)
			t.Logf("stuck goroutine %s", g[:min(len(g), 6000)])
		}
	}
	t.Logf("goroutine dump: %d goroutines handling a command, %d of them blocked in a ledger KV get", stuck, inLedger)
	return stuck, inLedger
}
