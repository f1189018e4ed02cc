package ledger_test

// Review s14: lost replies whose writes land late, and the parts a lease
// leaves behind.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/ledger"
)

// lateKV answers the next Update of a key with a timeout without storing
// it, and stores it right after the next read of that key has been
// answered: a write whose reply was lost (the client gave up after
// CallTimeout) and that the server applied after a later request of the
// same client was answered (the stream's ingest queue is not the API's;
// a write buffered across a reconnect; a slow proposal).
type lateKV struct {
	jetstream.KeyValue
	mu      sync.Mutex
	armed   bool
	pending func()
	key     string
}

func (k *lateKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	k.mu.Lock()
	if k.armed && strings.HasSuffix(key, k.key) {
		k.armed = false
		v := slices.Clone(value)
		k.pending = func() { _, _ = k.KeyValue.Update(context.Background(), key, v, rev) }
		k.mu.Unlock()
		return 0, nats.ErrTimeout
	}
	k.mu.Unlock()
	return k.KeyValue.Update(ctx, key, value, rev)
}

func (k *lateKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := k.KeyValue.Get(ctx, key)
	k.mu.Lock()
	p := k.pending
	if p != nil && strings.HasSuffix(key, k.key) {
		k.pending = nil
	} else {
		p = nil
	}
	k.mu.Unlock()
	if p != nil {
		p()
	}
	return e, err
}

// TestLateLostReplyWriteKeepsItsParts: a checkpoint in parts whose write
// timed out is applied after the lease's next checkpoint re-read the step
// key (and found its old value). The lease must not delete the parts of
// the write whose fate it does not know: that write may be (and here is)
// the step key's value, and a value whose parts are gone is unreadable for
// ever — every later owner's Load fails, the command is dead-lettered and
// every replay fails again.
func TestLateLostReplyWriteKeepsItsParts(t *testing.T) {
	f := newFixture(t)
	kv := &lateKV{KeyValue: f.kv, key: ".step." + ledger.KeyPart("sync.plan")}
	l := ledger.New(kv)
	l.SetClock(f.clock.Now)
	ctx := context.Background()
	id := f.id()
	a, _, err := l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "a")); err != nil {
		t.Fatal(err)
	}
	kv.mu.Lock()
	kv.armed = true
	kv.mu.Unlock()
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "b")); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("checkpoint with a lost reply: %v", err)
	}
	err = a.Checkpoint(ctx, "sync.plan", invitations(5000, "c"))
	t.Logf("the lease's next checkpoint: %v", err) // ErrLost: "b" landed meanwhile
	f.clock.Advance(ttl + time.Second)
	b := f.acquire(t, id, other, 8)
	var got []string
	ok, err := b.Load(ctx, "sync.plan", &got)
	if err != nil || !ok || !(slices.Equal(got, invitations(5000, "b")) || slices.Equal(got, invitations(5000, "c"))) {
		t.Fatalf("next owner's load: %d entries, %v %v; want a whole checkpoint", len(got), ok, err)
	}
}

// TestStepLostReplyLeavesNoParts: a checkpoint in parts stored with its
// reply lost replaces a value in parts; the lease's next checkpoint finds
// its own write and replaces it. The parts of the value the lost-reply
// write replaced are garbage (no pointer names them: part keys carry the
// write's nonce) and must go with the next write, as they do when no reply
// is lost; otherwise every lost reply leaves a checkpoint's worth of parts
// in the ledger for ever.
func TestStepLostReplyLeavesNoParts(t *testing.T) {
	f := newFixture(t)
	kv, l := f.lossy()
	ctx := context.Background()
	id := f.id()
	a, _, err := l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil {
		t.Fatal(err)
	}
	stepKey := ledger.Key("cmd", typ, id, "step") + "." + ledger.KeyPart("sync.plan")
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "a")); err != nil {
		t.Fatal(err)
	}
	want := len(partKeys(t, f.kv, stepKey))
	kv.lose.Store(true)
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "b")); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("checkpoint with a lost reply: %v", err)
	}
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "c")); err != nil {
		t.Fatal(err)
	}
	if got := len(partKeys(t, f.kv, stepKey)); got != want {
		t.Fatalf("%d part keys left under the step key, want %d (the current value's)", got, want)
	}
}
