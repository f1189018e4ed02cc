package ratelimit

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"groupflow/internal/natsname"
)

// TestKeyTokens: a limiter's keys are natsname tokens, so plain site and
// instance ids stay readable in `nats kv ls` and no id can make a key NATS
// refuses. (Keys were once reversibly escaped with EscapeKey, which let a
// long id through unbounded; nothing read ids back from keys.)
func TestKeyTokens(t *testing.T) {
	valid := regexp.MustCompile(`^site\.[-_a-zA-Z0-9]{1,64}\.i\.[-_a-zA-Z0-9]{1,64}$`)
	for _, c := range []struct{ site, instance string }{
		{"demo-site", "host-12-ab"}, {"a.b", "h.o.s.t"}, {strings.Repeat("s", 5000), "x y>*"}, {"é", "\x00"},
	} {
		key := "site." + natsname.Token(c.site) + ".i." + natsname.Token(c.instance)
		if !valid.MatchString(key) {
			t.Errorf("key of %.20q/%.20q = %q", c.site, c.instance, key)
		}
	}
	if natsname.Token("demo-site") != "demo-site" {
		t.Error("plain site id not kept readable")
	}
}

func TestShare(t *testing.T) {
	for _, c := range []struct {
		per, safety float64
		n           int
		want        float64
	}{
		{200, 0.97, 1, 194},
		{200, 0.97, 2, 97},
		{200, 0.97, 3, 194.0 / 3},
		{200, 1, 4, 50},
		{200, 0.97, 0, 194}, // n < 1 counts as 1
	} {
		if got := Share(c.per, c.safety, c.n); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Share(%v, %v, %d) = %v, want %v", c.per, c.safety, c.n, got, c.want)
		}
	}
	// Three instances together stay under the limit.
	if sum := 3 * Share(200, DefaultSafety, 3); sum > 200 || sum < 0.9*200 {
		t.Errorf("sum of three shares %v", sum)
	}
}

func TestLivePeers(t *testing.T) {
	now := time.Now()
	peers := map[string]time.Time{
		"fresh":   now.Add(-100 * time.Millisecond),
		"edge":    now.Add(-3 * time.Second),
		"stale":   now.Add(-3*time.Second - time.Millisecond),
		"ancient": now.Add(-time.Minute),
	}
	if n := livePeers(peers, now, 3*time.Second); n != 2 {
		t.Errorf("livePeers = %d, want 2", n)
	}
	if _, ok := peers["ancient"]; ok {
		t.Error("ancient peer not forgotten")
	}
	if _, ok := peers["stale"]; !ok {
		t.Error("stale peer forgotten too early")
	}
}

func TestRecomputeFallback(t *testing.T) {
	s := &Shared{perMinute: 600, opts: Options{}.withDefaults(), peers: map[string]time.Time{}, log: zap.NewNop()}
	s.lim = newTestLimiter()
	now := time.Now()
	s.watching = true
	s.peers["x"] = now
	// Idle (not registered): conservative.
	s.recomputeLocked(now)
	if s.n != DefaultFallbackInstances {
		t.Fatalf("idle: n=%d", s.n)
	}
	// Registered but our heartbeat not echoed yet: conservative.
	s.active, s.registeredAt = true, now.Add(-time.Millisecond)
	s.recomputeLocked(now)
	if s.n != DefaultFallbackInstances {
		t.Fatalf("unconfirmed: n=%d", s.n)
	}
	s.lastEcho = now
	s.recomputeLocked(now)
	if s.n != 2 || math.Abs(s.share-600*DefaultSafety/2) > 1e-9 {
		t.Fatalf("healthy: n=%d share=%v", s.n, s.share)
	}
	// Heartbeats failing: at least FallbackInstances.
	s.putFailing = true
	s.recomputeLocked(now)
	if s.n != DefaultFallbackInstances {
		t.Fatalf("put failing: n=%d", s.n)
	}
	// Registered long ago but our heartbeats are not echoed: stale watch.
	s.putFailing = false
	s.active, s.registeredAt, s.lastEcho = true, now.Add(-10*time.Second), now.Add(-10*time.Second)
	s.recomputeLocked(now)
	if s.n != DefaultFallbackInstances {
		t.Fatalf("no echo: n=%d", s.n)
	}
	s.lastEcho = now
	s.recomputeLocked(now)
	if s.n != 2 {
		t.Fatalf("echo back: n=%d", s.n)
	}
	// Unhealthy with a larger last healthy view keeps the larger one.
	for i := range 5 {
		s.peers[string(rune('a'+i))] = now
	}
	s.recomputeLocked(now)
	s.watching = false
	for i := range 5 {
		delete(s.peers, string(rune('a'+i)))
	}
	s.recomputeLocked(now)
	if s.n != 7 {
		t.Fatalf("unhealthy after 7: n=%d", s.n)
	}
}

func newTestLimiter() *rate.Limiter { return rate.NewLimiter(1, 1) }
