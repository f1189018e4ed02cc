package wix

import (
	"context"
	"sync/atomic"
)

// CallCounter counts the HTTP requests sent to Wix on behalf of one unit of
// work (a command). Every attempt counts, retries and token requests included.
// The zero value is ready; a nil *CallCounter ignores Add and loads 0.
type CallCounter struct{ n atomic.Int64 }

// Add adds delta to the counter.
func (c *CallCounter) Add(delta int64) {
	if c != nil {
		c.n.Add(delta)
	}
}

// Load returns the current count.
func (c *CallCounter) Load() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

type callCounterKey struct{}

// counters is the chain of counters of a context: the innermost first.
type counters struct {
	c     *CallCounter
	outer *counters
}

// WithCallCounter returns a context whose Wix calls are counted in c, and
// in the counters ctx already had (a handler's counter inside the runtime's
// progress counter: both see every call).
func WithCallCounter(ctx context.Context, c *CallCounter) context.Context {
	outer, _ := ctx.Value(callCounterKey{}).(*counters)
	return context.WithValue(ctx, callCounterKey{}, &counters{c: c, outer: outer})
}

// countCall counts one call in every counter of ctx.
func countCall(ctx context.Context) {
	for cs, _ := ctx.Value(callCounterKey{}).(*counters); cs != nil; cs = cs.outer {
		cs.c.Add(1)
	}
}
