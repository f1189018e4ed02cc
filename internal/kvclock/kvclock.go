// Package kvclock reads the server's clock through a JetStream KV bucket:
// the stream stamps every entry with the server's time (KeyValueEntry.Created),
// so an age measured from one entry's stamp to another's needs no agreement
// between the clocks of the instances, nor with the server's.
package kvclock

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/natsname"
)

// KV is what ServerNow needs of a bucket.
type KV interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

// ServerNow is the server's current time as the bucket's stream stamps
// entries: it writes a probe to key (the value is the instance's name, for
// `nats kv get`) and reads back the latest entry of the key. That entry is
// the probe or a later one (another instance's), so its time lies between
// the write and the read: an age measured to it from an entry read before
// the probe (Age) is never more than it is on the server's clock. A read
// older than the probe (a replica behind, answering a direct get) is an
// error, as is any failed write or read: the caller retries later, and
// never takes a failed probe for an old age. One write and one read; key
// must be one no other use of the bucket writes (one key for all
// instances, overwritten by every probe: with History 1 it never grows the
// bucket).
func ServerNow(ctx context.Context, kv KV, key, instance string) (time.Time, error) {
	rev, err := kv.Put(ctx, key, []byte(natsname.Token(instance)))
	if err != nil {
		return time.Time{}, fmt.Errorf("kv clock probe: %w", err)
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return time.Time{}, fmt.Errorf("kv clock probe read: %w", err)
	}
	if e.Revision() < rev {
		return time.Time{}, fmt.Errorf("kv clock probe read revision %d, older than the probe's %d", e.Revision(), rev)
	}
	return e.Created(), nil
}

// Age is how long before now (ServerNow) the server stored an entry it
// stamped stored, never below zero (a new stream leader whose clock is
// behind the last one's).
func Age(now, stored time.Time) time.Duration { return max(now.Sub(stored), 0) }
