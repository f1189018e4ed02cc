package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
)

// partKey matches a part's key: the step key, ".p" and its hash.
var partKey = regexp.MustCompile(`\.p[0-9a-f]{32}$`)

// TestCheckpointInParts: a checkpoint larger than one KV value may be (over
// ledger.New's 32 KiB part size) is read back whole by the next owner after
// a failover; a stale owner's write of one does not land; a part altered
// behind the ledger's back is an error, not a checkpoint.
func TestCheckpointInParts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.id()
	a := f.acquire(t, id, me, 7)
	plan := make([]string, 5000) // 120 KB of JSON: 4 parts
	for i := range plan {
		plan[i] = strings.Repeat("m", 20) + string(rune('a'+i%26))
	}
	if err := a.Checkpoint(ctx, "sync.plan", plan); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(ttl + time.Second) // a crash; the lease expires
	b := f.acquire(t, id, other, 7)
	var got []string
	if ok, err := b.Load(ctx, "sync.plan", &got); !ok || err != nil || !slices.Equal(got, plan) {
		t.Fatalf("checkpoint in parts after failover: %d entries, %v %v", len(got), ok, err)
	}
	if err := a.Checkpoint(ctx, "sync.plan", plan[:4000]); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("stale owner's checkpoint in parts: %v, want ErrLost", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	c := f.acquire(t, id, me, 8)
	if ok, err := c.Load(ctx, "sync.plan", &got); !ok || err != nil || !slices.Equal(got, plan) {
		t.Fatalf("after the stale owner's write: %d entries, %v %v", len(got), ok, err)
	}

	// Alter one part: the next owner's Load fails instead of decoding it.
	keys, err := f.kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, k := range keys {
		if strings.HasPrefix(k, ledger.Key("cmd", typ, id, "step")) && partKey.MatchString(k) {
			parts = append(parts, k)
		}
	}
	if len(parts) != 4 {
		t.Fatalf("%d part keys, want 4 (the stale owner wrote none): %v", len(parts), keys)
	}
	if _, err := f.kv.Put(ctx, parts[0], []byte(`"altered"`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	d := f.acquire(t, id, other, 9)
	if ok, err := d.Load(ctx, "sync.plan", &got); err == nil || !strings.Contains(err.Error(), "missing or altered") {
		t.Fatalf("load with an altered part: %v %v, want a missing-or-altered error", ok, err)
	}
}

// TestCheckpointPartsPruned: a checkpoint in parts replaced by the next
// one leaves only the new one's parts; Prune after Complete deletes the
// step key and its parts (a completed command is answered from its event).
func TestCheckpointPartsPruned(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.id()
	a := f.acquire(t, id, me, 7)
	stepKey := ledger.Key("cmd", typ, id, "step") + "." + ledger.KeyPart("sync.plan")
	if err := a.Checkpoint(ctx, "sync.plan", invitations(5000, "a")); err != nil {
		t.Fatal(err)
	}
	first := partKeys(t, f.kv, stepKey)
	if err := a.Checkpoint(ctx, "sync.plan", invitations(4000, "b")); err != nil {
		t.Fatal(err)
	}
	second := partKeys(t, f.kv, stepKey)
	if len(first) != 4 || len(second) != 3 || slices.ContainsFunc(second, func(k string) bool { return slices.Contains(first, k) }) {
		t.Fatalf("part keys: %v, then %v; want 4, then 3 others", first, second)
	}
	if err := a.Complete(ctx, ledger.Outcome{EventType: "group_provisioned", EventID: "e-" + id, Event: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if left := partKeys(t, f.kv, stepKey); !slices.Equal(left, second) {
		t.Fatalf("after Complete, before Prune: part keys %v, want %v (the event is published first)", left, second)
	}
	a.Prune(ctx)
	if left := partKeys(t, f.kv, stepKey); len(left) != 0 {
		t.Fatalf("after Prune: part keys %v, want none", left)
	}
	if _, err := f.kv.Get(ctx, stepKey); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after Prune: step key: %v, want it deleted", err)
	}
}

// TestWriteOverMaxPayloadIsPermanent: a value the broker can never take (a
// record over its max payload) fails permanently, naming its size, instead
// of being retried until the command runs out of deliveries.
func TestWriteOverMaxPayloadIsPermanent(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	ctx := context.Background()
	l, err := ledger.Open(ctx, env.JS, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	lease, _, err := l.Acquire(ctx, ledger.Claim{CommandType: typ, CommandID: "big", Subject: "groups.cmd." + typ,
		Delivery: 1, Seq: 1, Owner: me, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	event, _ := json.Marshal(strings.Repeat("x", 100<<10))
	err = lease.Complete(ctx, ledger.Outcome{EventType: "group_provisioned", EventID: "e1", Event: event})
	if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "maximum payload") || !strings.Contains(err.Error(), "bytes)") {
		t.Fatalf("record over the max payload: %v (permanent %v), want permanent, naming the size", err, failure.IsPermanent(err))
	}
}

// TestSharedKeyInParts: a shared key's value over the part size (a group's
// pending invitations past about 27,000 members exceed the 1 MiB max
// payload) is stored in parts on a 64 KiB broker and read back whole by
// another instance; replacing it deletes the parts it had; a write refused
// by compare-and-set leaves no parts behind; Remove deletes them all.
func TestSharedKeyInParts(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	ctx := context.Background()
	a, err := ledger.Open(ctx, env.JS, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ledger.Open(ctx, env.JS, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("invited", "site", "group")
	first := invitations(6000, "a") // ~150 KB of JSON: 5 parts of 32 KiB
	rev, err := a.Store(ctx, key, first, 0)
	if err != nil {
		t.Fatal(err)
	}
	firstParts := partKeys(t, kv, key)
	if len(firstParts) != 5 {
		t.Fatalf("%d part keys, want 5: %v", len(firstParts), firstParts)
	}
	var got []string
	if r, err := b.Load(ctx, key, &got); err != nil || r != rev || !slices.Equal(got, first) {
		t.Fatalf("another instance's load: %d entries at %d (want %d), %v", len(got), r, rev, err)
	}

	second := invitations(5000, "b")
	rev2, err := b.Store(ctx, key, second, rev)
	if err != nil {
		t.Fatal(err)
	}
	secondParts := partKeys(t, kv, key)
	if len(secondParts) != 4 || slices.ContainsFunc(secondParts, func(k string) bool { return slices.Contains(firstParts, k) }) {
		t.Fatalf("after the replacement: %v, want 4 new part keys and none of %v", secondParts, firstParts)
	}
	if _, err := a.Store(ctx, key, invitations(5500, "c"), rev); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("store at a stale revision: %v, want ErrConflict", err)
	}
	if left := partKeys(t, kv, key); !slices.Equal(left, secondParts) {
		t.Fatalf("after a refused store: part keys %v, want only the current value's %v", left, secondParts)
	}
	if r, err := a.Load(ctx, key, &got); err != nil || r != rev2 || !slices.Equal(got, second) {
		t.Fatalf("load after the replacement: %d entries at %d (want %d), %v", len(got), r, rev2, err)
	}
	if err := a.Remove(ctx, key, rev2); err != nil {
		t.Fatal(err)
	}
	if left := partKeys(t, kv, key); len(left) != 0 {
		t.Fatalf("after Remove: part keys %v, want none", left)
	}
}

// TestPartsReplacedWhileRead: a reader that finds a part gone because
// another instance replaced the value (and deleted its parts) meanwhile
// reads the key again and gets the new value, not an error.
func TestPartsReplacedWhileRead(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	w := ledger.New(kv)
	key := ledger.Key("invited", "site", "group")
	rev, err := w.Store(ctx, key, invitations(3000, "a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Load(ctx, key, new([]string)); err != nil { // w remembers the value's parts
		t.Fatal(err)
	}
	second := invitations(3000, "b")
	var replaced bool
	hook := &onGetKV{KeyValue: kv, on: func(k string) {
		if partKey.MatchString(k) && !replaced {
			replaced = true
			if _, err := w.Store(ctx, key, second, rev); err != nil {
				t.Error(err)
			}
		}
	}}
	var got []string
	if _, err := ledger.New(hook).Load(ctx, key, &got); err != nil || !replaced || !slices.Equal(got, second) {
		t.Fatalf("load across a replacement: %d entries, replaced %v, %v; want the new value", len(got), replaced, err)
	}
}

// TestPartsOfBeforeTheNonce: a value in parts written before part keys
// carried a nonce ("#parts <sha256 of each part>") is still read.
func TestPartsOfBeforeTheNonce(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("invited", "site", "old")
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
	var got []string
	if _, err := ledger.New(kv).Load(ctx, key, &got); err != nil || !slices.Equal(got, invitations(2000, "v1")) {
		t.Fatalf("load of an old pointer: %d entries, %v", len(got), err)
	}
}

// invitations returns n member ids, ~25 bytes of JSON each.
func invitations(n int, tag string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%018d", tag, i)
	}
	return ids
}

// partKeys lists the part keys of key in kv, sorted.
func partKeys(t *testing.T, kv jetstream.KeyValue, key string) []string {
	t.Helper()
	keys, err := kv.Keys(context.Background())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, key+".p") && partKey.MatchString(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// onGetKV calls on before every Get.
type onGetKV struct {
	jetstream.KeyValue
	on func(key string)
}

func (k *onGetKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k.on(key)
	return k.KeyValue.Get(ctx, key)
}
