package handlers

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"groupflow/internal/wix"
)

// cursorList is a model of List Group Members: entries in join order
// (joinedDate ascending, ties in join order), listed newest first, size a
// page (0: wix.MaxPageSize, as asked; fewer: a Wix serving short pages,
// its total counting every entry).
type cursorList struct {
	entries []campaignCandidate
	next    int
	clock   time.Time
	size    int
}

func (l *cursorList) join(k int, tied bool) []string {
	if !tied {
		l.clock = l.clock.Add(time.Millisecond)
	}
	var ids []string
	for range k {
		l.next++
		id := fmt.Sprintf("m%05d", l.next)
		l.entries = append(l.entries, campaignCandidate{ID: id, joined: l.clock})
		ids = append(ids, id)
	}
	return ids
}

// leave removes the members at the given list positions (newest first).
func (l *cursorList) leave(pos ...int) {
	drop := map[int]bool{}
	for _, p := range pos {
		drop[len(l.entries)-1-p] = true
	}
	var keep []campaignCandidate
	for i, e := range l.entries {
		if !drop[i] {
			keep = append(keep, e)
		}
	}
	l.entries = keep
}

func (l *cursorList) page(offset int) ([]campaignCandidate, int, bool) {
	size := l.size
	if size == 0 {
		size = wix.MaxPageSize
	}
	var out []campaignCandidate
	for p := offset; p < len(l.entries) && len(out) < size; p++ {
		out = append(out, l.entries[len(l.entries)-1-p])
	}
	n := len(out)
	md := wix.PagingMetadata{Total: len(l.entries)}
	if l.size == 0 {
		md.Total = 0 // no total: a short page is the last
	}
	return out, n, wix.MorePages(n, wix.MaxPageSize, offset+n, md)
}

func (l *cursorList) ids() []string {
	var out []string
	for _, e := range l.entries {
		out = append(out, e.ID)
	}
	return out
}

// TestOffsetCursorChurn pages a model list with offsetCursor while members
// join (newest first) and leave (anywhere, up to 150 between two reads)
// between reads: every member present from start to end is taken exactly
// once and nobody is taken twice, whether join dates are distinct or tie
// (one date for every member, as after one bulk add), or missing.
func TestOffsetCursorChurn(t *testing.T) {
	for _, tc := range []struct {
		dates             string
		maxLeave, maxJoin int
		exact             bool
		size              int // a page (0: as asked)
	}{
		{"distinct", 150, 130, true, 0},
		{"tied", 60, 60, true, 0},
		{"missing", 60, 60, true, 0},
		{"tied", 150, 130, false, 0},
		{"missing", 150, 130, false, 0},
		// A Wix serving 50 a page (its total counted), churn scaled to it.
		{"distinct", 75, 65, true, 50},
		{"tied", 30, 30, true, 50},
		{"missing", 30, 30, true, 50},
		{"tied", 75, 65, false, 50},
		{"missing", 75, 65, false, 50},
	} {
		dates := tc.dates
		for seed := range uint64(300) {
			rng := rand.New(rand.NewPCG(seed, 7))
			l := &cursorList{clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), size: tc.size}
			pageSize := cmp.Or(tc.size, wix.MaxPageSize)
			for range 1 + rng.IntN(6) { // batches of up to 1.5 pages, each on one date
				l.join(1+rng.IntN(pageSize*3/2), dates != "distinct")
			}
			if dates == "missing" {
				for i := range l.entries {
					l.entries[i].joined = time.Time{}
				}
			}
			start := l.ids()
			gone := map[string]bool{}
			taken := map[string]int{}
			var c offsetCursor
			var trace []string
			for reads := 0; ; reads++ {
				if reads > 200 {
					t.Fatalf("%s seed %d: still paging after %d reads: %v", dates, seed, reads, trace)
				}
				page, n, more := l.page(c.at(true))
				at := c.at(true)
				fresh, done, err := c.advance(page, n, more, true, "g")
				if err != nil {
					t.Fatalf("%s seed %d: %v (%v)", dates, seed, err, trace)
				}
				trace = append(trace, fmt.Sprintf("at %d: %d fresh", at, len(fresh)))
				for _, f := range fresh {
					taken[f.ID]++
				}
				if done {
					break
				}
				// Churn between two reads: leaves before the next offset
				// (they move the rest up), anywhere, and joins.
				if rng.IntN(3) == 0 {
					var pos []int
					for range rng.IntN(tc.maxLeave) {
						if len(l.entries) > 0 {
							pos = append(pos, rng.IntN(min(len(l.entries), c.Offset+1)))
						}
					}
					for _, p := range pos {
						if p < len(l.entries) {
							gone[l.entries[len(l.entries)-1-p].ID] = true
						}
					}
					l.leave(pos...)
					trace = append(trace, fmt.Sprintf("%d leave", len(pos)))
				}
				if rng.IntN(3) == 0 {
					k := rng.IntN(tc.maxJoin)
					ids := l.join(k, false)
					if dates == "missing" {
						for i := len(l.entries) - k; i < len(l.entries); i++ {
							l.entries[i].joined = time.Time{}
						}
					}
					for _, id := range ids {
						gone[id] = true // not present from the start
					}
					trace = append(trace, fmt.Sprintf("%d join", k))
				}
			}
			var missed, twice []string
			for _, id := range start {
				if !gone[id] && taken[id] == 0 {
					missed = append(missed, id)
				}
			}
			for id, k := range taken {
				if k > 1 {
					twice = append(twice, id)
				}
			}
			slices.Sort(twice)
			if len(missed) > 0 || (tc.exact && len(twice) > 0) {
				t.Errorf("%s %d/%d, %d a page, seed %d (%d members): %d missed %v, %d taken twice %v; %v", dates, tc.maxLeave, tc.maxJoin, tc.size, seed, len(start), len(missed), missed, len(twice), twice, trace)
			}
		}
	}
}

// campaignListPages is the number of List Group Members calls of a campaign
// over a group of m members that does not change: the first page brings
// 100 members, every later one (read one member early, at the last member
// of the page before) 99, and an empty group costs one call. When Wix
// gives the total, the page that reaches it is the last one.
func campaignListPages(m int) int64 {
	if m <= wix.MaxPageSize {
		return 1
	}
	return 1 + int64((m-wix.MaxPageSize+wix.MaxPageSize-2)/(wix.MaxPageSize-1))
}

func TestCampaignListPages(t *testing.T) {
	for m, want := range map[int]int64{0: 1, 1: 1, 100: 1, 101: 2, 199: 2, 200: 3, 250: 3, 297: 3, 298: 3, 299: 4, 300: 4, 1000: 11} {
		if got := campaignListPages(m); got != want {
			t.Errorf("campaignListPages(%d) = %d, want %d", m, got, want)
		}
	}
}
