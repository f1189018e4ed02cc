package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/natsname"
	"groupflow/internal/testenv"
	"groupflow/internal/testutil"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// instance is one simulated groupflow process: its own NATS connection, its
// own wix.Client with shared limiters, and workers with a backlog.
type instance struct {
	id     string
	nc     *nats.Conn
	cancel context.CancelFunc // limiters' lifetime
	client *wix.Client

	mu   sync.Mutex
	lims map[string]*Shared

	stopWork context.CancelFunc
	wg       sync.WaitGroup
}

func startInstance(t testing.TB, env *testenv.Env, url, id string, perMinute float64, opts Options) *instance {
	t.Helper()
	nc, js := testutil.JetStream(t, env.Server.URL)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{id: id, nc: nc, cancel: cancel, lims: map[string]*Shared{}}
	g := NewGroup(ctx, js, id, opts)
	in.client = wix.New(wix.Config{
		BaseURL:              url,
		RetryInitialInterval: 5 * time.Millisecond,
		RetryMaxInterval:     50 * time.Millisecond,
		Timeout:              10 * time.Second,
		NewLimiter: func(site string) wix.Limiter {
			s, err := g.Shared(site, perMinute)
			if err != nil {
				t.Errorf("shared limiter: %v", err)
				return Fallback(perMinute, opts)
			}
			in.mu.Lock()
			in.lims[site] = s
			in.mu.Unlock()
			return s
		},
	})
	t.Cleanup(func() {
		in.stop()
		for _, l := range in.limiters() {
			_ = l.Close()
		}
		cancel()
	})
	return in
}

func (in *instance) limiters() []*Shared {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*Shared, 0, len(in.lims))
	for _, l := range in.lims {
		out = append(out, l)
	}
	return out
}

func (in *instance) limiter(site string) *Shared {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lims[site]
}

// work starts n goroutines calling the site as fast as its limiter allows.
func (in *instance) work(t testing.TB, site string, n int) {
	t.Helper()
	if err := in.client.AddSite(site, wix.Credentials{APIKey: "k"}); err != nil {
		t.Fatal(err)
	}
	s, err := in.client.Site(site)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.stopWork = cancel
	for range n {
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			for ctx.Err() == nil {
				_, err := s.ListGroups(ctx, wix.Paging{Limit: 1})
				if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
					t.Logf("%s: %v", in.id, err)
				}
			}
		}()
	}
}

func (in *instance) stop() {
	if in.stopWork != nil {
		in.stopWork()
	}
	in.wg.Wait()
}

// kill simulates a crashed process: its calls stop, its connection drops and
// its key is neither refreshed nor deleted.
func (in *instance) kill() {
	in.stop()
	in.nc.Close()
	for _, l := range in.limiters() {
		l.crash()
	}
}

type window struct {
	calls, throttled int64
	elapsed          time.Duration
	util             float64
}

// measure counts the calls the simulator served for site during d.
func measure(sim *wixsim.Server, site string, perSecond float64, d time.Duration) window {
	c0, th0, t0 := sim.TotalCalls(site), sim.Throttled(site), time.Now()
	time.Sleep(d)
	c1, th1, el := sim.TotalCalls(site), sim.Throttled(site), time.Since(t0)
	return window{calls: c1 - c0, throttled: th1 - th0, elapsed: el, util: float64(c1-c0) / (el.Seconds() * perSecond)}
}

// waitFor polls cond every 20ms until it holds or timeout; it returns how
// long it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > timeout {
			t.Fatalf("timeout after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}

func instancesSeen(ins []*instance, site string, n int) func() bool {
	return func() bool {
		for _, in := range ins {
			l := in.limiter(site)
			if l == nil {
				return false
			}
			if _, got := l.Rate(); got != n {
				return false
			}
		}
		return true
	}
}

// Scenario constants: the simulator limits the site at a scaled rate
// (6,000/min = 100/s) with a burst of 5 requests (wix.DefaultBurst; 50 ms of
// budget). The instances must tolerate that tight a burst: the simulator
// rejects any excess, so "throttled" counts every overshoot.
const (
	simPerMinute = 6000.0
	simPerSecond = simPerMinute / 60
	simBurst     = 5
	workers      = 8
	site         = "site.one/with=odd chars"
)

type scenario struct {
	sim  *wixsim.Server
	ins  []*instance
	warm time.Duration
}

func startScenario(t testing.TB, n int) *scenario {
	env := testenv.Start(t, testenv.Quiet())
	sim := wixsim.New(wixsim.Options{Members: 50, Groups: 5, RatePerMinute: simPerMinute, Burst: simBurst, Sites: []string{site}})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	sc := &scenario{sim: sim}
	for i := range n {
		sc.ins = append(sc.ins, startInstance(t, env, url, fmt.Sprintf("groupflow-%d", i), simPerMinute, Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}))
	}
	for _, in := range sc.ins {
		in.work(t, site, workers)
	}
	sc.warm = waitFor(t, 10*time.Second, "three instances to see each other", instancesSeen(sc.ins, site, n))
	time.Sleep(time.Second) // warm-up: the simulator's initial burst is spent
	return sc
}

