package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/ledger"
)

// leaseKeeper renews the leases of the commands in work from one goroutine
// and one ticker instead of one of each per command: a command in work
// costs a map entry here, not a goroutine, its stack and a timer. Every
// term/6 it looks at every lease (without waiting for any: Lease.Until
// does not block) and renews, each in a goroutine of its own, those with
// less than two thirds of their term left and no renewal in flight (a
// checkpoint extends a lease too, so a command that checkpoints often is
// never renewed here). A slow renewal therefore delays only its own lease,
// and each is bounded by term/6. A lease another instance took
// (ledger.ErrLost) cancels its command's work, and so does a lease about
// to lapse (a third of its term left, so at least a scan's term/6 before
// it expires, after two renewals) whose last renewal failed: past its
// expiry another instance may take the command over, and this one must
// not send a side effect then (a Wix call waiting for its site's tokens is
// cancelled before it goes out); a lease whose work ends
// (done, cancelled, or lost) is renewed no more. The goroutine runs only
// while some lease is kept. Cost: one ledger write per lease due.
type leaseKeeper struct {
	term    time.Duration
	mu      sync.Mutex
	held    map[*keptLease]struct{}
	running bool
}

// keptLease is one command's lease in the keeper.
type keptLease struct {
	lease    *ledger.Lease
	log      *zap.Logger
	cancel   context.CancelFunc
	lost     atomic.Bool
	renewing atomic.Bool // a renewal is in flight
	failing  atomic.Bool // the last renewal failed (not lost: no answer, a broker error)
	mu       sync.Mutex  // held while it is renewed; stop waits for it
	stopped  bool
}

func newLeaseKeeper(term time.Duration) *leaseKeeper {
	return &leaseKeeper{term: term, held: map[*keptLease]struct{}{}}
}

// keep renews lease while the command works on work (derived from ctx). If
// another instance took the command over, work is cancelled and lost
// reports true. Once work ends, or after stop returns, no renewal of lease
// is sent; stop cancels work.
func (k *leaseKeeper) keep(ctx context.Context, lease *ledger.Lease, log *zap.Logger) (work context.Context, lost func() bool, stop func()) {
	work, cancel := context.WithCancel(ctx)
	e := &keptLease{lease: lease, log: log, cancel: cancel}
	k.mu.Lock()
	k.held[e] = struct{}{}
	if !k.running {
		k.running = true
		go k.run()
	}
	k.mu.Unlock()
	unwatch := context.AfterFunc(work, func() { k.drop(e) })
	var once sync.Once
	stop = func() {
		once.Do(func() {
			unwatch()
			k.drop(e)
			e.mu.Lock() // a renewal in flight ends first
			e.stopped = true
			e.mu.Unlock()
			cancel()
		})
	}
	return work, e.lost.Load, stop
}

// drop takes e out of the keeper: it is renewed no more.
func (k *leaseKeeper) drop(e *keptLease) {
	k.mu.Lock()
	delete(k.held, e)
	k.mu.Unlock()
}

// run starts the due renewals every term/6 until no lease is kept.
func (k *leaseKeeper) run() {
	t := time.NewTicker(max(k.term/6, time.Millisecond))
	defer t.Stop()
	var all []*keptLease
	for range t.C {
		all = all[:0]
		k.mu.Lock()
		if len(k.held) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		for e := range k.held {
			all = append(all, e)
		}
		k.mu.Unlock()
		for i, e := range all {
			left := time.Until(e.lease.Until())
			switch {
			case left <= k.term/3 && e.failing.Load():
				k.lapse(e)
			case left <= 2*k.term/3 && e.renewing.CompareAndSwap(false, true):
				go k.renew(e)
			}
			all[i] = nil
		}
	}
}

// renew renews one lease unless its command stopped.
func (k *leaseKeeper) renew(e *keptLease) {
	defer e.renewing.Store(false)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(k.term/6, time.Second))
	err := e.lease.Renew(ctx)
	cancel()
	e.failing.Store(err != nil)
	switch {
	case errors.Is(err, ledger.ErrLost):
		e.log.Warn("another instance took this command over; stopping work on it")
		e.lost.Store(true)
		e.stopped = true
		e.cancel() // drops it from the keeper
	case err != nil:
		e.log.Debug("lease renewal failed", zap.Error(err))
	}
}

// lapse stops the work of a lease its renewals could not keep: it counts
// as lost (the command is given back until the lease expires).
func (k *leaseKeeper) lapse(e *keptLease) {
	if e.lost.Swap(true) {
		return
	}
	e.log.Warn("lease renewals failed and the lease is about to lapse; stopping work on this command",
		zap.Time("lease_until", e.lease.Until()))
	e.cancel() // drops it from the keeper
}
