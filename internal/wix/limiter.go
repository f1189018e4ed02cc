package wix

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter paces the requests of one site. Every HTTP attempt to Wix waits on
// the site's limiter first.
type Limiter interface {
	// Wait blocks until a request may be sent or ctx is done.
	Wait(ctx context.Context) error
	// Throttled reports a 429 from Wix. retryAfter is the server's
	// Retry-After, or zero when it sent none.
	Throttled(retryAfter time.Duration)
}

// Tuning of AdaptiveLimiter.
const (
	throttleDecrease = 0.9              // rate multiplier per throttle episode
	minRateFactor    = 0.5              // never go below half the configured rate
	recoverEvery     = 30 * time.Second // quiet time between recovery steps
	recoverStep      = 0.05             // of the configured rate, per step
	pauseBase        = time.Second      // pause after a 429 without Retry-After
	pauseMax         = 60 * time.Second
)

// AdaptiveLimiter is the default Limiter: a token bucket (golang.org/x/time/rate)
// that reacts to 429s. On Throttled it pauses all its callers (for Retry-After
// if given, else an exponential pause) and lowers its rate by 10% (at most once
// per throttle episode, never below half the configured rate); after every
// 30 s without a 429 it recovers 5% of the configured rate. A busy site thus
// settles just under Wix's real limit instead of bouncing off it.
type AdaptiveLimiter struct {
	lim  *rate.Limiter
	base float64 // requests per second, as configured
	now  func() time.Time

	mu          sync.Mutex
	cur         float64
	pausedUntil time.Time
	lastChange  time.Time // last decrease or recovery step
	strikes     int       // consecutive throttle episodes
}

// NewAdaptiveLimiter returns an AdaptiveLimiter allowing perMinute requests
// per minute with the given burst. Non-positive values get the defaults (200
// per minute, burst 5).
func NewAdaptiveLimiter(perMinute float64, burst int) Limiter {
	return newAdaptiveLimiter(perMinute, burst, time.Now)
}

func newAdaptiveLimiter(perMinute float64, burst int, now func() time.Time) *AdaptiveLimiter {
	if perMinute <= 0 {
		perMinute = DefaultRequestsPerMinute
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	base := perMinute / 60
	return &AdaptiveLimiter{lim: rate.NewLimiter(rate.Limit(base), burst), base: base, cur: base, now: now}
}

// Rate returns the current rate in requests per minute.
func (a *AdaptiveLimiter) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur * 60
}

// Wait blocks until the pause (if any) is over and a token is available.
func (a *AdaptiveLimiter) Wait(ctx context.Context) error {
	for {
		if err := a.waitPause(ctx); err != nil {
			return err
		}
		if err := a.lim.Wait(ctx); err != nil {
			return err
		}
		// A 429 may have arrived while this caller held a reservation. Its
		// token predates the pause, and the bucket refills during the pause:
		// sending on it afterwards would add every such waiter to a full
		// burst and draw 429s again. Wait the pause out and take a new one.
		if !a.paused() {
			return nil
		}
	}
}

// paused reports whether a throttle pause is in progress.
func (a *AdaptiveLimiter) paused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now().Before(a.pausedUntil)
}

func (a *AdaptiveLimiter) waitPause(ctx context.Context) error {
	return WaitPause(ctx, func() time.Duration {
		a.mu.Lock()
		defer a.mu.Unlock()
		now := a.now()
		a.recover(now)
		return a.pausedUntil.Sub(now)
	})
}

// WaitPause blocks until left (the time a throttle pause still lasts,
// asked again after each wait: a pause may grow) is not positive, or ctx is
// done; it returns ctx.Err(). Limiters share it.
func WaitPause(ctx context.Context, left func() time.Duration) error {
	for {
		d := left()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// recover raises the rate one step after a quiet period. Caller holds mu.
func (a *AdaptiveLimiter) recover(now time.Time) {
	if a.cur >= a.base || now.Sub(a.lastChange) < recoverEvery || now.Before(a.pausedUntil) {
		return
	}
	a.cur = min(a.base, a.cur+a.base*recoverStep)
	a.lastChange = now
	a.strikes = 0
	a.lim.SetLimitAt(now, rate.Limit(a.cur))
}

// Throttled pauses every caller and, once per throttle episode, lowers the
// rate.
func (a *AdaptiveLimiter) Throttled(retryAfter time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	inEpisode := now.Before(a.pausedUntil)
	d := retryAfter
	if d <= 0 {
		if inEpisode {
			return // concurrent 429s of one burst: the pause already covers them
		}
		d = min(pauseBase<<min(a.strikes, 6), pauseMax)
		d += time.Duration(rand.Int64N(int64(d)/5 + 1)) // jitter up to 20%
	}
	if until := now.Add(d); until.After(a.pausedUntil) {
		a.pausedUntil = until
	}
	if inEpisode {
		return
	}
	a.strikes++
	a.cur = max(a.base*minRateFactor, a.cur*throttleDecrease)
	a.lastChange = now
	a.lim.SetLimitAt(now, rate.Limit(a.cur))
}
