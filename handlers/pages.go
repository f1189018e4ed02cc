package handlers

import (
	"fmt"

	"groupflow/internal/failure"
)

// maxIdlePages bounds the pages in a row of one listing (group members,
// site members, contacts, groups) that name nothing not listed before while
// Wix says more follow: a Wix that answers the same page at every offset is
// read that often, not for ever, and the command fails (permanent).
const maxIdlePages = 10

// maxListedIDs bounds the distinct ids one listing holds (~100 MB; 10,000
// pages, 50 minutes of one site's 200 calls a minute): a Wix naming fresh
// ids on every page while it says more follow is read that far, not for
// ever, and the command fails (permanent).
const maxListedIDs = 1_000_000

// idlePages tells the pages of one listing that bring nothing new apart,
// and fails the listing after maxIdlePages of them in a row. It holds the
// ids seen (what names the listing in the error).
type idlePages struct {
	what string
	seen map[string]bool
	idle int
	new  bool // the page being read listed an id for the first time
	over bool // an id beyond maxListedIDs was listed (not held)
}

func newIdlePages(what string) *idlePages { return &idlePages{what: what, seen: map[string]bool{}} }

// fresh reports whether id is listed for the first time, and notes it
// (beyond maxListedIDs it is not held, and end fails the listing).
func (p *idlePages) fresh(id string) bool {
	if p.seen[id] {
		return false
	}
	if len(p.seen) >= maxListedIDs {
		p.over = true
		return false
	}
	p.seen[id], p.new = true, true
	return true
}

// end closes a page whose ids went through fresh: a permanent error when
// the listing named more than maxListedIDs ids, or when the page is the
// maxIdlePages-th in a row without one listed for the first time.
func (p *idlePages) end() error {
	if p.over {
		return failure.Permanent(fmt.Errorf("%s: more than %d distinct ids listed while Wix said more follow", p.what, maxListedIDs))
	}
	if p.new {
		p.idle, p.new = 0, false
		return nil
	}
	p.idle++
	if p.idle >= maxIdlePages {
		return failure.Permanent(fmt.Errorf("%s: %d pages in a row named nothing not listed before while Wix said more follow: its paging does not advance", p.what, p.idle))
	}
	return nil
}

// page is fresh for each of the n ids of one page (id(i) the i-th), then
// end.
func (p *idlePages) page(n int, id func(int) string) error {
	for i := range n {
		p.fresh(id(i))
	}
	return p.end()
}
