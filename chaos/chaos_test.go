//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The long scenarios of issue 8 (`make chaos`).

// 1. Processor killed: 200 mixed commands, kill -9 at random moments,
// restarted each time; with the embedded broker (it dies with the processor
// and restarts on the same data dir) and with an external nats-server.
func TestChaosProcessorKilled(t *testing.T) {
	t.Run("embedded-broker", func(t *testing.T) {
		runProcessorKill(t, killOpts{name: "processor-killed/embedded", commands: 200, kills: 8, seed: 11,
			gap: 60 * time.Millisecond, timeout: 3 * time.Minute})
	})
	t.Run("external-broker", func(t *testing.T) {
		runProcessorKill(t, killOpts{name: "processor-killed/external", commands: 200, kills: 8, seed: 12, external: true,
			gap: 60 * time.Millisecond, timeout: 3 * time.Minute})
	})
}

// 2. Wix storms: 20% 5xx, bursts of 429, 2 s latency spikes, connection
// resets. Every command completes, none is dead-lettered, 429s stay bounded.
func TestChaosWixStorms(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	const simRate, ourRate = 3000, 2400
	sim := startWixSim(t, dir, simOpts{members: 400, groups: 16, ratePerMinute: simRate})
	gf := newGroupflow(t, dir, sim, gfOpts{ackWait: 10 * time.Second, ratePerMin: ourRate})
	gf.startReady(t)
	_, js := connect(t, gf.natsURL)
	rng := rand.New(rand.NewPCG(21, 2))
	w := loadWorld(t, sim)
	cmds := w.mixedCommands("storm", 120, rng)
	before := sim.calls(t)

	// A 429 burst is a window in which Wix answers every request with 429
	// (as when a site's quota is exhausted).
	storm := func(seed int64, burst time.Duration) {
		sim.setFaults(t, map[string]any{
			"errorRates": map[string]float64{"500": 0.10, "502": 0.04, "503": 0.06}, // 20% 5xx
			"spikeProb":  0.05, "spike": "2s", "resetProb": 0.03, "burst429For": burst.String(), "seed": seed,
		})
	}
	const burstFor = 2 * time.Second
	storm(1, burstFor)
	bursts := 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := publishAll(ctx, js, cmds, 0); err != nil {
		t.Fatal(err)
	}
	// Then a 2 s 429 window every 5 s while the commands run (at most 12).
	stormStart := time.Now()
	got := awaitOutcomes(t, js, cmds, 5*time.Minute, func() {
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited: %v", err)
		}
		if time.Since(stormStart) > time.Duration(bursts)*5*time.Second && bursts < 12 {
			bursts++
			storm(int64(bursts+1), burstFor)
		}
	})
	sim.clearFaults(t)
	after := sim.calls(t)
	m := metrics(gf.httpURL + "/metrics")
	req := func(status string) int {
		return int(sumMetric(m, "groupflow_wix_requests_total", `status="`+status+`"`))
	}
	n5xx := req("500") + req("502") + req("503") + req("504")
	nReset := req("error")
	n429 := req("429")
	slow := int(sumMetric(m, "groupflow_wix_request_duration_seconds_count") - sumMetric(m, "groupflow_wix_request_duration_seconds_bucket", `le="1"`))
	total := int(sumMetric(m, "groupflow_wix_requests_total"))
	v := verify(t, js, sim, cmds)
	logProblems(t, v)
	throttled := after.Throttled - before.Throttled
	// Bounded: groupflow pauses the site on a 429, so a 2 s window costs at
	// most one 429 per command in flight (5 handlers x concurrency 4) plus a
	// probe every pause; beyond the windows, at most 2% of the requests.
	bound := int64(bursts*30) + int64(total)/50 + 5
	report(t, figures{scenario: "wix-storms", commands: len(cmds),
		faults:    fmt.Sprintf("5xx=%d resets/timeouts=%d 429=%d (%d windows of %s) slow>1s=%d of %d requests", n5xx, nReset, n429, bursts, burstFor, slow, total),
		completed: v.completed, deadLetter: v.deadLettered, lost: v.lost, duplicated: v.duplicated,
		extra: fmt.Sprintf("outcomes=%d sim-throttled=%d bound=%d sim-calls=%d member_selected=%d", got, throttled, bound,
			after.Total-before.Total, v.selected),
		took: time.Since(start)})
	if throttled > bound {
		t.Errorf("429s not bounded: the simulator throttled %d requests, bound %d", throttled, bound)
	}
	if n5xx == 0 || nReset == 0 || n429 == 0 {
		t.Errorf("the storm did not happen: 5xx=%d resets=%d 429=%d", n5xx, nReset, n429)
	}
}

