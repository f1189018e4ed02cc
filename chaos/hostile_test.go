package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/dlq"
	"groupflow/messages"
)

// The hostile-producer scenario (issue 12): every way a producer, a forger
// of dead letters or a careless operator was found to stop, fool or escalate
// groupflow, published at the subjects a producer may use, with valid
// commands interleaved. It asserts that
//   - the processor keeps processing valid commands throughout (and /healthz
//     stays up);
//   - every published command ends exactly once: completed, or dead-lettered
//     and announced with command_failed (published = completed + dead-lettered);
//   - a forged dead letter is never executed, and a replayed dead letter whose
//     cause remains is back in the DLQ, every time;
//   - no secret (Wix API key, admin token, a producer's credential headers)
//     reaches the processor's log, the events, the DLQ or the admin API;
//   - the processor's peak RSS stays under hostileRSSBound.

// hostileRSSBound bounds the processor's peak RSS (VmHWM, embedded broker
// included) during the scenario.
const hostileRSSBound = 400 << 20

const (
	hostileWixKey     = "hostile-wix-key-S3CR3T"
	hostileAdminToken = "hostile-admin-token-S3CR3T"
	hostileProducerPW = "producer-password-S3CR3T"
)

// Outcomes a hostile case may be held to.
const (
	wantDLQ       = "dead-lettered"
	wantCompleted = "completed"
	wantEither    = "either" // completed or dead-lettered, exactly once
)

type hostileCase struct {
	name    string
	typ     string // command type (subject groups.cmd.<typ>)
	header  nats.Header
	body    []byte
	want    string
	kind    string // the dead letter's kind, when it matters
	field   string // a field the dead letter must name (invalid)
	id      string // the command id, for completions
	seq     uint64 // commands-stream sequence, once published
	refused error  // the broker refused the publish (a clear error to the producer)
}

type hostileOpts struct {
	name         string
	unknownSites int  // commands for sites groupflow does not serve
	bigBodies    int  // ~900 KB valid commands published in a burst
	bigRoster    bool // a 10,000-row roster whose outcome exceeds the payload limit
	corpus       bool // the fuzz corpus, at every command subject
	replays      int  // rounds of `dlq replay --all`
}

