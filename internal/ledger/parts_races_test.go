package ledger_test

// Values in parts under lost replies, failed writes, two instances, stale
// owners, and the storage replaced parts leave.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
)

// danglingParts returns the part keys key's current value names that are
// missing (data loss), for a "#parts2" pointer.
func danglingParts(t *testing.T, kv jetstream.KeyValue, key string) []string {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(string(e.Value()), "#parts2 ")
	if !ok {
		return nil
	}
	f := strings.Fields(rest)
	var out []string
	for _, h := range f[1:] {
		if _, err := kv.Get(context.Background(), key+".p"+h); err != nil {
			out = append(out, key+".p"+h+": "+err.Error())
		}
	}
	return out
}

// updateShared is handlers/provision_group.go's loop.
func updateShared(ctx context.Context, l *ledger.Ledger, key string, fn func(*[]string) bool) error {
	for range 8 {
		var v []string
		rev, err := l.Load(ctx, key, &v)
		if err != nil {
			return err
		}
		if !fn(&v) {
			return nil
		}
		if _, err := l.Store(ctx, key, v, rev); !errors.Is(err, ledger.ErrConflict) {
			return err
		}
	}
	return ledger.ErrConflict
}

// TestStoreLostReplyThenRetry: the pointer's compare-and-set is
// stored but its reply lost (Store returns a timeout); the handler's retry
// (updateShared again) reads the stored value and replaces it. The current
// value never names a deleted part, and the value read is always whole.
func TestStoreLostReplyThenRetry(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	raw, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	kv := &lostUpdateKV{KeyValue: raw}
	l := ledger.New(kv)
	key := ledger.Key("provision", "invited", "site", "g")
	if _, err := l.Store(ctx, key, invitations(3000, "a"), 0); err != nil {
		t.Fatal(err)
	}
	add := func(tag string) func(*[]string) bool {
		return func(v *[]string) bool { *v = append(*v, invitations(300, tag)...); return true }
	}
	kv.lose.Store(true)
	if err := updateShared(ctx, l, key, add("b")); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("store with a lost reply: %v, want a timeout", err)
	}
	if d := danglingParts(t, raw, key); len(d) != 0 {
		t.Fatalf("after the lost reply: dangling %v", d)
	}
	if err := updateShared(ctx, l, key, add("c")); err != nil {
		t.Fatal(err)
	}
	if d := danglingParts(t, raw, key); len(d) != 0 {
		t.Fatalf("after the retry: dangling %v", d)
	}
	var got []string
	if _, err := ledger.New(raw).Load(ctx, key, &got); err != nil || len(got) != 3600 {
		t.Fatalf("load: %d entries, %v; want 3600", len(got), err)
	}
	// What is left behind: the parts of the value the lost-reply write
	// replaced (its writer never learnt it was replaced).
	t.Logf("part keys left: %d (current value's: %d)", len(partKeys(t, raw, key)), 4)
}

// TestSpillLostReplyThenRetry: a checkpoint in parts whose pointer
// write is stored with its reply lost; the same lease checkpoints again.
// Whatever the lease answers, the next owner reads a whole checkpoint.
func TestSpillLostReplyThenRetry(t *testing.T) {
	f := newFixture(t)
	kv, l := f.lossy()
	ctx := context.Background()
	id := f.id()
	a, _, err := l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "a")); err != nil {
		t.Fatal(err)
	}
	kv.lose.Store(true)
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "b")); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("checkpoint with a lost reply: %v", err)
	}
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "c")); err != nil {
		t.Fatalf("the same lease's next checkpoint: %v, want it stored (its lost-reply write is its own)", err)
	}
	stepKey := ledger.Key("cmd", typ, id, "step") + "." + ledger.KeyPart("sync.plan")
	if d := danglingParts(t, f.kv, stepKey); len(d) != 0 {
		t.Fatalf("dangling %v", d)
	}
	f.clock.Advance(ttl + time.Second)
	b := f.acquire(t, id, other, 7)
	var got []string
	if ok, err := b.Load(ctx, "sync.plan", &got); !ok || err != nil || !slices.Equal(got, invitations(5000, "c")) {
		t.Fatalf("next owner: %d entries, %v %v; want the last checkpoint", len(got), ok, err)
	}
}

