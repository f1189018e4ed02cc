package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/ledger"
	"groupflow/internal/testutil"
)

// TestLeaseKeeperRenewsAndReportsLoss: one keeper renews a command's lease
// before it runs out; when another owner writes the record, the command's
// work is cancelled and lost reports it; a stopped lease is renewed no more,
// and the keeper's goroutine ends once it keeps none.
func TestLeaseKeeperRenewsAndReportsLoss(t *testing.T) {
	ctx := context.Background()
	const term = 600 * time.Millisecond
	kv, acquire := leaseLedger(t, term)
	k := newLeaseKeeper(term)
	running := func() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.running }

	a := acquire("c-a")
	first := a.Until()
	work, lost, stop := k.keep(ctx, a, zap.NewNop())
	AwaitCond(t, "a renewal", func() bool { return a.Until().After(first) })
	if lost() || work.Err() != nil {
		t.Fatal("lease reported lost after a renewal")
	}

	// Another owner takes the record (its Acquire writes its own lease id):
	// the next renewal finds it lost.
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	e, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec ledger.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	rec.Owner, rec.LeaseID = "other", "other-lease"
	taken, _ := json.Marshal(rec)
	if _, err := kv.Put(ctx, keys[0], taken); err != nil {
		t.Fatal(err)
	}
	select {
	case <-work.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("work not cancelled after another owner wrote the record")
	}
	if !lost() {
		t.Fatal("lost() false after the work was cancelled for a lost lease")
	}
	stop()

	// A stopped lease is not renewed: its keeper ends, its lease stays.
	b := acquire("c-b")
	_, _, stopB := k.keep(ctx, b, zap.NewNop())
	stopB()
	until := b.Until()
	AwaitCond(t, "the keeper to end with no lease kept", func() bool { return !running() })
	if !b.Until().Equal(until) {
		t.Fatal("a stopped lease was renewed")
	}
}

// leaseLedger returns a ledger bucket on an in-process server and a
// function taking a fresh command's lease of the given term in it.
func leaseLedger(t *testing.T, term time.Duration) (jetstream.KeyValue, func(id string) *ledger.Lease) {
	t.Helper()
	srv := testutil.NATS(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
	_, js := testutil.JetStream(t, srv.ClientURL())
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "TEST_LEASES", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(kv)
	return kv, func(id string) *ledger.Lease {
		l, _, err := led.Acquire(context.Background(), ledger.Claim{CommandType: "provision_group", CommandID: id, Delivery: 1, Seq: 1, Owner: "inst-a", TTL: term})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

// TestLeaseKeeperNotHeldByOneLease: a lease whose own mutex is held (a
// checkpoint's slow write) holds back neither the keeper's scan nor other
// commands starting and ending.
func TestLeaseKeeperNotHeldByOneLease(t *testing.T) {
	const term = 60 * time.Millisecond
	k := newLeaseKeeper(term)
	ctx := context.Background()
	slow := ledger.Detached("provision_group", "slow")
	block, inside := make(chan struct{}), make(chan struct{}, 1)
	slow.CountCalls(func() int64 { inside <- struct{}{}; <-block; return 0 }) // stands for a slow write under the lease's mutex
	_, _, stopSlow := k.keep(ctx, slow, zap.NewNop())
	go slow.Calls() // the command's own goroutine, inside the lease's mutex
	<-inside
	done := make(chan struct{})
	go func() {
		for i := range 20 { // across several scans
			_, _, stop := k.keep(ctx, ledger.Detached("provision_group", fmt.Sprint("other-", i)), zap.NewNop())
			time.Sleep(term / 6)
			stop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("other commands' keep/stop blocked behind one lease's mutex")
	}
	close(block)
	stopSlow()
}

// TestLeaseKeeperRenewsInParallel: 256 leases due at once, each renewal
// taking 100 ms, are all renewed before they lapse (one at a time, or 16 at
// a time behind a barrier, they would not be).
func TestLeaseKeeperRenewsInParallel(t *testing.T) {
	const term, n = 3 * time.Second, 256
	_, acquire := leaseLedger(t, term)
	k := newLeaseKeeper(term)
	var leases []*ledger.Lease
	for i := range n {
		l := acquire(fmt.Sprint("c-", i))
		l.CountCalls(func() int64 { time.Sleep(100 * time.Millisecond); return 0 }) // a slow ledger write
		_, _, stop := k.keep(context.Background(), l, zap.NewNop())
		t.Cleanup(stop)
		leases = append(leases, l)
	}
	first := leases[n-1].Until()
	AwaitCond(t, "every lease renewed once", func() bool {
		for _, l := range leases {
			if !l.Until().After(first) {
				if time.Now().After(l.Until()) {
					t.Fatalf("a lease lapsed %v before it was renewed", time.Since(l.Until()).Round(time.Millisecond))
				}
				return false
			}
		}
		return true
	})
}

// TestLeaseKeeperStopsWhenWorkEnds: once the command's work is cancelled
// (grace period over, message lost), its lease is renewed no more, even
// before stop: a hung handler does not hold the command for ever.
func TestLeaseKeeperStopsWhenWorkEnds(t *testing.T) {
	const term = 600 * time.Millisecond
	_, acquire := leaseLedger(t, term)
	l := acquire("c-1")
	k := newLeaseKeeper(term)
	parent, cancel := context.WithCancel(context.Background())
	work, _, stop := k.keep(parent, l, zap.NewNop())
	defer stop()
	cancel()
	<-work.Done()
	AwaitCond(t, "the keeper to let the lease go", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.held) == 0 })
	at := l.Until()
	time.Sleep(3 * term) // an absence: no event to await
	if l.Until().After(at) {
		t.Fatalf("lease renewed %v past the work's cancellation", l.Until().Sub(at))
	}
}

// AwaitCond polls cond until it holds, failing after 10s; exported to
// the package's external tests (awaitCond there).
func AwaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// failingKV fails every update while fail is set, as a ledger whose
// stream has no leader would (no conflict: nobody else wrote).
type failingKV struct {
	jetstream.KeyValue
	fail atomic.Bool
}

func (f *failingKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if f.fail.Load() {
		return 0, errors.New("nats: no responders available for request")
	}
	return f.KeyValue.Update(ctx, key, value, rev)
}

// TestLeaseKeeperStopsWorkOnALapsingLease: when renewals fail (the ledger
// does not answer), the work is cancelled before the lease expires and
// lost reports it: past the expiry another instance may take the command
// over, so this one must send nothing more.
func TestLeaseKeeperStopsWorkOnALapsingLease(t *testing.T) {
	const term = 600 * time.Millisecond
	kv, _ := leaseLedger(t, term)
	fkv := &failingKV{KeyValue: kv}
	l, _, err := ledger.New(fkv).Acquire(context.Background(), ledger.Claim{CommandType: "provision_group", CommandID: "c-lapse", Delivery: 1, Seq: 1, Owner: "inst-a", TTL: term})
	if err != nil {
		t.Fatal(err)
	}
	fkv.fail.Store(true)
	k := newLeaseKeeper(term)
	work, lost, stop := k.keep(context.Background(), l, zap.NewNop())
	defer stop()
	select {
	case <-work.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("work not cancelled while its lease lapsed")
	}
	if !lost() {
		t.Fatal("lost() false after the work was cancelled for a lapsing lease")
	}
}
