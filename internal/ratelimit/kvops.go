package ratelimit

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// kvStore is the part of jetstream.KeyValue a Group uses (tests pass a fake).
type kvStore interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// KV operation kinds, the values of the "kind" label of
// groupflow_rate_kv_ops_total.
const (
	OpWatch    = "watch"     // a watch (re)started: one per instance, again after a broken watch
	OpPutSites = "put_sites" // the instance's list of sites with demand
	OpPutLive  = "put_live"  // a heartbeat while the list is unchanged
	OpPutPause = "put_pause" // a 429 pause broadcast to the other instances
	OpDelete   = "delete"    // keys deleted when the instance has no demand left or stops
)

// KVOps counts the KV operations of one Group by kind, and the value bytes
// it wrote.
type KVOps struct {
	Watch, PutSites, PutLive, PutPause, Delete int64
	// Bytes are the value bytes of the puts.
	Bytes int64
}

// Writes returns the puts and deletes.
func (o KVOps) Writes() int64 { return o.PutSites + o.PutLive + o.PutPause + o.Delete }

// Total returns every operation, watches included.
func (o KVOps) Total() int64 { return o.Writes() + o.Watch }

// Sub returns o - p, kind by kind.
func (o KVOps) Sub(p KVOps) KVOps {
	return KVOps{Watch: o.Watch - p.Watch, PutSites: o.PutSites - p.PutSites, PutLive: o.PutLive - p.PutLive,
		PutPause: o.PutPause - p.PutPause, Delete: o.Delete - p.Delete, Bytes: o.Bytes - p.Bytes}
}

// opCounter counts operations locally (KVOps) and in the metrics.
type opCounter struct {
	watch, putSites, putLive, putPause, del, bytes atomic.Int64
	vec                                            *prometheus.CounterVec
	bytesC                                         prometheus.Counter
}

func newOpCounter(reg prometheus.Registerer) *opCounter {
	c := &opCounter{}
	if reg == nil {
		return c
	}
	c.vec = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "groupflow_rate_kv_ops_total",
		Help: "KV operations of the shared Wix rate limiter, by kind (watch, put_sites, put_live, put_pause, delete).",
	}, []string{"kind"}))
	c.bytesC = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "groupflow_rate_kv_bytes_total",
		Help: "Value bytes written to the KV bucket by the shared Wix rate limiter.",
	}))
	return c
}

func (c *opCounter) add(kind string, bytes int) {
	switch kind {
	case OpWatch:
		c.watch.Add(1)
	case OpPutSites:
		c.putSites.Add(1)
	case OpPutLive:
		c.putLive.Add(1)
	case OpPutPause:
		c.putPause.Add(1)
	case OpDelete:
		c.del.Add(1)
	}
	c.bytes.Add(int64(bytes))
	if c.vec != nil {
		c.vec.WithLabelValues(kind).Inc()
	}
	if c.bytesC != nil && bytes > 0 {
		c.bytesC.Add(float64(bytes))
	}
}

func (c *opCounter) snapshot() KVOps {
	return KVOps{Watch: c.watch.Load(), PutSites: c.putSites.Load(), PutLive: c.putLive.Load(),
		PutPause: c.putPause.Load(), Delete: c.del.Load(), Bytes: c.bytes.Load()}
}

// register registers c, or returns the collector already registered under
// its name; nil if neither works.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	var zero C
	return zero
}

// clock is the time source of a Group's demand, liveness and heartbeats
// (tests drive a fake one; the local token buckets and pauses use real time).
type clock interface {
	Now() time.Time
	// Ticker returns ticks every d and a function that stops them.
	Ticker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
