package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
)

// countGetKV counts Gets.
type countGetKV struct {
	jetstream.KeyValue
	gets atomic.Int64
}

func (k *countGetKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k.gets.Add(1)
	return k.KeyValue.Get(ctx, key)
}

// TestForgedPointerRepeatingOnePartIsRefused: a forged value (anyone who may
// write the bucket) of ~135 KB names one 32 KiB part 4,094 times between
// "[" and "]": the reader made 4,096 reads and assembled 128 MiB (2 GiB
// with 512 KiB parts on a 1 MiB broker, 4 GiB with 1 MiB parts) before
// decoding — one small write makes every provision of the group (or every
// delivery of the command) allocate that much. It must be refused.
func TestForgedPointerRepeatingOnePartIsRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	raw, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("provision", "invited", "site", "forged")
	nonce := "000000000000000000000000"
	put := func(b []byte) string {
		sum := sha256.Sum256(append([]byte(nonce), b...))
		h := hex.EncodeToString(sum[:16])
		if _, err := raw.Put(ctx, key+".p"+h, b); err != nil {
			t.Fatal(err)
		}
		return h
	}
	open, blank, end := put([]byte("[")), put([]byte(strings.Repeat(" ", 32<<10))), put([]byte("]"))
	ptr := "#parts2 " + nonce + " " + open + strings.Repeat(" "+blank, 4094) + " " + end
	if _, err := raw.Put(ctx, key, []byte(ptr)); err != nil {
		t.Fatal(err)
	}
	kv := &countGetKV{KeyValue: raw}
	var got []string
	_, err = ledger.New(kv).Load(ctx, key, &got)
	if err == nil {
		t.Fatalf("a forged pointer naming one part 4,094 times was read (%d reads, 128 MiB assembled), want it refused", kv.gets.Load())
	}
	if n := kv.gets.Load(); n > 64 {
		t.Fatalf("refused after %d reads: %v", n, err)
	}
}

// TestForgedPointerWithALongHashIsRefused: a forged pointer whose "hash" is 8,000
// characters makes the reader ask the server for a key of 8 KB (over the
// server's max control line). It must be refused without asking.
func TestForgedPointerWithALongHashIsRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	raw, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.Key("provision", "invited", "site", "longhash")
	if _, err := raw.Put(ctx, key, []byte("#parts2 n "+strings.Repeat("a", 8000))); err != nil {
		t.Fatal(err)
	}
	kv := &countGetKV{KeyValue: raw}
	var got []string
	_, err = ledger.New(kv).Load(ctx, key, &got)
	t.Logf("load: %v; %d reads; connection %v", err, kv.gets.Load(), env.NC.Status())
	if err == nil || kv.gets.Load() > 1 {
		t.Fatalf("forged pointer with an 8,000-character hash: %v after %d reads, want refused after reading the key alone", err, kv.gets.Load())
	}
}
