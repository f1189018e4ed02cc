package ledger_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestWriteOverMaxPayloadIsPermanent: a value the broker can never take (a
// shared key over its max payload) fails permanently, naming its size,
// instead of being retried until the command runs out of deliveries.
func TestWriteOverMaxPayloadIsPermanent(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	ctx := context.Background()
	l, err := ledger.Open(ctx, env.JS, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 100<<10)
	_, err = l.Store(ctx, ledger.Key("shared", "big"), big, 0)
	if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "maximum payload") || !strings.Contains(err.Error(), "102402 bytes") {
		t.Fatalf("store over the max payload: %v (permanent %v), want permanent, naming the size", err, failure.IsPermanent(err))
	}
}