func runHostile(t *testing.T, o hostileOpts) {
	start := time.Now()
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 300, groups: 8, ratePerMinute: 0})
	gf := newGroupflow(t, dir, sim, gfOpts{ackWait: 5 * time.Second, ratePerMin: 100000, maxPayloadMB: 1,
		env: []string{"WIX_API_KEY=" + hostileWixKey, "GROUPFLOW_ADMIN_TOKEN=" + hostileAdminToken}})
	gf.startReady(t)
	_, js := connect(t, gf.natsURL)
	w := loadWorld(t, sim)
	h := &hostile{t: t, js: js, gf: gf}

	probes, probeFails, stopProbes := probeHealth(gf.httpURL + "/healthz")

	// A group with members to be targeted by a destructive sync, and a
	// fresh group without rules to be the source of an empty propagation.
	big := w.groups[len(w.groups)-1]
	emptySrc := h.provisionFresh("hostile-empty-source", "Hostile Empty Source")

	cases := hostileCases(w, big, emptySrc, o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	valid := 0
	for i, c := range cases {
		h.publish(ctx, c)
		// A valid command after every hostile one: processing goes on.
		v := &hostileCase{name: "valid", typ: messages.CmdGenerateReport, want: wantCompleted,
			id: fmt.Sprintf("hostile-valid-%03d", i), body: mustJSON(map[string]any{"id": fmt.Sprintf("hostile-valid-%03d", i), "top": 1, "idle": 1})}
		cases = append(cases, v)
		h.publish(ctx, v)
		valid++
	}
	for _, c := range cases {
		if c.refused != nil && c.want != "" {
			t.Logf("case %s refused at publish: %v", c.name, c.refused)
		}
	}
	out := h.awaitAll(cases, 3*time.Minute)
	counts := h.check(cases, out)

	// Nothing in the sync target changed; the empty source wiped nothing.
	after := groupByID(sim.groups(t), big.ID)
	if after.MembersCount != big.MembersCount {
		t.Errorf("group %s had %d members, now %d: a refused sync removed members", big.ID, big.MembersCount, after.MembersCount)
	}

	// A forged dead letter on the mailer's DLQ subject names a command
	// subject; replays never run it. An honest dead letter whose cause
	// remains is back in the DLQ after each replay.
	forged := h.forgeDeadLetter(big)
	dlqStart := h.dlqEntries()
	for round := range o.replays {
		before := h.dlqEntries()
		res := h.replayAll()
		t.Logf("replay round %d: %.300s", round+1, res)
		h.awaitSettled(2 * time.Minute)
		after := h.dlqEntries()
		if len(after) > len(before) {
			t.Errorf("replay round %d: DLQ grew from %d to %d entries: a replayed dead letter was stored twice", round+1, len(before), len(after))
		}
		for _, m := range missingEntries(before, after) {
			t.Errorf("replay round %d: %s %s (%s: %.120s) is not back in the DLQ", round+1, m.CommandType, m.CommandID, m.Kind, m.Reason)
		}
	}
	dlqAfter := h.dlqEntries()
	if n := countForged(dlqAfter, forged); n != 1 {
		t.Errorf("the forged dead letter is there %d times after the replays, want 1 (kept, refused)", n)
	}
	if len(dlqAfter) != len(dlqStart) {
		t.Errorf("DLQ: %d entries before the replays, %d after", len(dlqStart), len(dlqAfter))
	}
	if h.completedID("forged-sync") {
		t.Errorf("the forged dead letter was executed")
	}
	after = groupByID(sim.groups(t), big.ID)
	if after.MembersCount != big.MembersCount {
		t.Errorf("group %s had %d members, now %d after replaying a forged dead letter", big.ID, big.MembersCount, after.MembersCount)
	}

	stopProbes()
	if crashed, err := gf.crashed(); crashed || !gf.running() {
		t.Fatalf("groupflow is down: %v", err)
	}
	if probeFails.Load() > 0 {
		t.Errorf("/healthz failed %d of %d probes", probeFails.Load(), probes.Load())
	}
	h.checkNoSecrets()
	rss := peakRSS(t, gf.pid())
	if rss > hostileRSSBound {
		t.Errorf("groupflow peak RSS %d MiB, bound %d MiB", rss>>20, hostileRSSBound>>20)
	}
	report(t, figures{scenario: o.name, commands: valid, garbage: len(cases) - valid,
		faults:    counts.String(),
		completed: counts.completed, deadLetter: counts.deadLettered, lost: counts.lost, duplicated: counts.duplicated,
		extra: fmt.Sprintf("refused-at-publish=%d replays=%d dlq-entries=%d forged-executed=0 healthz=%d/%d peak-rss=%dMiB",
			counts.refused, o.replays, len(dlqAfter), probes.Load()-probeFails.Load(), probes.Load(), rss>>20),
		took: time.Since(start)})
}

type hostile struct {
	t  *testing.T
	js jetstream.JetStream
	gf *groupflow
}

