package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"groupflow/messages"
)

// ---------------------------------------------------------------- 1. processor killed

type killOpts struct {
	name     string
	commands int
	kills    int
	external bool // the broker is a separate nats-server that survives the kills
	seed     uint64
	gap      time.Duration // between publishes
	timeout  time.Duration // for every outcome after the last kill
}

// runProcessorKill: kill -9 the processor at random (seeded) moments while
// mixed commands flow, restart it each time, then verify.
func runProcessorKill(t *testing.T, o killOpts) {
	start := time.Now()
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 400, groups: 16, ratePerMinute: 0})
	gopts := gfOpts{ackWait: 3 * time.Second, ratePerMin: 100000, maxDeliver: 20}
	if o.external {
		n := startNATS(t, dir, "nats", filepath.Join(dir, "nats-store"))
		gopts.natsURL, gopts.replicas = n.url, 1
	}
	gf := newGroupflow(t, dir, sim, gopts)
	gf.startReady(t)
	_, js := connect(t, gf.natsURL)
	t.Logf("processes up after %s", time.Since(start).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(o.seed, 1))
	w := loadWorld(t, sim)
	cmds := w.mixedCommands(fmt.Sprintf("kill%d", o.seed), o.commands, rng)
	// A little Wix latency keeps commands in flight when the kills land.
	sim.setFaults(t, map[string]any{"latency": "20ms", "jitter": "40ms", "seed": o.seed})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(ctx, js, cmds, o.gap) }()

	// The killer: kill -9 after a random 0.4..2.4 s of work, once commands
	// are in flight (ack pending on a consumer), stay down a random 0..0.8 s,
	// restart and await readiness.
	kills, inFlightKills := 0, 0
	var downFor time.Duration
	for kills < o.kills {
		time.Sleep(400*time.Millisecond + time.Duration(rng.IntN(2000))*time.Millisecond)
		if waitFor(3*time.Second, 20*time.Millisecond, func() bool {
			return sumMetric(metrics(gf.httpURL+"/metrics"), "groupflow_consumer_ack_pending") > 0
		}) {
			inFlightKills++
		}
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited by itself: %v", err)
		}
		gf.kill()
		kills++
		t0 := time.Now()
		time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		gf.startReady(t)
		downFor += time.Since(t0)
		t.Logf("kill %d/%d done (pid now %d)", kills, o.kills, gf.pid())
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("kills done and commands published after %s", time.Since(start).Round(time.Millisecond))
	got := awaitOutcomes(t, js, cmds, o.timeout, func() {
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited by itself: %v", err)
		}
	})
	if got < len(cmds) {
		t.Logf("only %d of %d commands have an outcome after %s", got, len(cmds), o.timeout)
	}
	t.Logf("outcomes of %d commands after %s", got, time.Since(start).Round(time.Millisecond))
	broker := "embedded"
	if o.external {
		broker = "external"
	}
	conclude(t, gf, js, sim, cmds, got, func(v verdict) figures {
		return figures{scenario: o.name, commands: len(cmds), kills: kills, restarts: kills,
			faults: fmt.Sprintf("kill -9 x%d (%d with commands in flight), broker %s, down %s in total, wix latency 20-60ms",
				kills, inFlightKills, broker, downFor.Round(100*time.Millisecond)),
			extra: fmt.Sprintf("mix=%s member_selected=%d redelivered=%d republished=%d", countTypes(cmds), v.selected,
				gf.logCount("handling command")-gf.logCount(`"delivery": 1}`), gf.logCount("outcome event republished")),
			took: time.Since(start)}
	})
}

// ---------------------------------------------------------------- 5. poison and garbage

type poisonOpts struct {
	name           string
	garbage, valid int
	unknownTypes   int // garbage on groups.cmd.<unknown type>
	seed           uint64
}

// garbageBody returns the i-th malformed or invalid body for a command type.
func garbageBody(typ string, i int, rng *rand.Rand) []byte {
	bodies := []string{
		``, ` `, `null`, `[]`, `"str"`, `42`, `true`, `{`, `{"group":`, `}{`, `{"a":1}{"b":2}`,
		"\x00\x01\x02\xff\xfe", `{"group":{"name":""}}`, `{"group":{"name":42}}`, `{"group":"x"}`,
		`{"people":"everyone"}`, `{"group":{"name":"ok","privacyStatus":"OPEN"}}`,
		`{"group":{"name":"ok"},"membership":"replace"}`, `{"campaignId":""}`, `{"campaignId":"a b","groupIds":["g"]}`,
		`{"campaignId":"c","groupIds":[]}`, `{"campaignId":"c","groupIds":"g1"}`, `{"campaignId":"c","groupIds":["g","g"]}`,
		`{"campaignId":"c","groupIds":["g"],"audience":{"type":"interest"}}`,
		`{"campaignId":"c","groupIds":["g"],"content":"not an object"}`, `{"targets":{}}`,
		`{"rules":[{"title":""}],"targets":{"all":true}}`, `{"sourceGroupId":"s","targets":{"all":true,"namePrefix":"x"}}`,
		`{"top":-1}`, `{"idle":100000}`, `{"idleDays":-5}`, `{"top":"ten"}`, `{"top":1.5}`,
		`{"groupIds":["g"]}`, `{"groupIds":["g"],"questions":null}`, `{"\u0000":"\ud800"}`,
		`{"group":{"name":"` + string(make([]byte, 0)) + `"}}`, `{"siteId":{"nested":true}}`,
	}
	b := []byte(bodies[(i+rng.IntN(len(bodies)))%len(bodies)])
	if rng.IntN(10) == 0 { // random bytes
		b = make([]byte, 1+rng.IntN(200))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
	}
	return b
}

