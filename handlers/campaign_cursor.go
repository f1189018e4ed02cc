package handlers

import (
	"fmt"
	"time"

	"groupflow/internal/failure"
)

// offsetCursor pages one group's list by offset while the group changes
// under the campaign. Its fields live in the campaign's checkpoint
// (campaignState embeds it), so a resumed attempt pages on where the last
// one stopped.
//
// List Group Members is ordered (joinedDate DESC, a stable order), and a
// member who joins comes first, so a page is a contiguous stretch of that
// order and members present for the whole campaign keep their order.
// Joiners push the members already read down the list; members who leave
// pull the members after them up, past the next offset. So the cursor reads
// each page one member early (at Offset-1, the last member of the page
// before, the tail) and compares the page with Recent, the ids of the page
// taken before:
//
//   - A page naming a Recent id: everything up to its last Recent id is
//     read already (or joined since, before it); everything after follows
//     the page before without a gap. It takes those. Exact, join dates or
//     not.
//   - No Recent id, every member joined after Tail (the tail's joinedDate):
//     100 or more members joined between two reads and pushed the tail
//     past this page, which holds members read on earlier pages or
//     joiners. It moves on (the next page), takes nothing, keeps Recent.
//   - No Recent id, some joined after Tail and none on Tail's date: every
//     member of the page before left, and this page spans the tail's place.
//     It takes the members who joined before Tail.
//   - Otherwise (the page lies after the tail, or join dates tie or are
//     missing): members left and opened a gap. It steps back a page
//     (offset-99, so the pages touch) to look for a Recent id, at most
//     maxCampaignStepBacks times, then takes the page as it is (not the
//     Recent ids, not the members who joined after Tail): the old
//     behaviour, which can miss members; at offset 0 it takes it at once.
//
// Cost in Wix calls: ⌈(m−1)/99⌉ pages (at least 1) for m members instead
// of ⌈m/100⌉ (every page after the first brings 99 new members; one more
// call per 9,900 members), plus one call per step back (one per ≤99
// members who left before the page boundary between two reads) and one per
// page passed (per 99 joins beyond 99 between two reads).
//
// Unordered lists (List Answers documents no order and has no join dates)
// are read as before: at Offset, skipping the Recent ids (members pushed
// down by joiners); a member who leaves can make the campaign miss one.
type offsetCursor struct {
	// Offset is the position after the last page taken: the next read is
	// at Offset-1 (ordered) or Offset.
	Offset int `json:"offset"`
	// Recent holds the member ids of the last page taken (single group;
	// several groups: of the group being collected).
	Recent []string `json:"recent,omitempty"`
	// Tail is the joinedDate of Recent's last member (nil: unknown).
	Tail *time.Time `json:"tail,omitempty"`
	// Back counts the step-backs since the last page taken.
	Back int `json:"back,omitempty"`
	// Stalled counts the consecutive full pages of one group that brought
	// no member the previous page had not: a Wix answering the same page
	// whatever the offset, without a total, would page for ever.
	Stalled int `json:"stalled,omitempty"`
	// Idle counts the reads in a row that brought no member to take while
	// Wix says more follow: see maxCampaignIdleReads.
	Idle int `json:"idle,omitempty"`
}

// maxCampaignStepBacks bounds the step-backs looking for the last page
// taken: up to ~10×99 members who leave before the page boundary between
// two reads are not missed. Only a gap costs step-backs (and, without join
// dates, ≥100 joins between two reads: 10 calls wasted, then the old
// behaviour).
const maxCampaignStepBacks = 10

// maxCampaignStalledPages is how many full pages in a row that repeat the
// page before (only members read already) a campaign reads before it gives
// up: three in a row is a Wix that ignores the offset.
const maxCampaignStalledPages = 3

// maxCampaignIdleReads bounds the reads in a row that bring no member to
// take while Wix says more follow (step-backs, pages passed, pages whose
// members were all read already): each is ~99 joins between two reads or a
// leave's gap, so 100 in a row is a Wix whose paging makes no progress. One
// that answers the first page again past an offset cap, and says more
// follow, was read for ever, a Wix call each, the campaign never ending nor
// failing: its pages are not the page before, so Stalled never counts them.
const maxCampaignIdleReads = 100

// at is the offset of the next read.
func (c *offsetCursor) at(ordered bool) int {
	if ordered {
		return max(0, c.Offset-1)
	}
	return c.Offset
}

