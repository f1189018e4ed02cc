package wix

import (
	"context"
	"iter"
)

// Chunk splits s into consecutive slices of at most n elements (n <= 0
// means one chunk). The chunks share s's backing array but cannot append
// into each other.
func Chunk[T any](s []T, n int) [][]T {
	if len(s) == 0 {
		return nil
	}
	if n <= 0 || n >= len(s) {
		return [][]T{s[:len(s):len(s)]}
	}
	out := make([][]T, 0, (len(s)+n-1)/n)
	for i := 0; i < len(s); i += n {
		j := min(i+n, len(s))
		out = append(out, s[i:j:j])
	}
	return out
}

// MorePages decides whether offset paging continues after a page of got
// items requested with limit, now at next offset. A counted total decides
// (a short page before it is a Wix serving fewer than limit a page: the
// rest still follows, and a roster resolved from a cut listing would
// leave people unresolved, whom a sync would then remove); without one, a
// short page is the last.
func MorePages(got, limit, next int, m PagingMetadata) bool {
	switch {
	case got == 0:
		return false
	case m.Total > 0 && !m.TooManyToCount:
		return next < m.Total
	}
	return got >= limit
}

// offsetPages streams offset-paged results from start: fetch gets one page
// and returns it with its item count and paging metadata. It stops at the
// metadata's total (without one, after a short page), after an empty page,
// on the first error (yielded), or when the consumer stops.
func offsetPages[P any](start Paging, fetch func(Paging) (P, int, PagingMetadata, error)) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		p := start
		for {
			page, n, md, err := fetch(p)
			if err != nil {
				var zero P
				yield(zero, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			p.Offset += n
			if !MorePages(n, p.Limit, p.Offset, md) {
				return
			}
		}
	}
}

// startPaging is where a query's page iteration starts: its offset, and its
// limit when below the maximum page size.
func startPaging(q *Paging) Paging {
	p := Paging{Limit: MaxPageSize}
	if q != nil {
		p.Offset = max(q.Offset, 0)
		if q.Limit > 0 && q.Limit < MaxPageSize {
			p.Limit = q.Limit
		}
	}
	return p
}

// GroupMemberPages streams a group's members page by page (100 per page)
// from startOffset. It stops after a short page, at Metadata.Total, on the
// first error (yielded), or when the consumer stops.
func (s *Site) GroupMemberPages(ctx context.Context, groupID string, startOffset int) iter.Seq2[*GroupMembersPage, error] {
	return offsetPages(Paging{Limit: MaxPageSize, Offset: max(startOffset, 0)}, func(p Paging) (*GroupMembersPage, int, PagingMetadata, error) {
		page, err := s.ListGroupMembers(ctx, groupID, p)
		if err != nil {
			return nil, 0, PagingMetadata{}, err
		}
		return page, len(page.Members), page.Metadata, nil
	})
}

// GroupPages streams the groups matching q page by page with QueryGroups.
// Paging starts at q.Paging.Offset with q.Paging.Limit (default and max
// 100); it stops as GroupMemberPages does.
func (s *Site) GroupPages(ctx context.Context, q Query) iter.Seq2[*GroupsPage, error] {
	return offsetPages(startPaging(q.Paging), func(p Paging) (*GroupsPage, int, PagingMetadata, error) {
		pq := q
		pq.Paging = &p
		page, err := s.QueryGroups(ctx, pq)
		if err != nil {
			return nil, 0, PagingMetadata{}, err
		}
		return page, len(page.Groups), page.Metadata, nil
	})
}

// MemberPages streams the site members matching q page by page with
// QueryMembers (same paging rules as GroupPages).
func (s *Site) MemberPages(ctx context.Context, q MembersQuery) iter.Seq2[*MembersPage, error] {
	return offsetPages(startPaging(q.Paging), func(p Paging) (*MembersPage, int, PagingMetadata, error) {
		pq := q
		pq.Paging = &p
		page, err := s.QueryMembers(ctx, pq)
		if err != nil {
			return nil, 0, PagingMetadata{}, err
		}
		return page, len(page.Members), page.Metadata, nil
	})
}

// ListGroupPages streams every group with ListGroups (default sort
// createdDate DESC) page by page, 100 a page: ⌈G/100⌉ calls for G groups
// (one for none). It stops as GroupMemberPages does.
func (s *Site) ListGroupPages(ctx context.Context) iter.Seq2[*GroupsPage, error] {
	return offsetPages(Paging{Limit: MaxPageSize}, func(p Paging) (*GroupsPage, int, PagingMetadata, error) {
		page, err := s.ListGroups(ctx, p)
		if err != nil {
			return nil, 0, PagingMetadata{}, err
		}
		return page, len(page.Groups), page.Metadata, nil
	})
}
