package runtime

import (
	"sync"
	"time"
)

// byteSem is a counting semaphore of bytes: the command bodies in work at
// once across all consumers stay within max.
type byteSem struct {
	mu      sync.Mutex
	used    int64
	max     int64
	peak    int64
	changed chan struct{} // closed and replaced on every release
}

func newByteSem(max int64) *byteSem {
	return &byteSem{max: max, changed: make(chan struct{})}
}

// weight is what n bytes take: a body larger than the bound takes the whole
// bound, so it runs alone instead of waiting forever.
func (b *byteSem) weight(n int64) int64 { return min(max(n, 0), b.max) }

// acquire takes n bytes, waiting while they do not fit; every tick it calls
// alive (the message's keep-alive). It returns false, holding nothing, when
// stop closes first.
func (b *byteSem) acquire(n int64, stop <-chan struct{}, tick time.Duration, alive func()) bool {
	w := b.weight(n)
	var ticker *time.Ticker
	for {
		b.mu.Lock()
		if b.used+w <= b.max {
			b.used += w
			b.peak = max(b.peak, b.used)
			b.mu.Unlock()
			if ticker != nil {
				ticker.Stop()
			}
			return true
		}
		changed := b.changed
		b.mu.Unlock()
		if ticker == nil {
			ticker = time.NewTicker(tick)
		}
		select {
		case <-changed:
		case <-ticker.C:
			alive()
		case <-stop:
			ticker.Stop()
			return false
		}
	}
}

// release gives back n bytes taken by acquire.
func (b *byteSem) release(n int64) {
	w := b.weight(n)
	b.mu.Lock()
	b.used -= w
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// peakUsed is the most bytes held at once so far.
func (b *byteSem) peakUsed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}
