package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestKVOpsPerActiveSite states the KV cost of the shared limit per active
// site, by counting the operations of one instance over one minute of a
// driven clock (no timing involved): with N sites that all have waiting
// calls, the instance writes one value per Heartbeat — 120 per minute (20
// lists, 100 heartbeats) — whatever N, i.e. 120/N writes per active site per
// minute (0.12 at 1,000 sites; the old design wrote 2 keys per site per
// second: 120 per site per minute); it watches once. Once the calls are
// served it deletes its two keys and writes nothing more; after EvictAfter
// the sites are gone from memory.
func TestKVOpsPerActiveSite(t *testing.T) {
	for _, n := range []int{1, 10, 1000} {
		t.Run(fmt.Sprintf("%d sites", n), func(t *testing.T) {
			g := startDriven(t)
			var waiting []*siteState
			for i := range n {
				s, err := g.Shared(fmt.Sprintf("5f1c3a52-7d1e-4c1b-9a0e-%012d", i), 200)
				if err != nil {
					t.Fatal(err)
				}
				waiting = append(waiting, g.begin(s)) // a caller in Wait, as a backlog keeps one
			}
			g.tick()
			g.tick()
			warm := g.KVOps()
			if warm.Watch != 1 || warm.PutSites > 3 || warm.Delete != 0 {
				t.Errorf("warm-up: %+v, want 1 watch and the joins coalesced into at most 3 lists", warm)
			}

			for range 120 { // one minute of heartbeats
				g.tick()
			}
			minute := g.KVOps().Sub(warm)
			perSite := float64(minute.Writes()) / float64(n)
			t.Logf("%d active sites: %d KV writes in a minute (%d lists, %d heartbeats, %d B) = %.3f writes and %.0f B per active site per minute",
				n, minute.Writes(), minute.PutSites, minute.PutLive, minute.Bytes, perSite, float64(minute.Bytes)/float64(n))
			if minute.PutSites != 20 || minute.PutLive != 100 || minute.Delete != 0 || minute.Watch != 0 {
				t.Errorf("busy minute: %+v, want 20 lists and 100 heartbeats", minute)
			}
			// A GUID site costs about 40 bytes in each of the 20 lists.
			if per := minute.Bytes / int64(n); n >= 100 && per > 20*50 {
				t.Errorf("%d bytes per active site per minute, want at most %d", per, 20*50)
			}

			// The calls are served: the keys go after DemandWindow, then nothing.
			for _, st := range waiting {
				g.end(st)
			}
			before := g.KVOps()
			for range int(g.opts.DemandWindow/g.opts.Heartbeat) + 2 {
				g.tick()
			}
			if d := g.KVOps().Sub(before); d.Delete != 2 || d.PutSites > 1 {
				t.Errorf("demand ended: %+v, want the 2 keys deleted", d)
			}
			idle := g.KVOps()
			for range 120 {
				g.tick()
			}
			if d := g.KVOps().Sub(idle); d.Total() != 0 {
				t.Errorf("idle minute: %+v, want no KV operation", d)
			}
			if got := g.ActiveSites(); got != n {
				t.Errorf("before EvictAfter: %d sites in memory, want %d", got, n)
			}
			g.clk.advance(g.opts.EvictAfter)
			g.tick()
			if got := g.ActiveSites(); got != 0 {
				t.Errorf("after EvictAfter: %d sites in memory, want 0", got)
			}
		})
	}
}

// TestEvictedSiteComesBack: a limiter whose site was evicted works again on
// its next call (a new state, listed again), and two limiters of one site
// share one state.
func TestEvictedSiteComesBack(t *testing.T) {
	g := startDriven(t)
	ctx := context.Background()
	a, _ := g.Shared("site-x", 200)
	b, _ := g.Shared("site-x", 200)
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if g.ActiveSites() != 1 {
		t.Fatalf("%d states after one Wait", g.ActiveSites())
	}
	st := g.sites[a.tok]
	if g.begin(b) != st {
		t.Fatal("two limiters of one site do not share their state")
	}
	g.end(st)
	g.clk.advance(g.opts.EvictAfter + time.Second)
	g.tick()
	if g.ActiveSites() != 0 {
		t.Fatal("idle site not evicted")
	}
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := b.Wait(waitCtx); err != nil {
		t.Fatalf("Wait after eviction: %v", err)
	}
	g.mu.Lock()
	listed := g.sites[b.tok] != nil && g.sites[b.tok].listed
	g.mu.Unlock()
	if !listed {
		t.Fatal("site not listed again after eviction")
	}
}

// startDriven starts a driven group on an in-memory bucket, closed when the
// test ends.
func startDriven(t *testing.T) *drivenGroup {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g, err := newDrivenGroup(ctx, newFakeKV(), "inst-a", Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(); cancel() })
	return g
}

