package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	lose       atomic.Bool // the next Update's reply
	loseCreate atomic.Bool // the next Create's reply
}

func (k *lostUpdateKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	n, err := k.KeyValue.Create(ctx, key, value, opts...)
	if err == nil && k.loseCreate.CompareAndSwap(true, false) {
		return 0, nats.ErrTimeout
	}
	return n, err
}

func (k *lostUpdateKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := k.KeyValue.Update(ctx, key, value, rev)
	if err == nil && k.lose.CompareAndSwap(true, false) {
		return 0, nats.ErrTimeout
	}
	return n, err
}

// lossy returns a ledger over f's bucket whose replies the returned KV can
// lose, on f's clock.
func (f *fixture) lossy() (*lostUpdateKV, *ledger.Ledger) {
	kv := &lostUpdateKV{KeyValue: f.kv}
	l := ledger.New(kv)
	l.SetClock(f.clock.Now)
	return kv, l
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
	kv, l := f.lossy()
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

// TestStepWriteWithALostReplyKeepsTheLease: a checkpoint in a step key of
// its own (in parts, or whole) is stored but its reply is lost — its
// create, then a later update — and so is a renewal of the record before
// another: the lease's next checkpoint of that step finds its own write
// there and goes on, instead of failing with ErrLost (which stops the
// command as taken over until its own lease expires); the lease and the
// next owner read the last checkpoint whole.
func TestStepWriteWithALostReplyKeepsTheLease(t *testing.T) {
	f := newFixture(t)
	kv, l := f.lossy()
	ctx := context.Background()
	id := f.id()
	a, _, err := l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(tag string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%018d", tag, i)
		}
		return out
	}
	for _, step := range []struct {
		name string
		n    int // 5,000 ids: 4 parts of 32 KiB; 500: one spilled value
	}{{"sync.plan", 5000}, {"small.plan", 500}} {
		kv.loseCreate.Store(true)
		if err := a.Checkpoint(ctx, step.name, plan("a", step.n)); err == nil {
			t.Fatalf("%s: the create whose reply was lost reported success", step.name)
		}
		if err := a.Checkpoint(ctx, step.name, plan("b", step.n)); err != nil {
			t.Fatalf("%s: checkpoint after a create whose reply was lost: %v", step.name, err)
		}
		kv.lose.Store(true)
		if err := a.Checkpoint(ctx, step.name, plan("c", step.n)); err == nil {
			t.Fatalf("%s: the update whose reply was lost reported success", step.name)
		}
		if err := a.Checkpoint(ctx, step.name, plan("d", step.n)); err != nil {
			t.Fatalf("%s: checkpoint after an update whose reply was lost: %v", step.name, err)
		}
	}
	kv.lose.Store(true)
	if err := a.Renew(ctx); err == nil {
		t.Fatal("the renewal whose reply was lost reported success")
	}
	if err := a.Checkpoint(ctx, "sync.plan", plan("e", 5000)); err != nil {
		t.Fatalf("step checkpoint after a renewal whose reply was lost: %v", err)
	}
	var got []string
	if ok, err := a.Load(ctx, "sync.plan", &got); !ok || err != nil || !slices.Equal(got, plan("e", 5000)) {
		t.Fatalf("the lease's own load: %d entries, %v %v", len(got), ok, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b := f.acquire(t, id, other, 8)
	for name, want := range map[string][]string{"sync.plan": plan("e", 5000), "small.plan": plan("d", 500)} {
		if ok, err := b.Load(ctx, name, &got); !ok || err != nil || !slices.Equal(got, want) {
			t.Fatalf("next owner's %s: %d entries, %v %v", name, len(got), ok, err)
		}
	}
}