// TestPartsTwoInstancesContend: two ledgers (instances), several commands
// each, add disjoint ids to one shared key in parts concurrently. Every
// update lands (none lost), every read is whole, no pointer names a
// deleted part.
func TestPartsTwoInstancesContend(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	var ls [2]*ledger.Ledger
	for i := range ls {
		if ls[i], err = ledger.Open(ctx, env.JS, broker.LedgerBucket); err != nil {
			t.Fatal(err)
		}
	}
	key := ledger.Key("provision", "invited", "site", "contended")
	if _, err := ls[0].Store(ctx, key, invitations(4000, "base"), 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var done, failed atomic.Int64
	const workers, rounds = 6, 8
	for w := range workers {
		wg.Go(func() {
			l := ls[w%2]
			for r := range rounds {
				tag := fmt.Sprintf("w%dr%d", w, r)
				var err error
				for range 20 { // the runtime's redeliveries
					if err = updateShared(ctx, l, key, func(v *[]string) bool {
						*v = append(*v, invitations(10, tag)...)
						return true
					}); err == nil {
						break
					}
				}
				if err != nil {
					failed.Add(1)
					t.Logf("update %s: %v", tag, err)
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	var got []string
	if _, err := ls[1].Load(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if want := 4000 + 10*int(done.Load()); len(got) != want || failed.Load() != 0 {
		t.Fatalf("%d ids, want %d (%d updates failed)", len(got), want, failed.Load())
	}
	if d := danglingParts(t, kv, key); len(d) != 0 {
		t.Fatalf("dangling %v", d)
	}
	t.Logf("part keys left: %d", len(partKeys(t, kv, key)))
}

// TestV1PartsNeverDeleted: replacing (or removing) a value whose
// pointer is of the old format leaves its content-addressed parts alone,
// as documented (another value of the key may name them).
func TestV1PartsNeverDeleted(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("provision", "invited", "site", "v1")
	b, _ := json.Marshal(invitations(2000, "v1"))
	ptr := "#parts"
	for off := 0; off < len(b); off += 32 << 10 {
		part := b[off:min(off+32<<10, len(b))]
		sum := sha256.Sum256(part)
		h := hex.EncodeToString(sum[:16])
		if _, err := kv.Put(ctx, key+".p"+h, part); err != nil {
			t.Fatal(err)
		}
		ptr += " " + h
	}
	if _, err := kv.Put(ctx, key, []byte(ptr)); err != nil {
		t.Fatal(err)
	}
	v1 := partKeys(t, kv, key)
	l := ledger.New(kv)
	var got []string
	rev, err := l.Load(ctx, key, &got)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err = l.Store(ctx, key, invitations(3000, "v2"), rev); err != nil {
		t.Fatal(err)
	}
	if left := partKeys(t, kv, key); !slices.ContainsFunc(left, func(k string) bool { return slices.Contains(v1, k) }) || len(left) != len(v1)+3 {
		t.Fatalf("after replacing a V1 value: %v, want its %d parts kept besides 3 new ones", left, len(v1))
	}
	if err := l.Remove(ctx, key, rev); err != nil {
		t.Fatal(err)
	}
	if left := partKeys(t, kv, key); !slices.Equal(left, v1) {
		t.Fatalf("after Remove: %v, want only the V1 parts %v", left, v1)
	}
}

// TestPruneDeletesReadSteps: a step in parts written by an earlier attempt
// and only read by the completing lease is deleted by its Prune, parts and
// all; a stale owner's Prune after its Complete failed (ErrLost) deletes
// nothing.
func TestPruneDeletesReadSteps(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.id()
	stepKey := ledger.Key("cmd", typ, id, "step") + "." + ledger.KeyPart("sync.plan")
	a := f.acquire(t, id, me, 7)
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "a")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(ttl + time.Second) // a's lease expires
	b := f.acquire(t, id, other, 7)
	var got []string
	if ok, err := b.Load(ctx, "sync.plan", &got); !ok || err != nil {
		t.Fatal(ok, err)
	}
	out := ledger.Outcome{EventType: "group_provisioned", EventID: "e-" + id, Event: json.RawMessage(`{}`)}
	if err := a.Complete(ctx, out); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("stale owner's Complete: %v, want ErrLost", err)
	}
	a.Prune(ctx)
	if n := len(partKeys(t, f.kv, stepKey)); n != 4 {
		t.Fatalf("after a stale Complete: %d part keys, want 4", n)
	}
	if err := b.Complete(ctx, out); err != nil {
		t.Fatal(err)
	}
	b.Prune(ctx)
	if left := partKeys(t, f.kv, stepKey); len(left) != 0 {
		t.Fatalf("after Prune: %v", left)
	}
	if _, err := f.kv.Get(ctx, stepKey); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("step key after Prune: %v", err)
	}
}

// TestReplacedPartsLeaveNoMarkers: a replaced value's parts are purged
// from the bucket's stream, not deleted: a KV delete leaves a marker per
// part key (History 1 keeps the last message of every subject), and part
// keys are never reused (a nonce per write), so the bucket's messages and
// subjects would grow with every write, forever.
func TestReplacedPartsLeaveNoMarkers(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10)) // parts of 32 KiB
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := env.JS.Stream(ctx, "KV_"+broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	state := func() (uint64, uint64) {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs, info.State.NumSubjects
	}
	l, err := ledger.Open(ctx, env.JS, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("provision", "invited", "site", "markers")
	for i := range 50 {
		var got []string
		rev, err := l.Load(ctx, key, &got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Store(ctx, key, invitations(6000, fmt.Sprint(i)), rev); err != nil {
			t.Fatal(err)
		}
	}
	msgs, subjects := state()
	t.Logf("after 50 writes of a 5-part value: %d live part keys, %d messages, %d subjects in the bucket", len(partKeys(t, kv, key)), msgs, subjects)
	if live := len(partKeys(t, kv, key)); live != 5 || msgs != uint64(live)+1 || subjects != msgs {
		t.Fatalf("%d messages and %d subjects kept for one key of %d parts, want 5 parts and 6 of each: the pointer and its parts", msgs, subjects, live)
	}
}

// failUpdateKV refuses the next Update once armed, storing nothing (a
// broker that never got it: nats: timeout all the same).
type failUpdateKV struct {
	jetstream.KeyValue
	fail atomic.Bool
}

func (k *failUpdateKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if k.fail.CompareAndSwap(true, false) {
		return 0, nats.ErrTimeout
	}
	return k.KeyValue.Update(ctx, key, value, rev)
}

// TestStoreNotStoredKeepsTheValue: a Store whose pointer write never
// reached the broker (a timeout, as a lost reply looks) must delete
// neither the current value's parts nor anything it names.
func TestStoreNotStoredKeepsTheValue(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	raw, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	kv := &failUpdateKV{KeyValue: raw}
	l := ledger.New(kv)
	key := ledger.Key("provision", "invited", "site", "unstored")
	if _, err := l.Store(ctx, key, invitations(3000, "a"), 0); err != nil {
		t.Fatal(err)
	}
	kv.fail.Store(true)
	if err := updateShared(ctx, l, key, func(v *[]string) bool { *v = append(*v, "x"); return true }); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("unstored write: %v, want a timeout", err)
	}
	if d := danglingParts(t, raw, key); len(d) != 0 {
		t.Fatalf("after an unstored write: dangling %v", d)
	}
	var got []string
	if _, err := ledger.New(raw).Load(ctx, key, &got); err != nil || !slices.Equal(got, invitations(3000, "a")) {
		t.Fatalf("load: %d entries, %v", len(got), err)
	}
}
