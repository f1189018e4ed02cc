package wix

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// maxFieldsets is the Members API limit on fieldsets per call.
const maxFieldsets = 3

type membersQueryBody struct {
	Query struct {
		Filter  map[string]any `json:"filter,omitempty"`
		Paging  *Paging        `json:"paging,omitempty"`
		Sorting []Sort         `json:"sorting,omitempty"`
	} `json:"query"`
	Fieldsets []string       `json:"fieldsets,omitempty"`
	Search    *MembersSearch `json:"search,omitempty"`
}

// QueryMembers queries site members (POST /members/v1/members/query). Use
// FieldsetFull to get emails and phones; phone is not filterable.
func (s *Site) QueryMembers(ctx context.Context, q MembersQuery) (*MembersPage, error) {
	if err := checkPaging(q.Paging); err != nil {
		return nil, fmt.Errorf("query members: %w", err)
	}
	if len(q.Fieldsets) > maxFieldsets {
		return nil, fmt.Errorf("query members: %w", invalid("%d fieldsets, max %d", len(q.Fieldsets), maxFieldsets))
	}
	var body membersQueryBody
	body.Query.Filter, body.Query.Paging, body.Query.Sorting = q.Filter, q.Paging, q.Sorting
	body.Fieldsets, body.Search = q.Fieldsets, q.Search
	var out MembersPage
	if err := s.do(ctx, call{op: OpMembersQuery, method: http.MethodPost, path: membersQueryPath, body: body, out: &out}); err != nil {
		return nil, fmt.Errorf("query members: %w", err)
	}
	return &out, nil
}

// GetMember returns one site member (GET /members/v1/members/{id}); pass
// FieldsetFull for emails and phones.
func (s *Site) GetMember(ctx context.Context, memberID string, fieldsets ...string) (*Member, error) {
	if err := requireID("member id", memberID); err != nil {
		return nil, fmt.Errorf("get member: %w", err)
	}
	if len(fieldsets) > maxFieldsets {
		return nil, fmt.Errorf("get member %s: %w", memberID, invalid("%d fieldsets, max %d", len(fieldsets), maxFieldsets))
	}
	var q url.Values
	if len(fieldsets) > 0 {
		q = url.Values{"fieldsets": fieldsets}
	}
	var out struct {
		Member *Member `json:"member"`
	}
	err := s.do(ctx, call{op: OpMembersGet, method: http.MethodGet, path: membersPath + "/" + url.PathEscape(memberID), query: q, out: &out})
	if err != nil {
		return nil, fmt.Errorf("get member %s: %w", memberID, err)
	}
	if out.Member == nil {
		return &Member{}, nil
	}
	return out.Member, nil
}

type subscriptionsQueryBody struct {
	Filter map[string]any `json:"filter"`
	Paging *Paging        `json:"paging,omitempty"`
}

// QueryEmailSubscriptions returns the subscription records of up to
// MaxInValues emails (top-level filter {"email": {"$in": [...]}}). Emails
// without a record are absent from the page: treat them as StatusNotSet
// (SubscriptionsPage.Status does). No emails is a no-op without a call.
func (s *Site) QueryEmailSubscriptions(ctx context.Context, emails []string, p Paging) (*SubscriptionsPage, error) {
	if err := checkIDs("emails", emails, MaxInValues); err != nil {
		return nil, fmt.Errorf("query email subscriptions: %w", err)
	}
	if err := checkPaging(&p); err != nil {
		return nil, fmt.Errorf("query email subscriptions: %w", err)
	}
	if len(emails) == 0 {
		return &SubscriptionsPage{}, nil
	}
	body := subscriptionsQueryBody{Filter: map[string]any{"email": map[string]any{"$in": emails}}}
	if p != (Paging{}) {
		body.Paging = &p
	}
	var out struct {
		SubscriptionsPage
		Legacy []EmailSubscription `json:"email_subscriptions"`
	}
	err := s.do(ctx, call{op: OpSubscriptionsQuery, method: http.MethodPost, path: subscriptionsQuery, body: body, out: &out})
	if err != nil {
		return nil, fmt.Errorf("query email subscriptions (%d emails): %w", len(emails), err)
	}
	page := out.SubscriptionsPage
	if page.Subscriptions == nil {
		page.Subscriptions = out.Legacy
	}
	return &page, nil
}

type contactsQueryBody struct {
	Query Query `json:"query"`
}

// FieldContactE164Phone is the Contacts v4 filter field holding a contact's
// phones in E.164 form. info.phones.phone holds them as entered ("(212)
// 555-0142") and matches only that text.
const FieldContactE164Phone = "info.phones.e164Phone"

// QueryContacts queries contacts (POST /contacts/v4/contacts/query), e.g.
// {FieldContactE164Phone: {"$in": [...]}} to resolve phones, and flattens them.
func (s *Site) QueryContacts(ctx context.Context, q Query) (*ContactsPage, error) {
	if err := checkPaging(q.Paging); err != nil {
		return nil, fmt.Errorf("query contacts: %w", err)
	}
	var out struct {
		Contacts       []Contact       `json:"contacts"`
		PagingMetadata *PagingMetadata `json:"pagingMetadata"`
		Metadata       *PagingMetadata `json:"metadata"`
	}
	err := s.do(ctx, call{op: OpContactsQuery, method: http.MethodPost, path: contactsQueryPath, body: contactsQueryBody{Query: q}, out: &out})
	if err != nil {
		return nil, fmt.Errorf("query contacts: %w", err)
	}
	page := &ContactsPage{Contacts: out.Contacts}
	if m := firstNonNil(out.PagingMetadata, out.Metadata); m != nil {
		page.Metadata = *m
	}
	return page, nil
}