// hostileCases builds the cases of issue 12, each with the outcome it must have.
func hostileCases(w *world, big simGroup, emptySrc string, o hostileOpts) []*hostileCase {
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	member := w.members[0]
	report := func(extra map[string]any) []byte {
		m := map[string]any{"top": 1, "idle": 1}
		for k, v := range extra {
			m[k] = v
		}
		return mustJSON(m)
	}
	inv := messages.FailureInvalid
	cs := []*hostileCase{
		// 1. Strings that become subjects, keys, object names or headers.
		{name: "report-id-3100", typ: messages.CmdGenerateReport, body: report(map[string]any{"id": long('i', 3100)}), want: wantDLQ, kind: inv, field: "id"},
		{name: "site-id-5000", typ: messages.CmdGenerateReport, body: report(map[string]any{"id": "hostile-site-5000", "siteId": long('s', 5000)}), want: wantDLQ, kind: inv, field: "siteId"},
		{name: "site-id-wildcards", typ: messages.CmdGenerateReport, body: report(map[string]any{"id": "hostile-site-wild", "siteId": "a.*.>"}), want: wantDLQ, kind: inv, field: "siteId"},
		{name: "campaign-id-5000", typ: messages.CmdSendCampaign, body: mustJSON(map[string]any{"id": "hostile-camp-5000", "campaignId": long('c', 5000), "groupIds": []string{big.ID}}), want: wantDLQ, kind: inv, field: "campaignId"},
		{name: "msg-id-header-3000", typ: messages.CmdGenerateReport, header: nats.Header{nats.MsgIdHdr: {long('m', 3000)}}, body: report(nil), want: wantDLQ, kind: inv, field: "id"},
		{name: "command-id-header-3000", typ: messages.CmdGenerateReport, header: nats.Header{hdrCommandID: {long('g', 3000)}}, body: report(nil), want: wantDLQ, kind: inv, field: "id"},
		// 4. Oversized ids: no group is created, the dead letter is stored and announced.
		{name: "provision-id-70000", typ: messages.CmdProvisionGroup, body: mustJSON(map[string]any{"id": long('p', 70000),
			"group": map[string]any{"name": "Hostile 70k"}, "people": []any{map[string]any{"email": member.LoginEmail}}}), want: wantDLQ, kind: inv, field: "id"},
		{name: "correlation-id-70000", typ: messages.CmdGenerateReport, body: report(map[string]any{"id": "hostile-corr-70k", "correlationId": long('c', 70000)}), want: wantDLQ, kind: inv, field: "correlationId"},
		// Headers near the server's 64 KB limit on a valid command.
		{name: "headers-60k", typ: messages.CmdGenerateReport, header: nats.Header{"X-Pad": {long('x', 60000)}}, body: report(map[string]any{"id": "hostile-headers-60k"}), want: wantCompleted, id: "hostile-headers-60k"},
		{name: "headers-60k-invalid", typ: messages.CmdGenerateReport, header: nats.Header{"X-Pad": {long('x', 60000)}}, body: report(map[string]any{"id": "hostile-headers-60k-inv", "top": -1}), want: wantDLQ, kind: inv, field: "top"},
		// 9. A producer's credentials never reach the DLQ.
		{name: "credential-headers", typ: messages.CmdGenerateReport, header: nats.Header{
			"Authorization": {"Bearer " + hostileProducerPW}, "X-Api_Key": {hostileProducerPW}, "Cookie": {"s=" + hostileProducerPW},
			"X-Auth": {hostileProducerPW}, "X-Session-Token": {hostileProducerPW}},
			body: report(map[string]any{"id": "hostile-creds", "idle": -5}), want: wantDLQ, kind: inv, field: "idle"},
		// 9. Control characters, terminal escapes and invalid UTF-8.
		{name: "name-control-chars", typ: messages.CmdProvisionGroup, body: mustJSON(map[string]any{"id": "hostile-ctl",
			"group": map[string]any{"name": "Bad\u0007Name\u001b[2J"}}), want: wantDLQ, kind: inv, field: "group.name"},
		{name: "name-invalid-utf8", typ: messages.CmdProvisionGroup, body: []byte("{\"id\":\"hostile-utf8\",\"group\":{\"name\":\"Bad \xff\xfe name\"}}"), want: wantDLQ, kind: messages.FailureMalformed},
		{name: "terminal-escape-body", typ: messages.CmdSendCampaign, body: []byte("\x1b]0;owned\x07\x1b[31mnot json"), want: wantDLQ, kind: messages.FailureMalformed},
		// 7. Destructive commands without an explicit flag.
		{name: "rules-from-empty-source", typ: messages.CmdPropagateRules, body: mustJSON(map[string]any{"id": "hostile-empty-rules",
			"sourceGroupId": emptySrc, "targets": map[string]any{"groupIds": []string{big.ID}}}), want: wantDLQ, kind: messages.FailurePermanent},
		{name: "sync-roster-of-one", typ: messages.CmdProvisionGroup, body: mustJSON(map[string]any{"id": "hostile-sync-one",
			"group": map[string]any{"name": big.Name}, "membership": "sync", "people": []any{map[string]any{"email": member.LoginEmail}}}),
			want: wantDLQ, kind: messages.FailurePermanent},
		{name: "sync-empty-roster", typ: messages.CmdProvisionGroup, body: mustJSON(map[string]any{"id": "hostile-sync-empty",
			"group": map[string]any{"name": big.Name}, "membership": "sync"}), want: wantDLQ, kind: inv, field: "people"},
		// Plain garbage.
		{name: "empty-body", typ: messages.CmdProvisionGroup, body: nil, want: wantDLQ, kind: messages.FailureMalformed},
		{name: "json-array", typ: messages.CmdSetMembershipQuestions, body: []byte(`[1,2,3]`), want: wantDLQ, kind: messages.FailureMalformed},
		{name: "deep-nesting", typ: messages.CmdPropagateRules, body: []byte(strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)), want: wantDLQ},
	}
	for i := range o.unknownSites {
		id := fmt.Sprintf("hostile-unknown-site-%03d", i)
		cs = append(cs, &hostileCase{name: "unknown-site", typ: messages.CmdGenerateReport,
			body: report(map[string]any{"id": id, "siteId": fmt.Sprintf("not-our-site-%03d", i)}), want: wantDLQ, kind: messages.FailurePermanent})
	}
	pad := long('z', 900<<10)
	for i := range o.bigBodies {
		id := fmt.Sprintf("hostile-big-body-%02d", i)
		cs = append(cs, &hostileCase{name: "big-body", typ: messages.CmdGenerateReport, body: report(map[string]any{"id": id, "padding": pad}),
			want: wantCompleted, id: id})
	}
	if o.bigRoster {
		cs = append(cs, bigRosterCase())
	}
	if o.corpus {
		cs = append(cs, corpusCases()...)
	}
	// The body's id, when it is a valid one, names the case's completion:
	// a case that must be dead-lettered is caught completing too.
	for _, c := range cs {
		var v struct {
			ID string `json:"id"`
		}
		if c.id == "" && json.Unmarshal(c.body, &v) == nil && v.ID != "" && messages.IDProblem(v.ID) == "" {
			c.id = v.ID
		}
	}
	return cs
}

