package handlers

import (
	"strconv"
	"strings"
	"testing"

	"groupflow/internal/failure"
)

// TestIdlePagesBounded: a listing whose every page names 100 fresh ids ends
// (permanent) on the page that goes past maxListedIDs, not before it.
func TestIdlePagesBounded(t *testing.T) {
	p := newIdlePages("scan members")
	pages := maxListedIDs / 100
	for n := range pages + 1 {
		err := p.page(100, func(i int) string { return strconv.Itoa(n*100 + i) })
		switch {
		case n < pages && err != nil:
			t.Fatalf("page %d of %d: %v", n+1, pages, err)
		case n == pages && (!failure.IsPermanent(err) || !strings.Contains(err.Error(), "more than 1000000 distinct ids")):
			t.Fatalf("page %d: %v, want permanent, past %d ids", n+1, err, maxListedIDs)
		}
	}
	if len(p.seen) != maxListedIDs {
		t.Errorf("%d ids held, want %d", len(p.seen), maxListedIDs)
	}
}
