package ratelimit

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

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
	on := map[string]struct{}{"s": {}}
	peers := map[string]*peer{
		"fresh":   {heard: now.Add(-100 * time.Millisecond), sites: on},
		"edge":    {heard: now.Add(-3 * time.Second), sites: on},
		"stale":   {heard: now.Add(-3*time.Second - time.Millisecond), sites: on},
		"other":   {heard: now, sites: map[string]struct{}{"t": {}}},
		"ancient": {heard: now.Add(-time.Minute), sites: on},
	}
	if n := livePeers(peers, "s", now, 3*time.Second); n != 2 {
		t.Errorf("livePeers = %d, want 2", n)
	}
	if n := livePeers(peers, "t", now, 3*time.Second); n != 1 {
		t.Errorf("livePeers of another site = %d, want 1", n)
	}
	forgetPeers(peers, now, 3*time.Second)
	if _, ok := peers["ancient"]; ok {
		t.Error("ancient peer not forgotten")
	}
	if _, ok := peers["stale"]; !ok {
		t.Error("stale peer forgotten too early")
	}
}

// TestRecomputeFallback: the share is divided by the conservative
// FallbackInstances whenever the view cannot be trusted (not registered,
// registration not echoed yet, puts failing, own puts not echoed, watch
// down), and by at least the last healthy count while unhealthy.
func TestRecomputeFallback(t *testing.T) {
	now := time.Now()
	stale := DefaultStaleAfter
	fb := DefaultFallbackInstances
	h := health{watching: true}
	div := func(n int, confirmed bool, last int) int {
		got, _ := shareDivisor(n, h.ok(now, stale), confirmed, last, fb)
		return got
	}
	// One peer (n = 2). Idle (not registered): conservative.
	if n := div(2, false, 0); n != fb {
		t.Fatalf("idle: n=%d", n)
	}
	// Registered but our list not echoed yet: conservative.
	h.active, h.registeredAt = true, now.Add(-time.Millisecond)
	if n := div(2, false, 0); n != fb {
		t.Fatalf("unconfirmed: n=%d", n)
	}
	h.lastEcho = now
	if n, trusted := shareDivisor(2, h.ok(now, stale), true, 0, fb); n != 2 || !trusted ||
		math.Abs(Share(600, DefaultSafety, n)-600*DefaultSafety/2) > 1e-9 {
		t.Fatalf("healthy: n=%d trusted=%v", n, trusted)
	}
	// Puts failing: at least FallbackInstances.
	h.putFailing = true
	if n := div(2, true, 2); n != fb {
		t.Fatalf("put failing: n=%d", n)
	}
	// Registered long ago but our puts are not echoed: stale watch.
	h.putFailing = false
	h.active, h.registeredAt, h.lastEcho = true, now.Add(-10*time.Second), now.Add(-10*time.Second)
	if n := div(2, true, 2); n != fb {
		t.Fatalf("no echo: n=%d", n)
	}
	h.lastEcho = now
	if n := div(2, true, 2); n != 2 {
		t.Fatalf("echo back: n=%d", n)
	}
	// Unhealthy with a larger last healthy view keeps the larger one.
	h.watching = false
	if n := div(2, true, 7); n != 7 {
		t.Fatalf("unhealthy after 7: n=%d", n)
	}
	// Closed: conservative.
	h.watching, h.closed = true, true
	if n := div(1, true, 1); n != fb {
		t.Fatalf("closed: n=%d", n)
	}
}