// advance folds in page, the n entries Wix answered at at(ordered) (more:
// Wix says more follow), and returns the members to take, each once, and
// whether the group is done. group names the group in a permanent failure,
// among them maxCampaignIdleReads reads in a row that brought nothing.
func (c *offsetCursor) advance(page []campaignCandidate, n int, more, ordered bool, group string) (fresh []campaignCandidate, done bool, err error) {
	o := c.at(ordered)
	fresh, done, err = c.step(page, n, more, ordered, group)
	if err != nil || done || len(fresh) > 0 {
		c.Idle = 0
		return fresh, done, err
	}
	if c.Idle++; c.Idle >= maxCampaignIdleReads {
		return nil, false, failure.Permanent(fmt.Errorf("list group members of %s: %d reads in a row (offset %d) brought no member not read already, and Wix says more follow: its paging makes no progress",
			group, c.Idle, o))
	}
	return nil, false, nil
}

// step is advance but for the count of reads that brought nothing.
func (c *offsetCursor) step(page []campaignCandidate, n int, more, ordered bool, group string) (fresh []campaignCandidate, done bool, err error) {
	o := c.at(ordered)
	onPage := make(map[string]bool, len(page))
	cands := make([]campaignCandidate, 0, len(page))
	for _, cand := range page {
		if !onPage[cand.ID] { // named twice in one answer: one member
			onPage[cand.ID] = true
			cands = append(cands, cand)
		}
	}
	recent := make(map[string]bool, len(c.Recent))
	for _, id := range c.Recent {
		recent[id] = true
	}
	repeat := true // every member on the page is in Recent
	for _, cand := range cands {
		repeat = repeat && recent[cand.ID]
	}
	notRecent := func(from int, tail *time.Time) []campaignCandidate {
		var out []campaignCandidate
		for _, cand := range cands[from:] {
			if !recent[cand.ID] && (tail == nil || cand.joined.IsZero() || !cand.joined.After(*tail)) {
				out = append(out, cand)
			}
		}
		return out
	}
	if !ordered || len(c.Recent) == 0 {
		return c.take(cands, repeat, notRecent(0, nil), o, n, more, group)
	}
	last := -1
	for i, cand := range cands {
		if recent[cand.ID] {
			last = i
		}
	}
	if last >= 0 {
		return c.take(cands, repeat, cands[last+1:], o, n, more, group)
	}
	if c.Tail != nil && len(cands) > 0 {
		newer, tied, dated := 0, 0, true
		for _, cand := range cands {
			switch {
			case cand.joined.IsZero():
				dated = false
			case cand.joined.After(*c.Tail):
				newer++
			case cand.joined.Equal(*c.Tail):
				tied++
			}
		}
		switch {
		case dated && newer == len(cands): // joiners only: the members read come later
			c.Offset, c.Stalled = o+n, 0
			return nil, !more, nil
		case dated && newer > 0 && tied == 0: // the page before left; this one spans its place
			return c.take(cands, repeat, notRecent(0, c.Tail), o, n, more, group)
		}
	}
	if o > 0 && c.Back < maxCampaignStepBacks {
		// Read the page ending where this one starts: at o-99 when Wix
		// serves 100 a page; a Wix serving fewer steps back by its page
		// (this read's, or the last page taken's; never more than it
		// serves), or the step would leave a gap.
		span := max(n, len(c.Recent), 2)
		c.Back++
		c.Offset = max(0, o-(span-1)) + 1
		return nil, false, nil
	}
	return c.take(cands, repeat, notRecent(0, c.Tail), o, n, more, group)
}

// take records cands (the distinct members of the page read at o, n
// entries) as the last page taken when it brought fresh members, counts in
// Stalled a full page that only repeats Recent, and returns fresh. A page
// without fresh members keeps Recent: its last member is not the last
// member read (joiners, then members read, ending before the tail).
func (c *offsetCursor) take(cands []campaignCandidate, repeat bool, fresh []campaignCandidate, o, n int, more bool, group string) ([]campaignCandidate, bool, error) {
	if len(fresh) > 0 {
		c.Recent = c.Recent[:0]
		for _, cand := range cands {
			c.Recent = append(c.Recent, cand.ID)
		}
		c.Tail = nil
		if j := cands[len(cands)-1].joined; !j.IsZero() {
			c.Tail = &j
		}
	}
	c.Offset, c.Back = o+n, 0
	if more && repeat {
		c.Stalled++
	} else {
		c.Stalled = 0
	}
	if c.Stalled >= maxCampaignStalledPages {
		return nil, false, failure.Permanent(fmt.Errorf("list group members of %s: %d pages in a row (offset %d) repeat the page before and Wix says more follow: its paging makes no progress",
			group, c.Stalled, o))
	}
	return fresh, !more, nil
}
