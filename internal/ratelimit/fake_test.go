package ratelimit

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeKV is an in-memory bucket: puts and deletes reach every watcher in
// order, as JetStream's ordered watchers do.
type fakeKV struct {
	mu       sync.Mutex
	rev      uint64
	vals     map[string]fakeEntry
	watchers []*fakeWatcher
	held     []fakeEntry // not yet delivered while holding (see hold)
	holding  bool
}

// hold keeps every later put and delete from the watchers until release,
// as a slow watch would.
func (f *fakeKV) hold() {
	f.mu.Lock()
	f.holding = true
	f.mu.Unlock()
}

// release delivers what hold kept back, in order, and stops holding.
func (f *fakeKV) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holding = false
	for _, e := range f.held {
		f.deliverLocked(e)
	}
	f.held = nil
}

func (f *fakeKV) deliverLocked(e fakeEntry) {
	for _, w := range f.watchers {
		if !w.stopped {
			w.ch <- e
		}
	}
}

func newFakeKV() *fakeKV { return &fakeKV{vals: map[string]fakeEntry{}} }

func (f *fakeKV) Put(_ context.Context, key string, value []byte) (uint64, error) {
	return f.write(key, append([]byte(nil), value...), jetstream.KeyValuePut), nil
}

func (f *fakeKV) Delete(_ context.Context, key string, _ ...jetstream.KVDeleteOpt) error {
	f.write(key, nil, jetstream.KeyValueDelete)
	return nil
}

func (f *fakeKV) write(key string, value []byte, op jetstream.KeyValueOp) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	e := fakeEntry{key: key, value: value, op: op, rev: f.rev}
	if op == jetstream.KeyValuePut {
		f.vals[key] = e
	} else {
		delete(f.vals, key)
	}
	if f.holding {
		f.held = append(f.held, e)
	} else {
		f.deliverLocked(e)
	}
	return f.rev
}

func (f *fakeKV) Watch(_ context.Context, _ string, _ ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWatcher{kv: f, ch: make(chan jetstream.KeyValueEntry, 1<<16)}
	for _, e := range f.vals {
		w.ch <- e
	}
	w.ch <- nil
	f.watchers = append(f.watchers, w)
	return w, nil
}

type fakeWatcher struct {
	kv      *fakeKV
	ch      chan jetstream.KeyValueEntry
	stopped bool // guarded by kv.mu
}

func (w *fakeWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.ch }

func (w *fakeWatcher) Stop() error {
	w.kv.mu.Lock()
	w.stopped = true
	w.kv.mu.Unlock()
	return nil
}

type fakeEntry struct {
	key   string
	value []byte
	op    jetstream.KeyValueOp
	rev   uint64
}

func (e fakeEntry) Bucket() string                  { return "fake" }
func (e fakeEntry) Key() string                     { return e.key }
func (e fakeEntry) Value() []byte                   { return e.value }
func (e fakeEntry) Revision() uint64                { return e.rev }
func (e fakeEntry) Created() time.Time              { return time.Time{} }
func (e fakeEntry) Delta() uint64                   { return 0 }
func (e fakeEntry) Operation() jetstream.KeyValueOp { return e.op }

// fakeClock is a clock the test moves; its ticker sends only when the test
// calls tick.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
	ch  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ch: make(chan time.Time)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return c.ch, func() {} }

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// drivenGroup is a Group on a fakeKV whose heartbeats the test drives.
type drivenGroup struct {
	*Group
	clk *fakeClock
}

func newDrivenGroup(ctx context.Context, kv *fakeKV, id string, opts Options) (*drivenGroup, error) {
	clk := newFakeClock()
	g := newGroup(ctx, id, opts, clk)
	g.kv = kv
	g.tickDone = make(chan struct{})
	if err := g.start(); err != nil {
		return nil, err
	}
	return &drivenGroup{Group: g, clk: clk}, nil
}

// tick moves the clock one heartbeat on and waits until the group has
// handled that heartbeat and heard its own put back.
func (d *drivenGroup) tick() {
	now := d.clk.advance(d.opts.Heartbeat)
	d.clk.ch <- now
	<-d.tickDone
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; runtime.Gosched() {
		d.mu.Lock()
		heard := !d.h.active || !d.h.lastEcho.Before(now)
		d.mu.Unlock()
		if heard {
			return
		}
	}
}

// state returns the local state of site (nil if none).
func (g *Group) state(site string) *siteState {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.sites {
		if st.site == site {
			return st
		}
	}
	return nil
}
