package runtime

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent large bodies never hold more than the bound at once, a body
// larger than the bound still runs (alone), and a waiter gives up on stop.
func TestInFlightBytesStayWithinBound(t *testing.T) {
	const bound = 3 << 20
	sem := newByteSem(bound)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	never := make(chan struct{})
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(1<<20 + i*1000) // ~1 MiB each: at most two fit
			if i == 15 {
				n = 5 << 20 // larger than the bound
			}
			if !sem.acquire(n, never, time.Millisecond, func() {}) {
				t.Error("acquire gave up without stop")
				return
			}
			w := sem.weight(n)
			now := held.Add(w)
			for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
			}
			time.Sleep(time.Millisecond) // hold it while others try
			held.Add(-w)
			sem.release(n)
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > bound || sem.peakUsed() > bound {
		t.Fatalf("peak in flight %d (sem %d) > bound %d", p, sem.peakUsed(), bound)
	}
	if peak.Load() < 2<<20 {
		t.Fatalf("peak %d: bodies never ran concurrently", peak.Load())
	}
	// a waiter that cannot fit returns false on stop and holds nothing
	if !sem.acquire(bound, never, time.Millisecond, func() {}) {
		t.Fatal("acquire failed")
	}
	stop := make(chan struct{})
	alive := make(chan struct{}, 1)
	done := make(chan bool)
	go func() {
		done <- sem.acquire(1, stop, time.Millisecond, func() {
			select {
			case alive <- struct{}{}:
			default:
			}
		})
	}()
	<-alive // the waiting message is kept alive
	close(stop)
	if <-done {
		t.Fatal("acquire succeeded past the bound")
	}
	sem.release(bound)
	if sem.used != 0 {
		t.Fatalf("%d bytes still held", sem.used)
	}
}
