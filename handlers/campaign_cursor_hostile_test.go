package handlers

import (
	"testing"
	"time"
)

// TestOffsetCursorClampedOffsetEnds: a Wix that answers the first (newest)
// page again for any offset past a cap, and says more follow (a group too
// large to count): every later page is a page of members who all joined
// after the tail, without any of the page before, which the cursor takes
// for joiners that pushed the members read further down, and passes. It
// must not pass such pages for ever (one Wix call each, the campaign never
// ending nor failing): the old cursor failed it as a paging that makes no
// progress after three repeated pages.
func TestOffsetCursorClampedOffsetEnds(t *testing.T) {
	l := &cursorList{clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	for range 400 {
		l.join(1, false)
	}
	var c offsetCursor
	for reads := 0; ; reads++ {
		if reads > 1000 {
			t.Fatalf("still paging after %d reads (offset %d, %d idle reads in a row)", reads, c.Offset, c.Idle)
		}
		at := c.at(true)
		if at > 150 {
			at = 0 // the cap: the first page again
		}
		page, n, _ := l.page(at)
		_, done, err := c.advance(page, n, true, true, "g")
		if err != nil || done {
			return
		}
	}
}
