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

// WithCallCounter returns a context whose Wix calls are counted in c.
func WithCallCounter(ctx context.Context, c *CallCounter) context.Context {
	return context.WithValue(ctx, callCounterKey{}, c)
}

// callCounterFrom returns the counter in ctx, or nil.
func callCounterFrom(ctx context.Context) *CallCounter {
	c, _ := ctx.Value(callCounterKey{}).(*CallCounter)
	return c
}
