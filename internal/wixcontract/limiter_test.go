package wixcontract_test

import (
	"context"
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

// TestLimiterAtScaledRate drives 1,000 calls through one site's limiter,
// set to the simulator's scaled rate, from 16 goroutines. All calls must
// succeed, and after the limiter's first adaptation (its first 429 episode,
// if any) the simulator must answer no more 429s. Timing is not asserted.
func TestLimiterAtScaledRate(t *testing.T) {
	e, lim := scaledEnv(t)
	c := ctx(t)
	const total = 1000

	// Warm-up: batches of 100 until the limiter has adapted once (at most
	// 500 calls; with enough slack it may never need to).
	done := 0
	for done < 500 {
		if failed := drive(c, e.site, 100, concurrency); failed > 0 {
			t.Fatalf("%d warm-up calls failed", failed)
		}
		done += 100
		if _, ep := lim.counts(); ep > 0 {
			break
		}
	}
	_, warmEpisodes := lim.counts()
	throttledBefore := e.sim.Throttled(siteA)

	if failed := drive(c, e.site, total-done, concurrency); failed > 0 {
		t.Fatalf("%d calls failed", failed)
	}
	throttledAfter := e.sim.Throttled(siteA)
	throttles, episodes := lim.counts()
	t.Logf("warm-up %d calls, 429s %d (warm-up) + %d (after), adaptations %d, limiter rate %.0f/min",
		done, throttledBefore, throttledAfter-throttledBefore, episodes, lim.Rate())

	if got := e.sim.TotalCalls(siteA); got < total {
		t.Fatalf("simulator served %d calls, want at least %d", got, total)
	}
	if int64(throttles) != throttledAfter {
		t.Fatalf("simulator answered %d 429s but the limiter heard of %d", throttledAfter, throttles)
	}
	if episodes > 1 {
		t.Fatalf("limiter adapted %d times: 429s continued after the first adaptation", episodes)
	}
	if warmEpisodes == 1 && throttledAfter != throttledBefore {
		t.Fatalf("%d 429s after the first adaptation", throttledAfter-throttledBefore)
	}
}

// BenchmarkLimiterUtilisation reports the achieved call rate through one
// site's limiter as a fraction of the simulator's scaled limit
// ("utilisation"), the 429s drawn and the limiter's adaptations. Run with
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
