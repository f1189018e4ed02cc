package runtime

import (
	"context"
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
	srv := testutil.NATS(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
	_, js := testutil.JetStream(t, srv.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "TEST_LEASES", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(kv)
	const term = 600 * time.Millisecond
	acquire := func(id string) *ledger.Lease {
		l, _, err := led.Acquire(ctx, ledger.Claim{CommandType: "provision_group", CommandID: id, Delivery: 1, Seq: 1, Owner: "inst-a", TTL: term})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	k := newLeaseKeeper(term)
	running := func() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.running }

	a := acquire("c-a")
	first := a.Until()
	work, lost, stop := k.keep(ctx, a, zap.NewNop())
	awaitTrue(t, "a renewal", func() bool { return a.Until().After(first) })
	if lost() || work.Err() != nil {
		t.Fatal("lease reported lost after a renewal")
	}

	// Another owner writes the record: the next renewal finds it lost.
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	e, err := kv.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, keys[0], e.Value()); err != nil {
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
	awaitTrue(t, "the keeper to end with no lease kept", func() bool { return !running() })
	if !b.Until().Equal(until) {
		t.Fatal("a stopped lease was renewed")
	}
}

func awaitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
