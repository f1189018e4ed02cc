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

// idlePages tells the pages of one listing that bring nothing new apart,
// and fails the listing after maxIdlePages of them in a row. It holds the
// ids seen (what names the listing in the error).
type idlePages struct {
	what string
	seen map[string]bool
	idle int
}

func newIdlePages(what string) *idlePages { return &idlePages{what: what, seen: map[string]bool{}} }

// page takes the ids of one page (n of them, id(i) the i-th) and returns a
// permanent error when it is the maxIdlePages-th in a row without an id not
// seen before.
func (p *idlePages) page(n int, id func(int) string) error {
	fresh := false
	for i := range n {
		if k := id(i); !p.seen[k] {
			p.seen[k] = true
			fresh = true
		}
	}
	if fresh {
		p.idle = 0
		return nil
	}
	p.idle++
	if p.idle >= maxIdlePages {
		return failure.Permanent(fmt.Errorf("%s: %d pages in a row named nothing not listed before while Wix said more follow: its paging does not advance", p.what, p.idle))
	}
	return nil
}
