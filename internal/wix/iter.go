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

// morePages decides whether offset paging continues after a page of got
// items requested with limit, now at next offset.
func morePages(got, limit, next int, m PagingMetadata) bool {
	if got == 0 || got < limit {
		return false
	}
	return m.TooManyToCount || m.Total <= 0 || next < m.Total
}

// GroupMemberPages streams a group's members page by page (100 per page)
// from startOffset. It stops after a short page, at Metadata.Total, on the
// first error (yielded), or when the consumer stops.
func (s *Site) GroupMemberPages(ctx context.Context, groupID string, startOffset int) iter.Seq2[*GroupMembersPage, error] {
	return func(yield func(*GroupMembersPage, error) bool) {
		off := max(startOffset, 0)
		for {
			page, err := s.ListGroupMembers(ctx, groupID, Paging{Limit: MaxPageSize, Offset: off})
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			off += len(page.Members)
			if !morePages(len(page.Members), MaxPageSize, off, page.Metadata) {
				return
			}
		}
	}
}

// GroupPages streams the groups matching q page by page with QueryGroups.
// Paging starts at q.Paging.Offset with q.Paging.Limit (default and max
// 100); it stops as GroupMemberPages does.
func (s *Site) GroupPages(ctx context.Context, q Query) iter.Seq2[*GroupsPage, error] {
	return func(yield func(*GroupsPage, error) bool) {
		p := Paging{Limit: MaxPageSize}
		if q.Paging != nil {
			p.Offset = max(q.Paging.Offset, 0)
			if q.Paging.Limit > 0 && q.Paging.Limit < MaxPageSize {
				p.Limit = q.Paging.Limit
			}
		}
		for {
			pq := q
			pp := p
			pq.Paging = &pp
			page, err := s.QueryGroups(ctx, pq)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			p.Offset += len(page.Groups)
			if !morePages(len(page.Groups), p.Limit, p.Offset, page.Metadata) {
				return
			}
		}
	}
}

// MemberPages streams the site members matching q page by page with
// QueryMembers (same paging rules as GroupPages).
func (s *Site) MemberPages(ctx context.Context, q MembersQuery) iter.Seq2[*MembersPage, error] {
	return func(yield func(*MembersPage, error) bool) {
		p := Paging{Limit: MaxPageSize}
		if q.Paging != nil {
			p.Offset = max(q.Paging.Offset, 0)
			if q.Paging.Limit > 0 && q.Paging.Limit < MaxPageSize {
				p.Limit = q.Paging.Limit
			}
		}
		for {
			pq := q
			pp := p
			pq.Paging = &pp
			page, err := s.QueryMembers(ctx, pq)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			p.Offset += len(page.Members)
			if !morePages(len(page.Members), p.Limit, p.Offset, page.Metadata) {
				return
			}
		}
	}
}
