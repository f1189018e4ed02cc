package runtime

import (
	"context"
	"sync"
	"time"
)

// Parker is implemented by an Admission that can tell how many of the
// tickets it holds wait for their own site (admission.Fair.Parked): they
// cannot start until that site's running commands finish, whatever else
// frees, so the fetch window does not count them against what may run soon.
type Parker interface {
	Parked() int
}

// TopicReserve is how many messages each topic may hold whatever the
// window: an idle or slow command type always fetches, however full the
// others keep it.
const TopicReserve = 16

// windowPoll bounds how long a fetch loop without room waits before it
// looks again: parked counts change without telling the window.
const windowPoll = 50 * time.Millisecond

// DefaultMaxHeld is the window a runtime with maxInFlight commands running
// at once gives its Source (SourceConfig.MaxHeld): room for a site's
// parked backlog of a few thousand besides the runnable ones.
func DefaultMaxHeld(maxInFlight int) int { return max(2*maxInFlight, 4096) + 256 }

// DefaultMaxRunnable is the most messages not parked a runtime's Source
// holds (SourceConfig.MaxRunnable): what runs and half as many again
// fetched ahead. Commands arrive interleaved over the sites, so a site
// whose command ends finds its next one in memory only if enough are held
// ahead; with too few, its next command is still in the stream behind the
// other sites' and the site idles meanwhile. Measured in scenario 8 (1,000
// sites, --max-in-flight 1024): an eighth more used 0.932 of the sites'
// limits, a quarter 0.962, a half 0.956–0.965, twice 0.963–0.964, at
// 182–186 MiB peak RSS for the first three and 194–200 MiB for twice.
// (An earlier measurement of 0.58 with an eighth more was the idle topics'
// pull requests keeping half the room reserved; see Source.fetch.)
func DefaultMaxRunnable(maxInFlight int) int { return maxInFlight + maxInFlight/2 }

// window bounds what a Source holds: messages fetched (or asked for by a
// pull request in progress) and not yet acked or nacked. Each held message
// costs its body, a goroutine and its admission entry, so this is the
// bound on the Source's memory (besides the bodies' byte bound in the
// Admission). A topic may fetch when
//
//	held < maxHeld  and  held − parked < maxRunnable
//
// or while it holds fewer than TopicReserve; held ≤ maxHeld + TopicReserve ×
// topics therefore. Zero bounds are no bound.
type window struct {
	maxHeld, maxRunnable int
	parked               func() int // nil: nothing is parked

	mu       sync.Mutex
	held     int
	topics   map[string]int
	peak     int
	waiting  int           // fetch loops waiting for room
	released chan struct{} // closed (and replaced) when room frees for a waiter
}

func newWindow(maxHeld, maxRunnable int, parked func() int) *window {
	return &window{maxHeld: maxHeld, maxRunnable: maxRunnable, parked: parked,
		topics: map[string]int{}, released: make(chan struct{})}
}

// room is how many of limit a topic holding own of held messages may fetch
// now, parked of them waiting for their own site.
func (w *window) room(limit, held, own, parked int) int {
	r := limit
	if w.maxHeld > 0 {
		r = min(r, w.maxHeld-held)
	}
	if w.maxRunnable > 0 {
		r = min(r, w.maxRunnable-(held-parked))
	}
	r = max(r, TopicReserve-own)
	return max(min(r, limit), 0)
}

// take waits until topic may fetch, then reserves and returns up to limit
// messages of room; it returns 0 when stop is closed or ctx ends while it
// waits (the caller checks them before it fetches).
func (w *window) take(ctx context.Context, stop <-chan struct{}, topic string, limit int) int {
	for {
		parked := 0
		if w.parked != nil {
			parked = w.parked()
		}
		w.mu.Lock()
		if n := w.room(limit, w.held, w.topics[topic], parked); n > 0 {
			w.held += n
			w.topics[topic] += n
			w.peak = max(w.peak, w.held)
			w.mu.Unlock()
			return n
		}
		w.waiting++
		released := w.released
		w.mu.Unlock()
		t := time.NewTimer(windowPoll)
		select {
		case <-released:
		case <-t.C:
		case <-stop:
		case <-ctx.Done():
		}
		t.Stop()
		w.mu.Lock()
		w.waiting--
		w.mu.Unlock()
		select {
		case <-stop:
			return 0
		case <-ctx.Done():
			return 0
		default:
		}
	}
}

// give returns n of topic's reserved or held messages.
func (w *window) give(topic string, n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held -= n
	w.topics[topic] -= n
	if w.waiting > 0 {
		close(w.released)
		w.released = make(chan struct{})
	}
}

// stats returns the messages held now and at most so far.
func (w *window) stats() (held, peak int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held, w.peak
}
