package runtime_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/runtime"
)

// awaitCond polls cond until it holds, failing after 10s (AwaitCond).
var awaitCond = runtime.AwaitCond

// admitAsync admits t in a goroutine; the channel yields its release.
func admitAsync(a runtime.Admission, ctx context.Context, t runtime.Ticket) <-chan func() {
	ch := make(chan func(), 1)
	go func() {
		rel, err := a.Admit(ctx, t)
		if err != nil {
			close(ch)
			return
		}
		ch <- rel
	}()
	return ch
}

// admitInTurn queues the tickets on a one after the other (each waiting
// before the next arrives), releases hold, and returns the order in which
// they were admitted; each releases at once.
func admitInTurn(t *testing.T, a *runtime.FIFOAdmission, hold func(), tickets ...runtime.Ticket) []string {
	t.Helper()
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	before := a.Stats().Waiting
	for i, tk := range tickets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := a.Admit(context.Background(), tk)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, tk.Subject)
			mu.Unlock()
			rel()
		}()
		awaitCond(t, "waiter queued", func() bool { return a.Stats().Waiting == before+i+1 })
	}
	hold()
	wg.Wait()
	return order
}

// Waiters are admitted in arrival order, and a large body at the head is
// not overtaken by smaller ones that would fit.
func TestFIFOAdmissionOrder(t *testing.T) {
	one := runtime.NewFIFOAdmission(1, 100)
	first, _ := one.Admit(context.Background(), runtime.Ticket{Subject: "a"})
	order := admitInTurn(t, one, first, runtime.Ticket{Subject: "b"}, runtime.Ticket{Subject: "c"}, runtime.Ticket{Subject: "d"})
	if len(order) != 3 || order[0] != "b" || order[1] != "c" || order[2] != "d" {
		t.Fatalf("admission order %v, want [b c d]", order)
	}

	a := runtime.NewFIFOAdmission(2, 100)
	first, _ = a.Admit(context.Background(), runtime.Ticket{Subject: "a", Bytes: 60})
	order = admitInTurn(t, a, func() {
		// s1 would fit beside "a" (70 <= 100, 2 <= 2) but must not overtake "big".
		if st := a.Stats(); st.Admitted != 1 || st.Waiting != 3 {
			t.Errorf("stats %+v: a small body overtook the large one", st)
		}
		first()
	}, runtime.Ticket{Subject: "big", Bytes: 95}, runtime.Ticket{Subject: "s1", Bytes: 10}, runtime.Ticket{Subject: "s2", Bytes: 10})
	if len(order) != 3 || order[0] != "big" {
		t.Fatalf("admission order %v, want big first", order)
	}
	if st := a.Stats(); st.Admitted != 0 || st.Bytes != 0 || st.Waiting != 0 {
		t.Fatalf("after all released: %+v", st)
	}
}

// Concurrent admissions never exceed the count or the byte bound; a body
// larger than the byte bound is admitted alone; a waiter whose ctx ends
// holds nothing; release is idempotent.
func TestFIFOAdmissionBounds(t *testing.T) {
	const maxCount, maxBytes = 3, 3 << 20
	a := runtime.NewFIFOAdmission(maxCount, maxBytes)
	var held, heldBytes, peak, peakBytes atomic.Int64
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(1<<19 + i*1000) // ~0.5 MiB: the count binds first
			if i%4 == 0 {
				n = 1<<20 + 1 // ~1 MiB: the bytes bind (at most two)
			}
			if i == 23 {
				n = 5 << 20 // larger than the bound: alone
			}
			rel, err := a.Admit(context.Background(), runtime.Ticket{Bytes: n})
			if err != nil {
				t.Error(err)
				return
			}
			w := min(n, maxBytes)
			c, b := held.Add(1), heldBytes.Add(w)
			for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
			}
			for p := peakBytes.Load(); b > p && !peakBytes.CompareAndSwap(p, b); p = peakBytes.Load() {
			}
			time.Sleep(time.Millisecond) // hold it while others try
			held.Add(-1)
			heldBytes.Add(-w)
			rel()
			rel() // idempotent
		}()
	}
	wg.Wait()
	if peak.Load() > maxCount || peakBytes.Load() > maxBytes || a.Stats().PeakBytes > maxBytes {
		t.Fatalf("peak %d messages / %d bytes (admission %d) over the bounds %d / %d", peak.Load(), peakBytes.Load(), a.Stats().PeakBytes, maxCount, maxBytes)
	}
	if peak.Load() < 2 {
		t.Fatalf("peak %d: messages never ran concurrently", peak.Load())
	}
	// A waiter that gives up holds nothing, and the next one gets its turn.
	full, _ := a.Admit(context.Background(), runtime.Ticket{Bytes: maxBytes})
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := admitAsync(a, ctx, runtime.Ticket{Bytes: 1})
	awaitCond(t, "waiter queued", func() bool { return a.Stats().Waiting == 1 })
	next := admitAsync(a, context.Background(), runtime.Ticket{Bytes: 1})
	awaitCond(t, "second waiter queued", func() bool { return a.Stats().Waiting == 2 })
	cancel()
	if _, ok := <-gaveUp; ok {
		t.Fatal("a cancelled waiter was admitted")
	}
	full()
	rel := <-next
	if rel == nil {
		t.Fatal("the next waiter was not admitted")
	}
	rel()
	if st := a.Stats(); st.Admitted != 0 || st.Bytes != 0 || st.Waiting != 0 {
		t.Fatalf("after all released: %+v", st)
	}
	if _, err := a.Admit(ctx, runtime.Ticket{}); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
