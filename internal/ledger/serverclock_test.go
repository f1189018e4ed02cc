package ledger_test

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/testutil"
)

// clockKV stamps the entries it writes with the test's clock instead of the
// server's (KeyValueEntry.Created, which the ledger judges another owner's
// lease by): in the fixture one clock, which the tests move, is the owners'
// and the server's alike. clockskew_test.go runs on the real server's
// stamps, with instance clocks off it.
type clockKV struct {
	jetstream.KeyValue
	clock *testutil.Clock
	mu    sync.Mutex
	at    map[uint64]time.Time // revision -> the test clock's time of its write
}

func newClockKV(kv jetstream.KeyValue, clock *testutil.Clock) *clockKV {
	return &clockKV{KeyValue: kv, clock: clock, at: map[uint64]time.Time{}}
}

func (k *clockKV) stamp(rev uint64, err error, at time.Time) (uint64, error) {
	if err == nil {
		k.mu.Lock()
		k.at[rev] = at
		k.mu.Unlock()
	}
	return rev, err
}

func (k *clockKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := k.KeyValue.Put(ctx, key, value)
	return k.stamp(rev, err, k.clock.Now())
}

// putAt writes value as if at the test clock's time at (a record its owner
// wrote then).
func (k *clockKV) putAt(ctx context.Context, key string, value []byte, at time.Time) (uint64, error) {
	rev, err := k.KeyValue.Put(ctx, key, value)
	return k.stamp(rev, err, at)
}

func (k *clockKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := k.KeyValue.Create(ctx, key, value, opts...)
	return k.stamp(rev, err, k.clock.Now())
}

func (k *clockKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	rev, err := k.KeyValue.Update(ctx, key, value, last)
	return k.stamp(rev, err, k.clock.Now())
}

func (k *clockKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := k.KeyValue.Get(ctx, key)
	if err != nil {
		return e, err
	}
	k.mu.Lock()
	at, ok := k.at[e.Revision()]
	k.mu.Unlock()
	if !ok {
		return e, nil
	}
	return stampedEntry{e, at}, nil
}

type stampedEntry struct {
	jetstream.KeyValueEntry
	at time.Time
}

func (e stampedEntry) Created() time.Time { return e.at }