// bigRosterCase: 10,000 unknown people with long names, whose notAdded list
// echoes them: the outcome is larger than the 1 MiB payload limit, and is
// still exactly one event (truncated, the full list in the object store).
func bigRosterCase() *hostileCase {
	people := make([]any, 0, messages.MaxPeople)
	for i := range messages.MaxPeople {
		people = append(people, map[string]any{"email": fmt.Sprintf("nobody-%05d-%s@nowhere.example", i, strings.Repeat("n", 40))})
	}
	id := "hostile-big-roster"
	return &hostileCase{name: "outcome-over-payload", typ: messages.CmdProvisionGroup, id: id, want: wantCompleted,
		body: mustJSON(map[string]any{"id": id, "group": map[string]any{"name": "Hostile Big Roster"}, "people": people})}
}

// corpusCases publishes every seed of the fuzz corpus (messages/testdata)
// at every command subject: each must end exactly once, either way.
func corpusCases() []*hostileCase {
	var bodies [][]byte
	for _, dir := range []string{"messages/testdata/commands", "messages/testdata/fuzz/FuzzDecode"} {
		files, _ := filepath.Glob(filepath.Join(repoRoot(), dir, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || filepath.Base(f) == "README" {
				continue
			}
			if strings.HasPrefix(string(b), "go test fuzz v1") {
				b = fuzzCorpusBody(b)
			}
			if b != nil {
				bodies = append(bodies, b)
			}
		}
	}
	rng := rand.New(rand.NewPCG(12, 1))
	var cs []*hostileCase
	for i, b := range bodies {
		for _, typ := range messages.CommandTypes() {
			// The corpus reuses ids: give each copy its own.
			id := fmt.Sprintf("hostile-corpus-%03d-%s", i, typ)
			body := withID(b, id)
			want := wantEither
			if _, err := messages.Decode(typ, body); err != nil {
				want = wantDLQ
			}
			cs = append(cs, &hostileCase{name: "corpus", typ: typ, body: body, want: want, id: id,
				header: nats.Header{nats.MsgIdHdr: {id}}})
		}
		if rng.IntN(2) == 0 {
			cs = append(cs, &hostileCase{name: "corpus-garbage", typ: messages.CmdGenerateReport, body: garbageBody(messages.CmdGenerateReport, i, rng),
				want: wantEither, id: fmt.Sprintf("hostile-garbage-%03d", i), header: nats.Header{nats.MsgIdHdr: {fmt.Sprintf("hostile-garbage-%03d", i)}}})
		}
	}
	return cs
}

// withID sets the "id" of a JSON object body (other bodies are kept).
func withID(b []byte, id string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return b
	}
	m["id"] = json.RawMessage(strconv.Quote(id))
	return mustJSON(m)
}

