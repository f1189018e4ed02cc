package wix

import (
	"context"
	"testing"
)

func TestCallCountersNest(t *testing.T) {
	var outer, inner CallCounter
	ctx := WithCallCounter(WithCallCounter(context.Background(), &outer), &inner)
	countCall(ctx)
	countCall(ctx)
	countCall(WithCallCounter(context.Background(), &outer))
	if outer.Load() != 3 || inner.Load() != 2 {
		t.Fatalf("outer %d inner %d, want 3 and 2", outer.Load(), inner.Load())
	}
}
