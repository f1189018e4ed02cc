// Package ops answers operators' read-only questions to a running
// processor: the progress of the commands it works on, and which groups a
// site has (discovery). The answers travel over core NATS request/reply
// (Serve; Client is groupctl's side) and the admin HTTP API (package admin).
// Discovery goes through the processor's Wix client, so its calls wait on
// the site's limiter like any command's.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"groupflow/internal/wix"
)

// Bounds of one discovery answer.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	// MaxScan bounds the groups read by one list (⌈MaxScan/100⌉ pages).
	MaxScan = 5000
	// MaxShowMatches bounds the groups of one name listed by Show.
	MaxShowMatches = 10
	// maxIdleFindPages bounds the Query Groups pages in a row of Show's
	// name search that bring no group not listed before while Wix says
	// more follow (a Wix answering the same page at every offset).
	maxIdleFindPages = 10
)

// Sites resolves a site id to its Wix client (the processor's).
type Sites interface {
	Site(siteID string) (*wix.Site, error)
}

// Discovery lists and shows a site's groups, read-only.
type Discovery struct {
	Sites       Sites
	DefaultSite string
	// inWork counts the requests holding a slot (Admit).
	inWork atomic.Int32
}

// Admit takes one of the MaxDiscoveryInWork slots of d's requests, shared
// by every way of asking (the ops subjects, the admin API): each costs Wix
// calls from the budget commands share. ok is false, and nothing taken,
// when all are in use; release gives the slot back.
func (d *Discovery) Admit() (release func(), ok bool) {
	if d.inWork.Add(1) > MaxDiscoveryInWork {
		d.inWork.Add(-1)
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { d.inWork.Add(-1) }) }, true
}

// ListRequest asks for the groups of a site.
type ListRequest struct {
	SiteID string `json:"siteId,omitempty"`
	// Prefix keeps the groups whose name starts with it (case-insensitive).
	Prefix string `json:"prefix,omitempty"`
	// WithQuestions / WithRules keep the groups having membership
	// questions / rules (one Wix call per group scanned for each).
	WithQuestions bool `json:"withQuestions,omitempty"`
	WithRules     bool `json:"withRules,omitempty"`
	// Limit bounds the groups answered (default DefaultListLimit, at most MaxListLimit).
	Limit int `json:"limit,omitempty"`
}

// Group is one group as discovery reports it.
type Group struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Slug          string `json:"slug,omitempty"`
	PrivacyStatus string `json:"privacyStatus,omitempty"`
	MembersCount  int    `json:"membersCount"`
	// Questions and Rules are counted when asked for (nil: not read).
	Questions *int `json:"questions,omitempty"`
	Rules     *int `json:"rules,omitempty"`
}

// ListReply answers a ListRequest.
type ListReply struct {
	SiteID string  `json:"siteId"`
	Groups []Group `json:"groups"`
	// Truncated: more groups matched than Limit (or than MaxScan were read).
	Truncated bool  `json:"truncated,omitempty"`
	WixCalls  int64 `json:"wixCalls"`
}

// ShowRequest asks for one group by id or exact name.
type ShowRequest struct {
	SiteID string `json:"siteId,omitempty"`
	Group  string `json:"group"`
}

// GroupDetail is a group with its questions and rules.
type GroupDetail struct {
	Group
	Description  string                   `json:"description,omitempty"`
	QuestionList []wix.MembershipQuestion `json:"questionList"`
	RuleList     []wix.GroupRule          `json:"ruleList"`
}

// ShowReply answers a ShowRequest: the group, or the groups of that name
// when several share it (Group nil then).
type ShowReply struct {
	SiteID   string       `json:"siteId"`
	Group    *GroupDetail `json:"group,omitempty"`
	Matches  []Group      `json:"matches,omitempty"`
	WixCalls int64        `json:"wixCalls"`
}

// ErrNoGroup is returned by Show when no group has that id or name.
var ErrNoGroup = errors.New("no group with this id or name")

func (d *Discovery) site(id string) (*wix.Site, string, error) {
	if id == "" {
		id = d.DefaultSite
	}
	s, err := d.Sites.Site(id)
	return s, id, err
}

// List returns the site's groups matching req, oldest first. Cost:
// ⌈scanned/100⌉ Query Groups, plus one List Membership Questions and/or one
// List Rules per group scanned when req asks for them.
func (d *Discovery) List(ctx context.Context, req ListRequest) (*ListReply, error) {
	site, siteID, err := d.site(req.SiteID)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var calls wix.CallCounter
	ctx = wix.WithCallCounter(ctx, &calls)
	out := &ListReply{SiteID: siteID, Groups: []Group{}}
	q := wix.Query{Sort: []wix.Sort{{FieldName: "createdDate", Order: "ASC"}}, Paging: &wix.Paging{Limit: wix.MaxPageSize}}
	if req.Prefix != "" {
		q.Filter = map[string]any{"title": map[string]any{"$startsWith": req.Prefix}}
	}
	scanned, seen, idle := 0, map[string]bool{}, 0
	for page, err := range site.GroupPages(ctx, q) {
		if err != nil {
			return nil, fmt.Errorf("query groups: %w", err)
		}
		idle++
		for _, g := range page.Groups {
			if seen[g.ID] {
				continue // named again on a later page: one group
			}
			seen[g.ID], idle = true, 0
			if scanned++; scanned > MaxScan || len(out.Groups) == limit {
				out.Truncated = true
				out.WixCalls = calls.Load()
				return out, nil
			}
			if !strings.HasPrefix(strings.ToLower(g.Name), strings.ToLower(req.Prefix)) {
				continue
			}
			item, keep, err := d.annotate(ctx, site, g, req)
			if err != nil {
				return nil, err
			}
			if keep {
				out.Groups = append(out.Groups, item)
			}
		}
		// As Show's name search (find): maxIdleFindPages pages in a row
		// without a new group end the list.
		if idle >= maxIdleFindPages {
			return nil, fmt.Errorf("query groups: %d pages in a row named no group not listed before while Wix said more follow: its paging does not advance", idle)
		}
	}
	out.WixCalls = calls.Load()
	return out, nil
}

