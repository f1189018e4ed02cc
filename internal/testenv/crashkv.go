package testenv

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrCrashed is what a CrashKV answers once its process "crashed".
var ErrCrashed = errors.New("testenv: process crashed (injected)")

// CrashKV wraps a ledger bucket to stop a process at a write boundary: it
// counts the writes (Put, Create, Update, Delete, Purge), and once armed at
// write n it fails that write — not stored (Before) or stored and then
// failed (After: the reply was lost) — and every call after it, reads
// included, as if the process had died there. The process's lease then
// only expires.
type CrashKV struct {
	jetstream.KeyValue

	mu      sync.Mutex
	writes  int
	at      int // 0: never
	after   bool
	crashed chan struct{}
	keys    []string
}

// NewCrashKV wraps kv; CrashAt arms it.
func NewCrashKV(kv jetstream.KeyValue) *CrashKV {
	return &CrashKV{KeyValue: kv, crashed: make(chan struct{})}
}

// CrashAt arms the crash at the n-th write (1-based), before or after it.
func (c *CrashKV) CrashAt(n int, after bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.after = n, after
}

// Crashed is closed once the crash happened.
func (c *CrashKV) Crashed() <-chan struct{} { return c.crashed }

// Writes returns the writes attempted so far and their keys.
func (c *CrashKV) Writes() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, append([]string(nil), c.keys...)
}

func (c *CrashKV) dead() bool {
	select {
	case <-c.crashed:
		return true
	default:
		return false
	}
}

// write runs do unless the process is dead or dies at this write.
func (c *CrashKV) write(key string, do func() (uint64, error)) (uint64, error) {
	c.mu.Lock()
	if c.dead() {
		c.mu.Unlock()
		return 0, ErrCrashed
	}
	c.writes++
	c.keys = append(c.keys, key)
	crash, after := c.at != 0 && c.writes == c.at, c.after
	c.mu.Unlock()
	if !crash {
		return do()
	}
	if after {
		_, _ = do()
	}
	close(c.crashed)
	return 0, ErrCrashed
}

func (c *CrashKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if c.dead() {
		return nil, ErrCrashed
	}
	return c.KeyValue.Get(ctx, key)
}

func (c *CrashKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return c.write(key, func() (uint64, error) { return c.KeyValue.Put(ctx, key, value) })
}

func (c *CrashKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return c.write(key, func() (uint64, error) { return c.KeyValue.Create(ctx, key, value, opts...) })
}

func (c *CrashKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return c.write(key, func() (uint64, error) { return c.KeyValue.Update(ctx, key, value, revision) })
}

func (c *CrashKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	_, err := c.write(key, func() (uint64, error) { return 0, c.KeyValue.Delete(ctx, key, opts...) })
	return err
}

func (c *CrashKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	_, err := c.write(key, func() (uint64, error) { return 0, c.KeyValue.Purge(ctx, key, opts...) })
	return err
}