// fuzzCorpusBody extracts the []byte argument of a `go test fuzz v1` file.
func fuzzCorpusBody(b []byte) []byte {
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "[]byte("); ok {
			s = strings.TrimSuffix(strings.TrimSpace(s), ")")
			if v, err := strconv.Unquote(s); err == nil {
				return []byte(v)
			}
		}
	}
	return nil
}

func (h *hostile) publish(ctx context.Context, c *hostileCase) {
	m := nats.NewMsg("groups.cmd." + c.typ)
	m.Data = c.body
	for k, vs := range c.header {
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := h.js.PublishMsg(pctx, m)
	if err != nil {
		c.refused = err
		return
	}
	c.seq = ack.Sequence
}

// provisionFresh creates an empty group and returns its id.
func (h *hostile) provisionFresh(id, name string) string {
	h.t.Helper()
	c := &hostileCase{name: "setup", typ: messages.CmdProvisionGroup, id: id, want: wantCompleted,
		body: mustJSON(map[string]any{"id": id, "group": map[string]any{"name": name}})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.publish(ctx, c)
	var gid string
	if !waitFor(time.Minute, 200*time.Millisecond, func() bool {
		msgs, err := tryReadStream(h.js, evtStream, "groups.evt."+messages.EvtGroupProvisioned)
		if err != nil {
			return false
		}
		for _, m := range msgs {
			var e messages.GroupProvisioned
			if json.Unmarshal(m.Data, &e) == nil && e.CommandID == id {
				gid = e.GroupID
				return true
			}
		}
		return false
	}) || gid == "" {
		h.t.Fatalf("setup group %q not provisioned", name)
	}
	return gid
}

// outcomes are what the streams say about the published commands.
type outcomes struct {
	dlqBySeq    map[uint64][]dlq.Entry // original commands-stream sequence -> dead letters
	completions map[string]int         // command id -> completion events (not command_failed)
	failed      map[string]int         // command id -> command_failed events
}

func (h *hostile) read() (*outcomes, error) {
	o := &outcomes{dlqBySeq: map[uint64][]dlq.Entry{}, completions: map[string]int{}, failed: map[string]int{}}
	dl, err := tryReadStream(h.js, dlqStream, "groups.dlq.>")
	if err != nil {
		return nil, err
	}
	for _, m := range dl {
		e := dlq.Parse(m.Seq, time.Time{}, m.Header, m.Data)
		o.dlqBySeq[e.OriginalSeq] = append(o.dlqBySeq[e.OriginalSeq], *e)
	}
	evts, err := tryReadStreamCompletions(h.js, evtStream, "groups.evt.>")
	if err != nil {
		return nil, err
	}
	for _, m := range evts {
		id := commandIDOf(m)
		if evtType(m.Subject) == messages.EvtCommandFailed {
			o.failed[id]++
		} else {
			o.completions[id]++
		}
	}
	return o, nil
}

func (o *outcomes) ended(c *hostileCase) bool {
	return len(o.dlqBySeq[c.seq]) > 0 || (c.id != "" && o.completions[c.id] > 0)
}

// awaitAll waits until every published case has an outcome.
func (h *hostile) awaitAll(cases []*hostileCase, timeout time.Duration) *outcomes {
	h.t.Helper()
	var out *outcomes
	waitFor(timeout, time.Second, func() bool {
		if crashed, err := h.gf.crashed(); crashed {
			h.t.Fatalf("groupflow exited: %v", err)
		}
		o, err := h.read()
		if err != nil {
			return false
		}
		out = o
		for _, c := range cases {
			if c.refused == nil && !o.ended(c) {
				return false
			}
		}
		return true
	})
	if out == nil {
		h.t.Fatal("streams could not be read")
	}
	return out
}

type hostileCounts struct {
	completed, deadLettered, refused, lost, duplicated int
	byName                                             map[string]int
}

func (c hostileCounts) String() string {
	var parts []string
	for _, k := range sortedKeys(c.byName) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, c.byName[k]))
	}
	return strings.Join(parts, " ")
}