// annotate counts g's questions and rules when req asks, and says whether
// g passes req's filters.
func (d *Discovery) annotate(ctx context.Context, site *wix.Site, g wix.Group, req ListRequest) (Group, bool, error) {
	item := summary(g)
	if req.WithQuestions {
		qs, err := site.ListMembershipQuestions(ctx, g.ID)
		if err != nil {
			return item, false, err
		}
		n := len(qs)
		item.Questions = &n
		if n == 0 {
			return item, false, nil
		}
	}
	if req.WithRules {
		rs, err := site.ListRules(ctx, g.ID)
		if err != nil {
			return item, false, err
		}
		n := len(rs)
		item.Rules = &n
		if n == 0 {
			return item, false, nil
		}
	}
	return item, true, nil
}

func summary(g wix.Group) Group {
	return Group{ID: g.ID, Name: g.Name, Slug: g.Slug, PrivacyStatus: g.PrivacyStatus, MembersCount: g.MembersCount}
}

// Show returns the group whose id, else exact name, is req.Group, with its
// questions and rules. Cost: 1 Get Group (by id) or ⌈n/100⌉ Query Groups
// (by name), then 2 calls (questions, rules); ErrNoGroup if none.
func (d *Discovery) Show(ctx context.Context, req ShowRequest) (*ShowReply, error) {
	site, siteID, err := d.site(req.SiteID)
	if err != nil {
		return nil, err
	}
	var calls wix.CallCounter
	ctx = wix.WithCallCounter(ctx, &calls)
	out := &ShowReply{SiteID: siteID}
	defer func() { out.WixCalls = calls.Load() }()
	g, matches, err := find(ctx, site, req.Group)
	if err != nil {
		return nil, err
	}
	if g == nil {
		for i, m := range matches {
			if i == MaxShowMatches {
				break
			}
			out.Matches = append(out.Matches, summary(m))
		}
		return out, nil
	}
	det := &GroupDetail{Group: summary(*g), Description: g.Description}
	if det.QuestionList, err = site.ListMembershipQuestions(ctx, g.ID); err != nil {
		return nil, err
	}
	if det.RuleList, err = site.ListRules(ctx, g.ID); err != nil {
		return nil, err
	}
	nq, nr := len(det.QuestionList), len(det.RuleList)
	det.Questions, det.Rules = &nq, &nr
	out.Group = det
	return out, nil
}

// find looks ref up as an id (when it looks like one), then as an exact
// name: the group, or the several groups of that name (g nil), or
// ErrNoGroup.
func find(ctx context.Context, site *wix.Site, ref string) (g *wix.Group, matches []wix.Group, err error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, nil, errors.New("give a group id or name")
	}
	var refused error // a 400 on ref as an id, reported if no name matches
	if looksLikeID(ref) {
		g, err := site.GetGroup(ctx, ref)
		if err == nil {
			return g, nil, nil
		}
		// Not found, or not an id Wix takes (the SDK gives every groupId
		// the GUID format: a name like "2024-2025" is refused with a
		// 400): then it is a name. A 400 that no name explains is
		// Wix's refusal, returned rather than ErrNoGroup.
		switch wix.StatusOf(err) {
		case http.StatusNotFound:
		case http.StatusBadRequest:
			refused = fmt.Errorf("get group: %w", err)
		default:
			return nil, nil, fmt.Errorf("get group: %w", err)
		}
	}
	q := wix.Query{Filter: map[string]any{"title": map[string]any{"$eq": ref}},
		Sort: []wix.Sort{{FieldName: "createdDate", Order: "ASC"}}, Paging: &wix.Paging{Limit: wix.MaxPageSize}}
	seen, idle := map[string]bool{}, 0
	for page, err := range site.GroupPages(ctx, q) {
		if err != nil {
			return nil, nil, fmt.Errorf("query groups by name: %w", err)
		}
		fresh := false
		for _, m := range page.Groups {
			if seen[m.ID] {
				continue // named again on a later page: one group
			}
			seen[m.ID], fresh = true, true
			if m.Name == ref {
				matches = append(matches, m)
			}
		}
		// Offset paging reads past a short page while Wix's total says
		// more follow: a Wix repeating its pages is read
		// maxIdleFindPages times in a row, not until the request ends.
		if idle = idle + 1; fresh {
			idle = 0
		}
		if idle >= maxIdleFindPages {
			return nil, nil, fmt.Errorf("query groups by name: %d pages in a row named no group not listed before while Wix said more follow: its paging does not advance", idle)
		}
		if len(matches) > MaxShowMatches {
			break
		}
	}
	switch len(matches) {
	case 0:
		if refused != nil {
			return nil, nil, refused
		}
		return nil, nil, ErrNoGroup
	case 1:
		return &matches[0], nil, nil
	}
	return nil, matches, nil
}

// looksLikeID reports whether s could be a Wix GUID (hex digits and dashes).
func looksLikeID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}
