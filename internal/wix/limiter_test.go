package wix

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestAdaptiveLimiterPauseHonoured(t *testing.T) {
	l := NewAdaptiveLimiter(60000, 10)
	const pause = 150 * time.Millisecond
	l.Throttled(pause)
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := l.Wait(context.Background()); err != nil {
				t.Error(err)
			}
			if el := time.Since(start); el < pause-10*time.Millisecond {
				t.Errorf("Wait returned after %v, during the pause", el)
			}
		})
	}
	wg.Wait()
}

func TestAdaptiveLimiterWaitCancelled(t *testing.T) {
	l := NewAdaptiveLimiter(60000, 10)
	l.Throttled(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Wait(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v", err)
	}
}

func TestAdaptiveLimiterRateAdapts(t *testing.T) {
	clock := newFakeClock()
	clock.ns.Store(time.Now().UnixNano())
	l := newAdaptiveLimiter(200, 5, clock.Now)
	ctx := context.Background()

	// One burst of concurrent 429s is one episode: one decrease.
	for range 5 {
		l.Throttled(0)
	}
	if r := l.Rate(); r != 180 {
		t.Fatalf("rate after one episode = %v, want 180", r)
	}
	// Retry-After extends the pause but does not lower the rate again.
	l.Throttled(5 * time.Second)
	if r := l.Rate(); r != 180 {
		t.Fatalf("rate = %v, want 180", r)
	}
	// A new episode after the pause lowers it again.
	clock.Advance(10 * time.Second)
	l.Throttled(0)
	if r := l.Rate(); r != 162 {
		t.Fatalf("rate after second episode = %v, want 162", r)
	}
	// Recovery: +5% of 200 per quiet 30s, up to 200.
	clock.Advance(2 * time.Minute)
	_ = l.Wait(ctx)
	if r := l.Rate(); r != 172 {
		t.Fatalf("rate after recovery step = %v, want 172", r)
	}
	_ = l.Wait(ctx) // too soon for another step
	if r := l.Rate(); r != 172 {
		t.Fatalf("rate = %v, want 172", r)
	}
	for range 5 {
		clock.Advance(31 * time.Second)
		_ = l.Wait(ctx)
	}
	if r := l.Rate(); r != 200 {
		t.Fatalf("rate after recovery = %v, want 200", r)
	}
	// Floor: never below half the configured rate.
	for range 20 {
		clock.Advance(2 * time.Minute)
		l.Throttled(time.Millisecond)
	}
	if r := l.Rate(); r != 100 {
		t.Fatalf("floor rate = %v, want 100", r)
	}
}

func TestAdaptiveLimiterPaces(t *testing.T) {
	l := NewAdaptiveLimiter(1200, 1) // 20/s
	start := time.Now()
	for range 5 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("5 waits at 20/s took %v, want >= 200ms", el)
	}
}

// A 429 with Retry-After pauses the site's default limiter, so the retry
// goes out only after Retry-After even though the backoff itself is instant.
func TestClient429PausesSiteLimiter(t *testing.T) {
	f := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "0.2")
			replyJSON(w, 429, []byte(`{"message":"too many requests","details":{"applicationError":{"code":"RESOURCE_EXHAUSTED"}}}`))
			return
		}
		replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
	})
	c := testClient(t, f.srv.URL, nil)
	s := apiKeySite(t, c)
	c.sleep = func(ctx context.Context, d time.Duration) error { return nil }
	start := time.Now()
	if _, err := s.GetGroup(context.Background(), "g1"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 190*time.Millisecond {
		t.Errorf("retry after %v, want >= 200ms", el)
	}
	if r := s.Limiter().(*AdaptiveLimiter).Rate(); r >= 1e6 {
		t.Errorf("rate not lowered: %v", r)
	}
}