// check holds every case to its outcome: exactly one, of the wanted kind,
// dead letters announced once.
func (h *hostile) check(cases []*hostileCase, o *outcomes) hostileCounts {
	t := h.t
	cnt := hostileCounts{byName: map[string]int{}}
	for _, c := range cases {
		if c.name != "valid" {
			cnt.byName[c.name]++
		}
		if c.refused != nil {
			cnt.refused++
			if c.want == wantCompleted {
				t.Errorf("case %s: a valid command was refused at publish: %v", c.name, c.refused)
			}
			continue
		}
		dls := o.dlqBySeq[c.seq]
		done := 0
		if c.id != "" {
			done = o.completions[c.id]
		}
		switch {
		case len(dls)+done == 0:
			cnt.lost++
			t.Errorf("case %s (seq %d): neither completed nor dead-lettered", c.name, c.seq)
			continue
		case len(dls)+done > 1:
			cnt.duplicated++
			t.Errorf("case %s (seq %d): %d dead letters and %d completions, want exactly one outcome", c.name, c.seq, len(dls), done)
			continue
		}
		if done == 1 {
			cnt.completed++
			if c.want == wantDLQ {
				t.Errorf("case %s: completed, want dead-lettered (%s)", c.name, c.kind)
			}
			continue
		}
		cnt.deadLettered++
		e := dls[0]
		if c.want == wantCompleted {
			t.Errorf("case %s: dead-lettered (%s: %s), want completed", c.name, e.Kind, e.Reason)
		}
		if c.kind != "" && e.Kind != c.kind {
			t.Errorf("case %s: dead letter kind %s (%s), want %s", c.name, e.Kind, e.Reason, c.kind)
		}
		if c.field != "" && !namesField(e, c.field) {
			t.Errorf("case %s: dead letter does not name field %s: %s %v", c.name, c.field, e.Reason, e.Fields)
		}
		if n := o.failed[e.CommandID]; n < 1 {
			t.Errorf("case %s: dead letter %q never announced with command_failed", c.name, e.CommandID)
		}
		if len(e.CommandID) > messages.MaxIDLen*2 {
			t.Errorf("case %s: dead letter keeps an oversized command id (%d bytes)", c.name, len(e.CommandID))
		}
	}
	return cnt
}

func namesField(e dlq.Entry, field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return strings.Contains(e.Reason, field)
}

func (h *hostile) completedID(id string) bool {
	o, err := h.read()
	if err != nil {
		h.t.Fatal(err)
	}
	return o.completions[id] > 0
}

// forgeDeadLetter publishes, as the mailer could, a dead letter on the
// member_selected DLQ subject that names the provision_group subject and
// carries a destructive sync; it returns the forged command id.
func (h *hostile) forgeDeadLetter(big simGroup) string {
	h.t.Helper()
	const id = "forged-sync"
	m := nats.NewMsg("groups.dlq." + messages.EvtMemberSelected)
	m.Data = mustJSON(map[string]any{"id": id, "group": map[string]any{"name": big.Name}, "membership": "sync",
		"allowMassRemoval": true, "people": []any{}})
	m.Header.Set(dlq.HeaderOriginalSubject, "groups.cmd."+messages.CmdProvisionGroup)
	m.Header.Set(dlq.HeaderCommandType, messages.CmdProvisionGroup)
	m.Header.Set(dlq.HeaderCommandID, id)
	m.Header.Set(dlq.HeaderKind, messages.FailureExhausted)
	m.Header.Set(dlq.HeaderReason, "looks ordinary")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		h.t.Fatalf("forge: %v", err)
	}
	return id
}