// TestSharedThreeInstances checks what must hold whatever the machine's
// load: the instances find each other and split the site's rate (their
// shares never sum past the limit), a killed instance's share goes back to
// the survivors, a graceful stop gives it back at once, and together they
// do not overshoot the limit: at most maxThrottledShare of the requests of
// a phase are throttled, where shares that did not split (each instance at
// the whole rate) throttle about two thirds of them. The exact count of
// 429s (a few, when a stalled machine lets the instances' buckets and the
// simulator's fall out of step) and how much of the limit they use are
// timing outcomes, reported by BenchmarkSharedLimiter3Instances (make
// bench), not asserted here.
func TestSharedThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("timed scenario")
	}
	sc := startScenario(t, 3)
	t.Logf("all three instances saw each other after %v", sc.warm)
	phase := func(name string, ins []*instance, d time.Duration) {
		t.Helper()
		w := measure(sc.sim, site, simPerSecond, d)
		var sum float64
		for _, in := range ins {
			share, n := in.limiter(site).Rate()
			sum += share
			t.Logf("  %s: share %.1f/min of %d", in.id, share, n)
		}
		t.Logf("%s: %d calls in %v = %.1f/s = %.1f%% of %.0f/s, %d throttled",
			name, w.calls, w.elapsed.Round(time.Millisecond), float64(w.calls)/w.elapsed.Seconds(), 100*w.util, simPerSecond, w.throttled)
		if sum > simPerMinute {
			t.Errorf("%s: the shares sum to %.1f/min, over the site's %.0f/min", name, sum, simPerMinute)
		}
		if w.calls == 0 {
			t.Fatalf("%s: no call served (is the site served by the simulator?)", name)
		}
		if sent := w.calls + w.throttled; float64(w.throttled) > maxThrottledShare*float64(sent) {
			t.Errorf("%s: %d of %d requests throttled in the window (limit overshot)", name, w.throttled, sent)
		}
	}
	phase("3 instances", sc.ins, 3*time.Second)

	// Kill one: the two others take its share within StaleAfter + heartbeat.
	sc.ins[0].kill()
	rest := sc.ins[1:]
	took := waitFor(t, 10*time.Second, "the survivors to drop the dead instance", instancesSeen(rest, site, 2))
	t.Logf("survivors raised their shares %v after the kill", took.Round(time.Millisecond))
	phase("after a kill, 2 instances", rest, 3*time.Second)

	// Graceful stop: the last survivor takes everything at once.
	rest[0].stop()
	for _, l := range rest[0].limiters() {
		_ = l.Close()
	}
	took = waitFor(t, 2*time.Second, "the survivor to see a graceful stop", instancesSeen(rest[1:], site, 1))
	t.Logf("graceful stop seen after %v", took.Round(time.Millisecond))
	phase("1 instance", rest[1:], 2*time.Second)
	t.Logf("total throttled in the test %d of %d served", sc.sim.Throttled(site), sc.sim.TotalCalls(site))
}

// maxThrottledShare bounds the share of a phase's requests the simulator
// may throttle in TestSharedThreeInstances: far above the few 429s a busy
// machine causes, far below the two thirds of a rate that did not split.
const maxThrottledShare = 0.1

// BenchmarkSharedLimiter3Instances reports the utilisation of the site's
// limit by three instances with a backlog, and by the two left after one is
// killed (run with -benchtime=1x: each iteration is a 3+3 s scenario).
func BenchmarkSharedLimiter3Instances(b *testing.B) {
	var u3, u2, thr float64
	for range b.N {
		sc := startScenario(b, 3)
		w := measure(sc.sim, site, simPerSecond, 3*time.Second)
		u3 += w.util
		thr += float64(w.throttled)
		sc.ins[0].kill()
		waitFor(b, 10*time.Second, "survivors", instancesSeen(sc.ins[1:], site, 2))
		time.Sleep(300 * time.Millisecond)
		w = measure(sc.sim, site, simPerSecond, 3*time.Second)
		u2 += w.util
		thr += float64(w.throttled)
	}
	b.ReportMetric(u3/float64(b.N), "utilisation")
	b.ReportMetric(u2/float64(b.N), "utilisation_after_kill")
	b.ReportMetric(thr/float64(b.N), "throttled/op")
}