// runPoison publishes garbage mixed with valid commands and checks that every
// one is either completed or dead-lettered (processed + dead-lettered =
// published) while /healthz answers throughout.
func runPoison(t *testing.T, o poisonOpts) {
	start := time.Now()
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 200, groups: 8, ratePerMinute: 0})
	gf := newGroupflow(t, dir, sim, gfOpts{ackWait: 5 * time.Second, ratePerMin: 100000})
	gf.startReady(t)
	_, js := connect(t, gf.natsURL)

	rng := rand.New(rand.NewPCG(o.seed, 5))
	w := loadWorld(t, sim)
	valid := w.mixedCommands(fmt.Sprintf("ok%d", o.seed), o.valid, rng)
	types := []string{messages.CmdProvisionGroup, messages.CmdSendCampaign, messages.CmdSetMembershipQuestions,
		messages.CmdPropagateRules, messages.CmdGenerateReport}
	var garbage []*command
	for i := range o.garbage {
		typ := types[rng.IntN(len(types))]
		// Only bodies the contract refuses: unknown fields are ignored, so
		// some bodies are valid for some types ({"targets":{}} is a valid
		// generate_report); those are drawn again.
		body := garbageBody(typ, i, rng)
		_, err := messages.Decode(typ, body)
		for try := 0; err == nil && try < 100; try++ {
			body = garbageBody(typ, i+try+1, rng)
			_, err = messages.Decode(typ, body)
		}
		// What the runtime takes as the id: the body's "id" string, else the
		// Nats-Msg-Id we set; our bodies carry no "id".
		c := &command{id: fmt.Sprintf("garbage-%d-%04d", o.seed, i), typ: typ, body: body, wantDLQ: err != nil}
		garbage = append(garbage, c)
	}
	var unknown []*command
	for i := range o.unknownTypes {
		unknown = append(unknown, &command{id: fmt.Sprintf("unknown-%d-%04d", o.seed, i), typ: "no_such_command",
			body: []byte(`{"x":1}`), wantDLQ: true})
	}
	// Interleave: valid commands spread among the garbage.
	all := append(append([]*command{}, garbage...), unknown...)
	for _, c := range valid {
		j := rng.IntN(len(all) + 1)
		all = append(all[:j], append([]*command{c}, all[j:]...)...)
	}
	nWantDLQ := 0
	for _, c := range all {
		if c.wantDLQ {
			nWantDLQ++
		}
	}

	// /healthz every 100 ms throughout.
	probes, probeFails, stopProbes := probeHealth(gf.httpURL + "/healthz")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := publishAll(ctx, js, all, 0); err != nil {
		t.Fatal(err)
	}
	// Unknown command types have no consumer: they are checked apart.
	known := append(append([]*command{}, garbage...), valid...)
	got := awaitOutcomes(t, js, known, 3*time.Minute, func() {
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited: %v", err)
		}
	})
	stopProbes()
	if crashed, err := gf.crashed(); crashed || !gf.running() {
		t.Fatalf("groupflow is down: %v", err)
	}
	v := verify(t, js, sim, known)
	logProblems(t, v)
	if probeFails.Load() > 0 {
		t.Errorf("/healthz failed %d of %d probes", probeFails.Load(), probes.Load())
	}
	published, err := streamCount(js, cmdStream, "groups.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	if int(published) != len(all) {
		t.Errorf("commands stream holds %d messages, %d published", published, len(all))
	}
	// processed + dead-lettered = published (known types).
	if v.completed+v.deadLettered != len(known) {
		t.Errorf("processed %d + dead-lettered %d = %d, published %d (outcomes seen for %d)",
			v.completed, v.deadLettered, v.completed+v.deadLettered, len(known), got)
	}
	unknownOutcome := 0
	if len(unknown) > 0 {
		unknownOutcome = awaitOutcomes(t, js, unknown, 15*time.Second, nil)
	}
	report(t, figures{scenario: o.name, commands: len(valid), garbage: len(garbage) + len(unknown),
		faults:    fmt.Sprintf("%d invalid of %d garbage, %d unknown-type", nWantDLQ-len(unknown), len(garbage), len(unknown)),
		completed: v.completed, deadLetter: v.deadLettered, lost: v.lost, duplicated: v.duplicated,
		extra: fmt.Sprintf("healthz=%d/%d unknown-type-outcomes=%d/%d", probes.Load()-probeFails.Load(), probes.Load(), unknownOutcome, len(unknown)),
		took:  time.Since(start)})
	if unknownOutcome < len(unknown) {
		t.Errorf("%d of %d commands on an unknown command type (groups.cmd.no_such_command) are "+
			"neither processed nor dead-lettered", len(unknown)-unknownOutcome, len(unknown))
	}
}
