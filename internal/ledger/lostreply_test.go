package ledger_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/ledger"
)

// lostUpdateKV stores the next Update once armed, then answers it as a
// reply lost in a stream leader change would (nats: timeout).
type lostUpdateKV struct {
	jetstream.KeyValue
	lose atomic.Bool
}

func (k *lostUpdateKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := k.KeyValue.Update(ctx, key, value, rev)
	if err == nil && k.lose.CompareAndSwap(true, false) {
		return 0, nats.ErrTimeout
	}
	return n, err
}

// TestLeaseWriteWithALostReplyKeepsTheLease: a renewal of a lease is stored
// but its reply is lost. The record still names this lease (its LeaseID:
// no other Acquire came), so the lease is still this one's: its next write
// (the keeper's next renewal, a checkpoint, the completion) must go on, not
// fail with ErrLost — ErrLost makes the runtime cancel the command's work
// as taken over by another instance and give the message back until the
// lease (its own) expires.
func TestLeaseWriteWithALostReplyKeepsTheLease(t *testing.T) {
	f := newFixture(t)
	kv := &lostUpdateKV{KeyValue: f.kv}
	l := ledger.New(kv)
	l.SetClock(f.clock.Now)
	ctx := context.Background()
	id := f.id()
	lease, _, err := l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil || lease == nil {
		t.Fatalf("acquire: %v", err)
	}

	kv.lose.Store(true)
	if err := lease.Renew(ctx); err == nil {
		t.Fatal("the renewal whose reply was lost reported success")
	}
	if rec := f.get(t, id); rec.LeaseID != lease.ID() || rec.Owner != me {
		t.Fatalf("record after the stored renewal: %+v", rec)
	}
	if err := lease.Checkpoint(ctx, "group", map[string]string{"id": "g-1"}); err != nil {
		t.Fatalf("checkpoint after a renewal whose reply was lost: %v (ErrLost: %v)", err, errors.Is(err, ledger.ErrLost))
	}
	if err := lease.Complete(ctx, ledger.Outcome{EventType: "group_provisioned", EventID: "e-1", Event: []byte(`{}`)}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if rec := f.get(t, id); rec.Status != ledger.StatusCompleted || rec.EventID != "e-1" {
		t.Fatalf("record: %+v", rec)
	}
}