// missingEntries lists the entries of before (by command type and id) that
// after lacks.
func missingEntries(before, after []dlq.Entry) []dlq.Entry {
	have := map[string]int{}
	for _, e := range after {
		have[e.CommandType+"/"+e.CommandID]++
	}
	var out []dlq.Entry
	for _, e := range before {
		k := e.CommandType + "/" + e.CommandID
		if have[k] > 0 {
			have[k]--
			continue
		}
		out = append(out, e)
	}
	return out
}

func countForged(entries []dlq.Entry, id string) int {
	n := 0
	for _, e := range entries {
		if e.CommandID == id {
			n++
		}
	}
	return n
}

func (h *hostile) dlqEntries() []dlq.Entry {
	h.t.Helper()
	msgs := readStream(h.t, h.js, dlqStream, "groups.dlq.>")
	out := make([]dlq.Entry, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, *dlq.Parse(m.Seq, time.Time{}, m.Header, m.Data))
	}
	return out
}

// replayAll is `groupctl dlq replay --all` through the admin API.
func (h *hostile) replayAll() string {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.gf.httpURL+"/dlq/replay", strings.NewReader(`{"all":true}`))
	req.Header.Set("Authorization", "Bearer "+hostileAdminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := httpc.Do(req)
	if err != nil {
		h.t.Fatalf("replay: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("replay: %d %s", res.StatusCode, b)
	}
	return string(b)
}

// awaitSettled waits until no command is left in work and the DLQ's size
// has not changed for three polls.
func (h *hostile) awaitSettled(timeout time.Duration) {
	h.t.Helper()
	stable, last := 0, uint64(0)
	ok := waitFor(timeout, 500*time.Millisecond, func() bool {
		n, err := streamCount(h.js, dlqStream, "groups.dlq.>")
		pending, perr := h.pendingCommands()
		if err != nil || perr != nil || pending > 0 || n != last {
			stable, last = 0, n
			return false
		}
		stable++
		return stable >= 3
	})
	if !ok {
		h.t.Errorf("commands still in work %s after a replay", timeout)
	}
}

// pendingCommands is how many commands the processor's consumers have not
// acknowledged yet.
func (h *hostile) pendingCommands() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, cmdStream)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, typ := range messages.CommandTypes() {
		c, err := s.Consumer(ctx, "groupflow_"+typ)
		if err != nil {
			return 0, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		total += info.NumPending + uint64(info.NumAckPending)
	}
	return total, nil
}

// checkNoSecrets looks for every secret in the processor's log, every event
// and dead letter (headers and body), and the admin API's DLQ listing.
func (h *hostile) checkNoSecrets() {
	t := h.t
	secrets := []string{hostileWixKey, hostileAdminToken, hostileProducerPW}
	logb, _ := os.ReadFile(h.gf.logPath)
	places := map[string][]byte{"groupflow log": logb}
	for _, s := range []struct{ stream, filter string }{{evtStream, "groups.evt.>"}, {dlqStream, "groups.dlq.>"}} {
		for _, m := range readStream(t, h.js, s.stream, s.filter) {
			var buf bytes.Buffer
			for k, vs := range m.Header {
				fmt.Fprintf(&buf, "%s: %s\n", k, strings.Join(vs, ","))
			}
			buf.Write(m.Data)
			places[fmt.Sprintf("%s seq %d", s.stream, m.Seq)] = buf.Bytes()
		}
	}
	req, _ := http.NewRequest("GET", h.gf.httpURL+"/dlq", nil)
	req.Header.Set("Authorization", "Bearer "+hostileAdminToken)
	if res, err := httpc.Do(req); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		places["GET /dlq"] = b
	}
	for where, b := range places {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %q… found in %s", s[:8], where)
			}
		}
	}
}

// probeHealth polls url every 100 ms until stop is called.
func probeHealth(url string) (probes, fails *atomic.Int64, stop func()) {
	probes, fails = new(atomic.Int64), new(atomic.Int64)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			probes.Add(1)
			if !httpOK(url) {
				fails.Add(1)
			}
		}
	}()
	var once sync.Once
	return probes, fails, func() { once.Do(func() { close(quit); wg.Wait() }) }
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("peak RSS: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func groupByID(gs []simGroup, id string) simGroup {
	for _, g := range gs {
		if g.ID == id {
			return g
		}
	}
	return simGroup{}
}
