package runtime

import (
	"container/list"
	"context"
	"sync"

	"groupflow/internal/admission"
)

// Ticket describes one fetched message waiting to be admitted. It is
// admission.Ticket (the one definition), so an Admission can hand it to
// package admission as is.
type Ticket = admission.Ticket

// Admission decides when a fetched message may enter the lifecycle. Admit
// blocks until the message may run, or until ctx ends: then it returns
// ctx's error and nothing is held. The Source keeps the message alive
// (InProgress) while it waits. release is called exactly once, after the
// message is acked or nacked. Implementations must be safe for concurrent use.
type Admission interface {
	Admit(ctx context.Context, t Ticket) (release func(), err error)
}

// Defaults of the FIFO admission.
const (
	// DefaultInFlightBytes bounds the command bodies admitted at once (64 MiB).
	DefaultInFlightBytes int64 = 64 << 20
	// DefaultAdmitCount bounds the messages admitted at once. It is above
	// the sum of the consumers' MaxAckPending in a default deployment, so by
	// default the count never holds one type back behind another.
	DefaultAdmitCount = 1024
)

// FIFOAdmission admits messages in arrival order while the admitted ones
// stay within a count and a byte bound. A body larger than the byte bound
// takes the whole bound: it is admitted once nothing else is, and alone. A
// message that does not fit waits, and so does every later one (no
// overtaking: a large body is not starved by a stream of small ones).
type FIFOAdmission struct {
	mu       sync.Mutex
	maxCount int
	maxBytes int64
	count    int
	bytes    int64
	peak     int64      // most bytes admitted at once
	waiters  *list.List // of *admitWaiter, oldest first
}

type admitWaiter struct {
	weight  int64
	granted chan struct{} // closed once admitted
}

// NewFIFOAdmission returns the default admission: FIFO, at most maxCount
// messages and maxBytes body bytes admitted at once (zero or less: the
// defaults, DefaultAdmitCount and DefaultInFlightBytes).
func NewFIFOAdmission(maxCount int, maxBytes int64) *FIFOAdmission {
	if maxCount <= 0 {
		maxCount = DefaultAdmitCount
	}
	if maxBytes <= 0 {
		maxBytes = DefaultInFlightBytes
	}
	return &FIFOAdmission{maxCount: maxCount, maxBytes: maxBytes, waiters: list.New()}
}

// weight is what a body of n bytes takes of the byte bound.
func (a *FIFOAdmission) weight(n int64) int64 { return min(max(n, 0), a.maxBytes) }

// fits reports whether w more bytes (and one more message) fit; a.mu held.
func (a *FIFOAdmission) fits(w int64) bool {
	return a.count < a.maxCount && a.bytes+w <= a.maxBytes
}

func (a *FIFOAdmission) take(w int64) {
	a.count++
	a.bytes += w
	a.peak = max(a.peak, a.bytes)
}

// Admit implements Admission.
func (a *FIFOAdmission) Admit(ctx context.Context, t Ticket) (func(), error) {
	wait, _ := a.queue(t)
	return wait(ctx)
}

// queuer is implemented by an Admission that can take a ticket's place in
// line without blocking: the Source queues the tickets of a topic in fetch
// order (calling Admit from one goroutine per message could reorder them),
// then waits. The wait function must be called exactly once; admitted
// reports that the ticket was admitted at once (wait will not block).
type queuer interface {
	queue(t Ticket) (wait func(ctx context.Context) (release func(), err error), admitted bool)
}

func (a *FIFOAdmission) queue(t Ticket) (func(context.Context) (func(), error), bool) {
	w := a.weight(t.Bytes)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiters.Len() == 0 && a.fits(w) {
		a.take(w)
		rel := a.releaser(w)
		return func(context.Context) (func(), error) { return rel, nil }, true
	}
	wt := &admitWaiter{weight: w, granted: make(chan struct{})}
	el := a.waiters.PushBack(wt)
	return func(ctx context.Context) (func(), error) { return a.wait(ctx, wt, el) }, false
}

// wait blocks until the queued waiter is granted, or gives its place up
// when ctx ends.
func (a *FIFOAdmission) wait(ctx context.Context, wt *admitWaiter, el *list.Element) (func(), error) {
	select {
	case <-wt.granted:
		return a.releaser(wt.weight), nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	select {
	case <-wt.granted: // granted meanwhile: give it back
		a.count--
		a.bytes -= wt.weight
	default:
		a.waiters.Remove(el)
	}
	a.grantLocked() // the head may have changed
	a.mu.Unlock()
	return nil, ctx.Err()
}

func (a *FIFOAdmission) releaser(w int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.count--
			a.bytes -= w
			a.grantLocked()
			a.mu.Unlock()
		})
	}
}

// grantLocked admits waiters from the head while they fit; a.mu held.
func (a *FIFOAdmission) grantLocked() {
	for el := a.waiters.Front(); el != nil; el = a.waiters.Front() {
		wt := el.Value.(*admitWaiter)
		if !a.fits(wt.weight) {
			return
		}
		a.take(wt.weight)
		a.waiters.Remove(el)
		close(wt.granted)
	}
}

// AdmissionStats is a snapshot of a FIFOAdmission.
type AdmissionStats struct {
	Admitted  int   // messages admitted and not yet released
	Bytes     int64 // their body bytes (each clipped to the byte bound)
	PeakBytes int64 // most bytes admitted at once so far
	Waiting   int   // messages waiting
}

// Stats returns the admission's current state.
func (a *FIFOAdmission) Stats() AdmissionStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AdmissionStats{Admitted: a.count, Bytes: a.bytes, PeakBytes: a.peak, Waiting: a.waiters.Len()}
}