// 3. Broker restart: an external nats-server (JetStream, file store)
// restarted mid-run, once gracefully and once with kill -9; the processor
// reconnects and nothing is lost.
func TestChaosBrokerRestart(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 400, groups: 16, ratePerMinute: 0})
	n := startNATS(t, dir, "nats", filepath.Join(dir, "nats-store"))
	gf := newGroupflow(t, dir, sim, gfOpts{natsURL: n.url, replicas: 1, ackWait: 5 * time.Second, ratePerMin: 100000})
	gf.startReady(t)
	_, js := connect(t, n.url)
	rng := rand.New(rand.NewPCG(31, 3))
	w := loadWorld(t, sim)
	cmds := w.mixedCommands("broker", 100, rng)
	sim.setFaults(t, map[string]any{"latency": "20ms", "jitter": "40ms", "seed": 31})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(ctx, js, cmds, 80*time.Millisecond) }()
	restarts := 0
	var down time.Duration
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		time.Sleep(1500*time.Millisecond + time.Duration(rng.IntN(1500))*time.Millisecond)
		waitFor(3*time.Second, 20*time.Millisecond, func() bool { // preferably with commands in flight
			return sumMetric(metrics(gf.httpURL+"/metrics"), "groupflow_consumer_ack_pending") > 0
		})
		t0 := time.Now()
		n.signal(sig, 15*time.Second)
		time.Sleep(2 * time.Second)
		n.start()
		n.awaitUp(t, 60*time.Second)
		restarts++
		down += time.Since(t0)
		t.Logf("broker restart %d (%s) done", i+1, sig)
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited while the broker was down: %v", err)
		}
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	got := awaitOutcomes(t, js, cmds, 3*time.Minute, func() {
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited: %v", err)
		}
	})
	if !waitFor(30*time.Second, 200*time.Millisecond, func() bool { return httpOK(gf.httpURL + "/readyz") }) {
		t.Errorf("groupflow not ready after the broker restarts")
	}
	conclude(t, gf, js, sim, cmds, got, func(v verdict) figures {
		return figures{scenario: "broker-restart", commands: len(cmds), restarts: restarts,
			faults: fmt.Sprintf("nats-server SIGTERM+restart, kill -9+restart, down %s in total", down.Round(100*time.Millisecond)),
			extra: fmt.Sprintf("outcomes=%d processor-restarts=0 member_selected=%d redelivered=%d", got, v.selected,
				gf.logCount("handling command")-gf.logCount(`"delivery": 1}`)),
			took: time.Since(start)}
	})
}

// 4. Cluster node loss: three nats-server processes forming a JetStream
// cluster, streams and KV at R3; the node leading the commands stream is
// killed mid-run and brought back.
func TestChaosClusterNodeLoss(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 400, groups: 16, ratePerMinute: 0})
	nodes := startCluster(t, dir)
	urls := nodes[0].url + "," + nodes[1].url + "," + nodes[2].url
	gf := newGroupflow(t, dir, sim, gfOpts{natsURL: urls, replicas: 3, ackWait: 5 * time.Second, ratePerMin: 100000})
	gf.startReady(t)
	_, js := connect(t, urls)
	// Streams and the ledger at R3.
	for _, s := range []string{cmdStream, evtStream, dlqStream, "KV_GROUPFLOW_LEDGER"} {
		info := streamInfo(t, js, s)
		if info.Config.Replicas != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", s, info.Config.Replicas)
		}
	}
	rng := rand.New(rand.NewPCG(41, 4))
	w := loadWorld(t, sim)
	cmds := w.mixedCommands("cluster", 100, rng)
	sim.setFaults(t, map[string]any{"latency": "20ms", "jitter": "40ms", "seed": 41})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishAll(ctx, js, cmds, 80*time.Millisecond) }()

	time.Sleep(2 * time.Second)
	waitFor(3*time.Second, 20*time.Millisecond, func() bool { // preferably with commands in flight
		return sumMetric(metrics(gf.httpURL+"/metrics"), "groupflow_consumer_ack_pending") > 0
	})
	leader := streamInfo(t, js, cmdStream).Cluster.Leader
	var victim *natsNode
	for _, n := range nodes {
		if n.name == leader {
			victim = n
		}
	}
	if victim == nil {
		victim = nodes[rng.IntN(3)]
	}
	t0 := time.Now()
	victim.kill()
	t.Logf("killed %s (leader of %s: %q)", victim.name, cmdStream, leader)
	time.Sleep(5 * time.Second)
	victim.start()
	victim.awaitUp(t, 60*time.Second)
	down := time.Since(t0)
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	got := awaitOutcomes(t, js, cmds, 3*time.Minute, func() {
		if crashed, err := gf.crashed(); crashed {
			t.Fatalf("groupflow exited: %v", err)
		}
	})
	// The node caught up: every replica of the commands stream is current.
	caughtUp := waitFor(60*time.Second, 500*time.Millisecond, func() bool {
		info, err := tryStreamInfo(js, cmdStream)
		if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
	if !caughtUp {
		t.Errorf("%s did not catch up with the commands stream", victim.name)
	}
	conclude(t, gf, js, sim, cmds, got, func(v verdict) figures {
		return figures{scenario: "cluster-node-loss", commands: len(cmds), kills: 1, restarts: 1,
			faults: fmt.Sprintf("kill -9 %s (stream leader) down %s, R3 streams+KV", victim.name, down.Round(100*time.Millisecond)),
			extra: fmt.Sprintf("outcomes=%d caught-up=%v member_selected=%d redelivered=%d", got, caughtUp, v.selected,
				gf.logCount("handling command")-gf.logCount(`"delivery": 1}`)),
			took: time.Since(start)}
	})
}

// 5. Poison and garbage: 1,000 malformed or invalid commands (and a few on an
// unknown command type) mixed with valid ones.
func TestChaosPoison(t *testing.T) {
	runPoison(t, poisonOpts{name: "poison", garbage: 1000, valid: 50, unknownTypes: 10, seed: 51})
}

func streamInfo(t testing.TB, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	var err error
	if !waitFor(60*time.Second, 250*time.Millisecond, func() bool {
		info, err = tryStreamInfo(js, name)
		return err == nil
	}) {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

func tryStreamInfo(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// 6. Hostile producer (issue 12): every hostile case, the fuzz corpus at
// every command subject, 200 unknown sites, a burst of 20 near-limit
// bodies, an outcome larger than the payload limit, a forged dead letter and
// three replays of the whole DLQ.
func TestChaosHostileProducer(t *testing.T) {
	runHostile(t, hostileOpts{name: "hostile", unknownSites: 200, bigBodies: 20, bigRoster: true, corpus: true, replays: 3})
}
