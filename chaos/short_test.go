package chaos_test

import (
	"net"
	"testing"
	"time"
)

// The short versions of scenarios 1 and 5 run in `make test`.

// TestChaosShortProcessorKilled: ~30 mixed commands, the processor (with its
// embedded broker) killed -9 twice and restarted on the same data dir.
func TestChaosShortProcessorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	runProcessorKill(t, killOpts{name: "short/processor-killed", commands: 30, kills: 2, seed: 1,
		gap: 150 * time.Millisecond, timeout: 60 * time.Second})
}

// TestChaosShortPoison: 100 garbage commands mixed with 20 valid ones.
func TestChaosShortPoison(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	runPoison(t, poisonOpts{name: "short/poison", garbage: 100, valid: 20, seed: 1})
}

// TestChaosStartFailureIsClean: a processor that cannot start (its admin
// HTTP port is taken) must exit with an error message, not a panic, so that
// a supervisor's log says why.
func TestChaosStartFailureIsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	sim := startWixSim(t, dir, simOpts{members: 10, groups: 2, ratePerMinute: 0})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	gf := newGroupflow(t, dir, sim, gfOpts{})
	for i, a := range gf.args {
		if a == "--http-listen" {
			gf.args[i+1] = l.Addr().String()
		}
	}
	gf.start()
	if !waitFor(90*time.Second, 50*time.Millisecond, func() bool { return !gf.running() }) {
		t.Fatal("groupflow still running with its HTTP port taken")
	}
	crashed, exitErr := gf.crashed()
	if !crashed {
		t.Fatalf("groupflow did not exit by itself: %v", exitErr)
	}
	if gf.logCount("panic:") > 0 {
		t.Errorf("a start error panics instead of exiting with a message")
	}
	if gf.logCount("start failed") == 0 {
		t.Errorf("no \"start failed\" message; exit %v", exitErr)
	}
}

// TestChaosShortHostileProducer: every hostile case of issue 12 once, with
// a valid command after each, a forged dead letter and two replays of the
// whole DLQ (the long version adds the fuzz corpus, unknown sites, large
// bodies and an outcome over the payload limit).
func TestChaosShortHostileProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	runHostile(t, hostileOpts{name: "short/hostile", unknownSites: 3, bigBodies: 2, replays: 2})
}