// TestListsCountPerSite: two instances on one bucket divide only the sites
// both have demand for; a site one of them no longer calls, and every site
// of one that crashed, come back whole to the other.
func TestListsCountPerSite(t *testing.T) {
	kv := newFakeKV()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mk := func(id string) *drivenGroup {
		g, err := newDrivenGroup(ctx, kv, id, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		return g
	}
	a, b := mk("a"), mk("b")
	share := func(g *drivenGroup, site string) int {
		s, _ := g.Shared(site, 200)
		_, n := s.Rate()
		return n
	}
	busy := func(g *drivenGroup, site string) *siteState {
		s, _ := g.Shared(site, 200)
		return g.begin(s)
	}
	a1, _, b1 := busy(a, "s1"), busy(a, "s2"), busy(b, "s1")
	a.tick()
	b.tick()
	a.tick() // a hears b's list (and its own)
	waitFor(t, 5*time.Second, "a to see b's list", func() bool { return share(a, "s1") == 2 })
	if n := share(a, "s2"); n != 1 {
		t.Errorf("a: s2 divided by %d, want 1 (b does not call it)", n)
	}
	waitFor(t, 5*time.Second, "b to see a's list", func() bool { return share(b, "s1") == 2 })

	// b's calls of s1 are served: b drops s1 from its list after DemandWindow.
	b.end(b1)
	for range int(b.opts.DemandWindow/b.opts.Heartbeat) + 2 {
		b.tick()
	}
	waitFor(t, 5*time.Second, "a to see s1 whole", func() bool { return share(a, "s1") == 1 })

	// b calls s1 again, then crashes: a takes s1 back after StaleAfter.
	busy(b, "s1")
	b.tick()
	waitFor(t, 5*time.Second, "a to see b again", func() bool { return share(a, "s1") == 2 })
	b.crash()
	// b's last writes (its list and its heartbeat) reach a's watch in order
	// but at their own pace: a.tick returns once a hears its own write, and
	// so everything b wrote before it. a counts b as heard until then, and
	// as stale StaleAfter (+ a heartbeat) after.
	a.tick()
	for range int(a.opts.StaleAfter/a.opts.Heartbeat) + 1 {
		a.tick()
	}
	if n := share(a, "s1"); n != 1 {
		t.Errorf("after b's crash and StaleAfter: s1 divided by %d, want 1", n)
	}
	a.end(a1)
}

// TestJoinsWrittenBeforeTheHeartbeat: a site that gets demand just after
// another one's list was written is listed when the short gap between list
// writes ends, not at the next heartbeat (it runs at the conservative share
// until then). The clock does not move: no heartbeat happens.
func TestJoinsWrittenBeforeTheHeartbeat(t *testing.T) {
	g := startDriven(t)
	s1, _ := g.Shared("s1", 200)
	s2, _ := g.Shared("s2", 200)
	g.begin(s1)
	waitFor(t, 5*time.Second, "s1's list", func() bool { return g.KVOps().PutSites == 1 })
	g.begin(s2)
	waitFor(t, 5*time.Second, "s2's list without a heartbeat", func() bool { return g.KVOps().PutSites == 2 })
	waitFor(t, 5*time.Second, "s2 confirmed", func() bool { _, n := s2.Rate(); return n == 1 })
	if o := g.KVOps(); o.PutLive != 0 {
		t.Errorf("heartbeats without a tick: %+v", o)
	}
}

// TestConfirmedShareEndsConservativeWait: a caller that waits for its token
// at the conservative share (its site's list not yet heard back through the
// watch) takes it at the full share as soon as the list comes back, not
// after the conservative interval. Fallback 1,000 instances make that
// interval 10.3 s at 6,000/min, against 10 ms at the full share.
func TestConfirmedShareEndsConservativeWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := newFakeKV()
	g, err := newDrivenGroup(ctx, kv, "inst-a", Options{FallbackInstances: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	s, _ := g.Shared("s1", 6000)
	kv.hold()
	if err := s.Wait(ctx); err != nil { // the burst token: at once
		t.Fatal(err)
	}
	if per, n := s.Rate(); n != 1000 {
		t.Fatalf("before the list is heard back: %v/min over %d instances, want the conservative share (1000)", per, n)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Wait(ctx) }()
	st := g.state("s1")
	waitFor(t, 5*time.Second, "the second caller's reservation", func() bool { return st.lim.Tokens() < 0 })
	kv.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if _, n := s.Rate(); n != 1 {
			t.Errorf("after the list was heard back: %d instances, want 1", n)
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("still waiting %v after the list was heard back: the reservation made at the conservative share (10.3 s) was kept", time.Since(start).Round(time.Millisecond))
	}
}

// TestPeersLeavingEndWaitAtSmallerShare: a caller waiting for its token at
// a tenth of the site's limit (nine other instances call the site) takes it
// at the whole limit soon after the nine stop, not after the interval it
// reserved (10.3 s at 60/min ÷ 10, against 1.03 s alone).
func TestPeersLeavingEndWaitAtSmallerShare(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := newFakeKV()
	var gs []*drivenGroup
	for i := range 10 {
		g, err := newDrivenGroup(ctx, kv, fmt.Sprintf("inst-%d", i), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		s, _ := g.Shared("s1", 60)
		g.begin(s) // demand for s1 on every instance
		gs = append(gs, g)
	}
	for _, g := range gs {
		g.tick()
	}
	a := gs[0]
	s, _ := a.Shared("s1", 60)
	waitFor(t, 5*time.Second, "a to see the nine others", func() bool { _, n := s.Rate(); return n == 10 })
	if err := s.Wait(ctx); err != nil { // the burst token: at once
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait(ctx) }()
	st := a.state("s1")
	waitFor(t, 5*time.Second, "the second caller's reservation", func() bool { return st.lim.Tokens() < 0 })
	for _, g := range gs[1:] {
		_ = g.Close()
	}
	left := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if _, n := s.Rate(); n != 1 {
			t.Errorf("after the others left: divided by %d, want 1", n)
		}
	case <-time.After(7 * time.Second):
		t.Fatalf("still waiting %v after the other nine left: the reservation made at a tenth of the limit (10.3 s) was kept", time.Since(left).Round(time.Millisecond))
	}
}
