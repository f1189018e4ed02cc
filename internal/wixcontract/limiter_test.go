package wixcontract_test

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// Scaled rate limit: Wix's 200/min scaled 150x so that 1,000 calls take about
// two seconds; client and simulator use the same rate and burst.
const (
	scaledPerMinute = 30000 // 500 requests per second
	scaledBurst     = 50    // 100ms of calls: absorbs scheduler stalls on a busy machine
	concurrency     = 16
)

// episodeLimiter wraps the client's AdaptiveLimiter and counts adaptations:
// the Throttled calls that lowered its rate (one per throttle episode).
type episodeLimiter struct {
	*wix.AdaptiveLimiter
	mu        sync.Mutex
	throttles int
	episodes  int
}

func (l *episodeLimiter) Throttled(retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.throttles++
	before := l.Rate()
	l.AdaptiveLimiter.Throttled(retryAfter)
	if l.Rate() < before {
		l.episodes++
	}
}

func (l *episodeLimiter) counts() (throttles, episodes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.throttles, l.episodes
}

// scaledEnv is a simulator limiting at the scaled rate and a client whose
// site limiter is set to the same rate and burst.
func scaledEnv(tb testing.TB) (*env, *episodeLimiter) {
	lim := &episodeLimiter{AdaptiveLimiter: wix.NewAdaptiveLimiter(scaledPerMinute, scaledBurst).(*wix.AdaptiveLimiter)}
	e := newEnv(tb, envOpt{
		sim: wixsim.Options{RatePerMinute: scaledPerMinute, Burst: scaledBurst, Now: time.Now, Members: 10, Groups: 3},
		cfg: wix.Config{RequestsPerMinute: scaledPerMinute, Burst: scaledBurst, MaxRetries: 10,
			NewLimiter: func(string) wix.Limiter { return lim }},
	})
	e.sim.Site(siteA) // seed before measuring
	return e, lim
}

// drive makes n calls from conc goroutines and returns how many failed.
func drive(ctx context.Context, s *wix.Site, n, conc int) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := s.ListGroups(ctx, wix.Paging{Limit: 1}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// TestLimiterSlowsOn429AndResumes checks what a 429 does to a site's
// limiter, with nothing that depends on scheduling: the simulator is
// unlimited except for one injected 429, so exactly one 429 is answered
// however slow the machine is. That 429 must reach the limiter (one
// adaptation), lower its rate by one step, and pause the site: the call that
// drew it succeeds on a retry sent only after the pause (at least a second;
// a lower bound, which load cannot break). Afterwards the site resumes:
// 200 concurrent calls all succeed and the simulator answers no further
// 429. How close the limiter gets to the real limit, and whether 429s
// continue after the first adaptation at full speed, are timing outcomes:
// BenchmarkLimiterUtilisation reports them (make bench). The rate's
// recovery after quiet periods is tested with a fake clock in
// internal/wix (TestAdaptiveLimiterRateAdapts).
func TestLimiterSlowsOn429AndResumes(t *testing.T) {
	lim := &episodeLimiter{AdaptiveLimiter: wix.NewAdaptiveLimiter(scaledPerMinute, scaledBurst).(*wix.AdaptiveLimiter)}
	e := newEnv(t, envOpt{cfg: wix.Config{RequestsPerMinute: scaledPerMinute, Burst: scaledBurst, MaxRetries: 3,
		NewLimiter: func(string) wix.Limiter { return lim }}})
	c := ctx(t)
	e.sim.SetFaults(wixsim.Faults{Burst429: 1})

	start := time.Now()
	if _, err := e.site.ListGroups(c, wix.Paging{Limit: 1}); err != nil {
		t.Fatalf("call that drew the 429: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("call returned %v after its 429: the retry did not wait out the limiter's pause (>= 1s)", el)
	}
	if got := e.sim.Throttled(siteA); got != 1 {
		t.Fatalf("simulator answered %d 429s, want the 1 injected", got)
	}
	if th, ep := lim.counts(); th != 1 || ep != 1 {
		t.Fatalf("limiter heard %d 429s and adapted %d times, want 1 and 1", th, ep)
	}
	if r, want := lim.Rate(), 0.9*scaledPerMinute; math.Abs(r-want) > 1e-6 {
		t.Fatalf("limiter rate after the 429 = %.1f/min, want %.1f (one step down from %d)", r, want, scaledPerMinute)
	}

	if failed := drive(c, e.site, 200, concurrency); failed > 0 {
		t.Fatalf("%d of 200 calls after the pause failed", failed)
	}
	if got := e.sim.Throttled(siteA); got != 1 {
		t.Fatalf("simulator answered %d 429s in all, want only the injected one", got)
	}
	if got := e.sim.TotalCalls(siteA); got < 201 {
		t.Fatalf("simulator served %d calls, want at least 201", got)
	}
	if th, ep := lim.counts(); th != 1 || ep != 1 {
		t.Fatalf("after resuming the limiter heard %d 429s and adapted %d times, want 1 and 1", th, ep)
	}
}

// BenchmarkLimiterUtilisation reports the achieved call rate through one
// site's limiter as a fraction of the simulator's scaled limit
// ("utilisation"), the 429s drawn and the limiter's adaptations (more than
// one means 429s continued after the first adaptation). These depend on
// the machine's load, which is why they are measured here and not asserted
// in a test. Run with
// e.g. -benchtime=3000x; note that every adaptation pauses the site for at
// least a second, which weighs heavily at this scale.
func BenchmarkLimiterUtilisation(b *testing.B) {
	e, lim := scaledEnv(b)
	c := ctx(b)
	b.ResetTimer()
	start := time.Now()
	if failed := drive(c, e.site, b.N, concurrency); failed > 0 {
		b.Fatalf("%d calls failed", failed)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	limit := float64(scaledPerMinute) / 60
	b.ReportMetric(float64(b.N)/elapsed.Seconds()/limit, "utilisation")
	b.ReportMetric(float64(e.sim.Throttled(siteA)), "429s")
	_, episodes := lim.counts()
	b.ReportMetric(float64(episodes), "adaptations")
}