// Demand: an idle instance does not hold a share; Close and idleness give
// it back at once; a 429 is broadcast.
func TestSharedDemandAndBroadcast(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	opts := Options{Heartbeat: 50 * time.Millisecond, StaleAfter: 500 * time.Millisecond, DemandWindow: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mk := func(id string) *Shared {
		_, js := testutil.JetStream(t, env.Server.URL)
		s, err := NewShared(ctx, js, "demand-site", id, 600, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := mk("a"), mk("b")
	n := func(s *Shared) int { _, n := s.Rate(); return n }
	if n(a) != DefaultFallbackInstances {
		t.Fatalf("idle: a sees %d, want the conservative %d", n(a), DefaultFallbackInstances)
	}
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a alone", func() bool { return n(a) == 1 })
	// b gets demand: both see two.
	waitFor(t, 2*time.Second, "a and b busy", func() bool {
		_ = a.Wait(ctx)
		_ = b.Wait(ctx)
		return n(a) == 2 && n(b) == 2
	})
	share, _ := b.Rate()
	if want := Share(600, DefaultSafety, 2); share != want {
		t.Fatalf("b share %v, want %v", share, want)
	}
	// b goes idle: its key goes away after DemandWindow.
	waitFor(t, 2*time.Second, "a to see b idle", func() bool { _ = a.Wait(ctx); return n(a) == 1 })

	// A 429 at a pauses b.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			_ = b.Wait(ctx)
		}
	}()
	<-done
	a.Throttled(600 * time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("b was not paused by a's 429 (waited %v)", d)
	}

	// Close gives the share back at once.
	waitFor(t, 2*time.Second, "a to see b busy", func() bool {
		_ = a.Wait(ctx)
		_ = b.Wait(ctx)
		return n(a) == 2
	})
	_ = b.Close()
	waitFor(t, 300*time.Millisecond, "a to see b closed", func() bool { _ = a.Wait(ctx); return n(a) == 1 })

	// Group.Close gives back every site's share at once.
	_, js := testutil.JetStream(t, env.Server.URL)
	g := NewGroup(ctx, js, "c", opts)
	c, err := g.Shared("demand-site", 600)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "a and c busy", func() bool {
		_ = a.Wait(ctx)
		_ = c.Wait(ctx)
		return n(a) == 2
	})
	_ = g.Close()
	waitFor(t, 300*time.Millisecond, "a to see c's group closed", func() bool { _ = a.Wait(ctx); return n(a) == 1 })
}

// A broker that goes away makes the limiter fall back to the conservative
// share instead of believing it is alone.
func TestSharedFallbackWhenBrokerLost(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	opts := Options{Heartbeat: 50 * time.Millisecond, StaleAfter: 300 * time.Millisecond}
	nc, js := testutil.JetStream(t, env.Server.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := NewShared(ctx, js, "lost", "x", 600, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, n := s.Rate(); n != 1 {
		t.Fatalf("alone: n=%d", n)
	}
	nc.Close()
	waitFor(t, 3*time.Second, "the fallback share", func() bool {
		_ = s.Wait(ctx)
		_, n := s.Rate()
		return n == DefaultFallbackInstances
	})

	// Factory with an unusable JetStream returns a conservative local limiter.
	l := Factory(ctx, js, "y", 600, opts)("lost")
	if _, ok := l.(*Shared); ok {
		t.Fatal("Factory returned a shared limiter over a closed connection")
	}
	if a, ok := l.(*wix.AdaptiveLimiter); !ok || a.Rate() != Share(600, DefaultSafety, DefaultFallbackInstances) {
		t.Fatalf("fallback limiter %T", l)
	}
}

// TestSharedHostileSiteIDKeepsConnection (issue 12 item 1): the KV keys of
// a site's limiter were "site.<siteId>...", so a 5,000-character site id
// made a subject longer than the server's control line and the server
// closed the connection. Any site or instance id now gives bounded keys,
// and two such limiters still see each other.
func TestSharedHostileSiteIDKeepsConnection(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	nc, js := testutil.JetStream(t, env.Server.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	site := strings.Repeat("s", 5000)
	a := NewGroup(ctx, js, strings.Repeat("host.", 1000)+"1", Options{})
	b := NewGroup(ctx, js, "i-2", Options{})
	defer a.Close()
	defer b.Close()
	sa, err := a.Shared(site, 600)
	if err != nil {
		t.Fatalf("shared limiter of a long site id: %v", err)
	}
	sb, err := b.Shared(site, 600)
	if err != nil {
		t.Fatalf("second instance: %v", err)
	}
	// Demand makes an instance count (heartbeat).
	waitFor(t, 10*time.Second, "two instances", func() bool {
		_ = sa.Wait(ctx)
		_ = sb.Wait(ctx)
		_, n := sa.Rate()
		return n == 2
	})
	if !nc.IsConnected() {
		t.Fatalf("connection %s", nc.Status())
	}
	if len(sa.key) > 3*(natsname.MaxToken+1) || len(sa.prefix) > 2*(natsname.MaxToken+1) {
		t.Errorf("keys not bounded: %d, %d bytes", len(sa.key), len(sa.prefix))
	}
}
