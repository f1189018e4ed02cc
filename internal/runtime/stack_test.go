package runtime

import "testing"

// growStack's buffer must stay on the stack: on the heap it would cost
// every message an 8 KiB allocation instead of saving a stack copy.
func TestGrowStackAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, growStack); n != 0 {
		t.Errorf("growStack allocates %.0f times a call, want 0", n)
	}
}
