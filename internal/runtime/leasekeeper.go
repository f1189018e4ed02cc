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

// renewParallel bounds the lease renewals a leaseKeeper sends at once.
const renewParallel = 16

// leaseKeeper renews the leases of the commands in work from one goroutine
// and one ticker instead of one of each per command: a command in work
// costs a map entry here, not a goroutine, its stack and a timer. Every
// term/6 it renews the leases with less than two thirds of their term left
// (a checkpoint extends a lease too, so a command that checkpoints often is
// never renewed here), at most renewParallel at once, each bounded by
// term/6, so a slow renewal does not hold the others back. A lease another
// instance took (ledger.ErrLost) cancels its command's work. The goroutine
// runs only while some lease is kept. Cost: one ledger write per lease due.
type leaseKeeper struct {
	term    time.Duration
	mu      sync.Mutex
	held    map[*keptLease]struct{}
	running bool
}

// keptLease is one command's lease in the keeper.
type keptLease struct {
	lease   *ledger.Lease
	log     *zap.Logger
	cancel  context.CancelFunc
	lost    atomic.Bool
	mu      sync.Mutex // held while it is renewed; stop waits for it
	stopped bool
}

func newLeaseKeeper(term time.Duration) *leaseKeeper {
	return &leaseKeeper{term: term, held: map[*keptLease]struct{}{}}
}

// keep renews lease while the command works on work (derived from ctx). If
// another instance took the command over, work is cancelled and lost
// reports true. After stop returns no renewal of lease is sent, and work
// is cancelled.
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
	var once sync.Once
	stop = func() {
		once.Do(func() {
			k.mu.Lock()
			delete(k.held, e)
			k.mu.Unlock()
			e.mu.Lock()
			e.stopped = true
			e.mu.Unlock()
			cancel()
		})
	}
	return work, e.lost.Load, stop
}

// run renews the due leases every term/6 until none is kept.
func (k *leaseKeeper) run() {
	t := time.NewTicker(max(k.term/6, time.Millisecond))
	defer t.Stop()
	var due []*keptLease
	for range t.C {
		due = due[:0]
		k.mu.Lock()
		if len(k.held) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		for e := range k.held {
			if time.Until(e.lease.Until()) <= 2*k.term/3 {
				due = append(due, e)
			}
		}
		k.mu.Unlock()
		k.renewAll(due)
		clear(due)
	}
}

// renewAll renews the due leases, renewParallel at a time.
func (k *leaseKeeper) renewAll(due []*keptLease) {
	sem := make(chan struct{}, renewParallel)
	var wg sync.WaitGroup
	for _, e := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			k.renew(e)
		}()
	}
	wg.Wait()
}

// renew renews one lease unless its command stopped.
func (k *leaseKeeper) renew(e *keptLease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(k.term/6, time.Second))
	err := e.lease.Renew(ctx)
	cancel()
	switch {
	case errors.Is(err, ledger.ErrLost):
		e.log.Warn("another instance took this command over; stopping work on it")
		e.lost.Store(true)
		e.stopped = true
		e.cancel()
		k.mu.Lock()
		delete(k.held, e)
		k.mu.Unlock()
	case err != nil:
		e.log.Debug("lease renewal failed", zap.Error(err))
	}
}
