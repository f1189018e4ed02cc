package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/events"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/trace"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// SendCampaign handles send_campaign: it selects the subscribed members of
// the campaign's groups (audience "all", or "interest" by membership
// answers) and publishes one member_selected event per member, then returns
// campaign_completed.
//
// Flow (Wix "bulk email" sample flow): List Group Members (100 a page) or,
// for interest audiences, List Answers (100 a page) → Query Members
// {"id": {"$in": ids}} with the FULL fieldset (100 ids a call) → Query Email
// Subscriptions {"email": {"$in": emails}} (100 emails a call) → SUBSCRIBED
// only. Member and subscription queries are only sent full (100) except the
// last of each. Group member pages overlap by one member (offsetCursor: a
// member who leaves mid-campaign must not make the campaign miss another),
// so a campaign over a group of m members with e emails that does not
// change costs exactly max(1, ⌈(m−1)/99⌉) + ⌈m/100⌉ + ⌈e/100⌉ calls.
//
// Memory: a single-group campaign streams (at most ~200 members held at
// once, whatever the group size). A campaign over several groups must dedupe
// members and list every group of a member in its event, so it first lists
// every group, keeping ids only (plus two 128-bit sets per member), then
// streams the union.
//
// Exactly once: progress is checkpointed in the ledger after every Wix call
// (source position, the ≤ 2×100 members waiting for the next member or
// subscription query, totals). Before publishing a batch of selected members
// the batch is saved with the events stream's last sequence and the time; a
// resumed attempt republishes a pending batch as is while the stream's
// duplicate window surely covers it (JetStream drops the duplicates), and
// otherwise first scans the stream from that sequence for this campaign's
// member_selected ids and publishes only the missing ones.
type SendCampaign struct {
	sites Sites
	pub   *events.Publisher
	js    jetstream.JetStream
	log   *zap.Logger

	// dedupeWindow, when > 0, replaces the events stream's configured
	// duplicate window in the resume decision.
	dedupeWindow time.Duration
	// campaignBeforePublish is a test hook called before each member_selected
	// publish; an error aborts the attempt as a crash would.
	campaignBeforePublish func(memberID string) error
	// campaignNoScan disables the stream scan (tests prove the scan matters).
	campaignNoScan bool
	// callTimeout bounds each JetStream API call on the events stream
	// (default ledger.CallTimeout).
	callTimeout time.Duration
}

// NewSendCampaign returns the send_campaign handler.
func NewSendCampaign(sites Sites, pub *events.Publisher, js jetstream.JetStream, log *zap.Logger) *SendCampaign {
	if log == nil {
		log = zap.NewNop()
	}
	return &SendCampaign{sites: sites, pub: pub, js: js, log: log.Named("send_campaign"), callTimeout: ledger.CallTimeout}
}

// WithDedupeWindow overrides the events stream's duplicate window used to
// decide whether a pending batch may simply be republished (0 reads the
// stream's configuration). It returns h.
func (h *SendCampaign) WithDedupeWindow(d time.Duration) *SendCampaign {
	h.dedupeWindow = d
	return h
}

// CommandType implements runtime.TypedHandler.
func (h *SendCampaign) CommandType() string { return messages.CmdSendCampaign }

const (
	campaignStateStep = "campaign"
	campaignChunk     = wix.MaxInValues // ids per member query, emails per subscription query
)

// campaignCandidate is a member waiting for its member query.
type campaignCandidate struct {
	ID string       `json:"id"`
	G  campaignBits `json:"g"` // indexes into GroupIDs
	K  campaignBits `json:"k"` // matched keywords (interest)
	// joined is the member's joinedDate (zero: unknown), for the cursor
	// only: never saved.
	joined time.Time
}

// campaignRecipient is a member with an email, waiting for its
// subscription query or being published.
type campaignRecipient struct {
	ID        string       `json:"id"`
	ContactID string       `json:"c,omitempty"`
	Email     string       `json:"e"`
	First     string       `json:"f,omitempty"`
	Last      string       `json:"l,omitempty"`
	G         campaignBits `json:"g"`
	K         campaignBits `json:"k"`
}

// campaignBatch is a batch of selected members being published.
type campaignBatch struct {
	// Seq is the events stream's last sequence before the first publish.
	Seq uint64 `json:"seq"`
	// At is when publishing started.
	At      time.Time           `json:"at"`
	Members []campaignRecipient `json:"members"`
}

type campaignTotals struct {
	Seen       int            `json:"seen"`
	Selected   int            `json:"selected"`
	NoEmail    int            `json:"noEmail"`
	Unsub      int            `json:"unsubscribed"`
	NotMatched int            `json:"notMatched"`
	NotSub     map[string]int `json:"notSubscribed,omitempty"`
	Already    int            `json:"alreadySelected,omitempty"`
}

// campaignState is the checkpoint of a campaign, saved after every step.
type campaignState struct {
	// Group and the cursor (Offset, Recent, Tail, Back, Stalled): where
	// the next page is read (single group: the stream source; several
	// groups: the collect phase, in group Group).
	Group int `json:"group"`
	offsetCursor
	// Pages counts the id pages saved by the collect phase (several groups).
	Pages     int  `json:"pages"`
	Collected bool `json:"collected"`
	// Pos is the next index in the union (several groups).
	Pos        int                 `json:"pos"`
	SourceDone bool                `json:"sourceDone"`
	Pending    []campaignCandidate `json:"pending,omitempty"`
	Buffer     []campaignRecipient `json:"buffer,omitempty"`
	Batch      *campaignBatch      `json:"batch,omitempty"`
	Totals     campaignTotals      `json:"totals"`
	// NoQuestions lists the groups of an interest campaign without
	// membership questions (nothing to match).
	NoQuestions []string `json:"noQuestions,omitempty"`
}

type campaignRun struct {
	h     *SendCampaign
	cmd   *runtime.Command
	c     *messages.SendCampaign
	site  *wix.Site
	steps *ledger.Lease
	st    campaignState
	match *campaignMatcher
	union []campaignCandidate
	log   *zap.Logger
	// batchAlready counts the members of the batch in work that a repeated
	// campaign's earlier command selected already.
	batchAlready int
	// batchRepeated counts the members of the batch in work that an earlier
	// batch of this command selected already (Wix named them twice).
	batchRepeated int
}

// Handle implements runtime.TypedHandler.
func (h *SendCampaign) Handle(ctx context.Context, cmd *runtime.Command, c *messages.SendCampaign) (messages.Event, error) {
	site, err := h.sites.Site(cmd.SiteID)
	if err != nil {
		return nil, err
	}
	r := &campaignRun{
		h: h, cmd: cmd, c: c, site: site,
		steps: cmd.Checkpoints(),
		log:   trace.Logger(ctx, h.log),
	}
	if c.Audience.Type == messages.AudienceInterest {
		r.match = newCampaignMatcher(c.Audience)
	}
	if _, err := r.steps.Load(ctx, campaignStateStep, &r.st); err != nil {
		return nil, err
	}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	t := r.st.Totals
	audience := c.Audience.Type
	if audience == "" {
		audience = messages.AudienceAll
	}
	return &messages.CampaignCompleted{
		EventMeta:    cmd.EventMeta(),
		CampaignID:   c.CampaignID,
		GroupIDs:     c.GroupIDs,
		AudienceType: audience,
		MembersSeen:  t.Seen,
		Selected:     t.Selected,

		AlreadySelected: t.Already, GroupsWithoutQuestions: r.st.NoQuestions,
		Skipped: messages.Skipped{
			NoEmail: t.NoEmail, NotSubscribed: t.NotSub, Unsubscribed: t.Unsub, NotMatched: t.NotMatched,
		},
		WixCalls: r.steps.Calls(),
	}, nil
}

func (r *campaignRun) save(ctx context.Context) error {
	r.reportProgress(ctx)
	return r.steps.Checkpoint(ctx, campaignStateStep, &r.st)
}

func (r *campaignRun) run(ctx context.Context) error {
	if r.st.Batch != nil {
		if err := r.resumeBatch(ctx); err != nil {
			return err
		}
	}
	if len(r.c.GroupIDs) > 1 {
		if err := r.collect(ctx); err != nil {
			return err
		}
	}
	for {
		var err error
		switch {
		case campaignDistinctEmails(r.st.Buffer, campaignChunk) >= campaignChunk ||
			(r.st.SourceDone && len(r.st.Pending) == 0 && len(r.st.Buffer) > 0):
			err = r.subscriptions(ctx)
		case len(r.st.Pending) >= campaignChunk || (r.st.SourceDone && len(r.st.Pending) > 0):
			err = r.members(ctx)
		case !r.st.SourceDone:
			err = r.next(ctx)
		default:
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// next reads the next source page into Pending.
func (r *campaignRun) next(ctx context.Context) error {
	if len(r.c.GroupIDs) > 1 {
		end := min(r.st.Pos+campaignChunk, len(r.union))
		for _, cand := range r.union[r.st.Pos:end] {
			r.st.Totals.Seen++
			if r.match != nil && !r.match.selected(cand.K) {
				r.st.Totals.NotMatched++
				continue
			}
			r.st.Pending = append(r.st.Pending, cand)
		}
		r.st.Pos = end
		r.st.SourceDone = r.st.Pos >= len(r.union)
		return r.save(ctx)
	}
	ordered := r.match == nil // List Answers documents no order
	page, n, more, err := r.readPage(ctx, 0, r.st.at(ordered))
	if err != nil {
		return err
	}
	fresh, done, err := r.st.advance(page, n, more, ordered, r.c.GroupIDs[0])
	if err != nil {
		return err
	}
	for _, cand := range fresh {
		r.st.Totals.Seen++
		if r.match != nil && !r.match.selected(cand.K) {
			r.st.Totals.NotMatched++
			continue
		}
		r.st.Pending = append(r.st.Pending, cand)
	}
	r.st.SourceDone = done
	return r.save(ctx)
}

// readPage reads one page of group gi from offset: group members (audience
// all) or answers (interest). n is the number of entries Wix answered; more
// reports whether another page follows.
func (r *campaignRun) readPage(ctx context.Context, gi, offset int) (out []campaignCandidate, n int, more bool, err error) {
	groupID := r.c.GroupIDs[gi]
	var g campaignBits
	g.set(gi)
	var md wix.PagingMetadata
	if r.match == nil {
		p, err := r.site.ListGroupMembers(ctx, groupID, wix.Paging{Limit: wix.MaxPageSize, Offset: offset})
		if err != nil {
			return nil, 0, false, err // names the call and the group
		}
		out = make([]campaignCandidate, 0, len(p.Members))
		for _, m := range p.Members {
			if m.MemberID != "" {
				c := campaignCandidate{ID: m.MemberID, G: g}
				if m.JoinedDate != nil {
					c.joined = *m.JoinedDate
				}
				out = append(out, c)
			}
		}
		md, n = p.Metadata, len(p.Members)
	} else {
		p, err := r.site.ListAnswers(ctx, groupID, nil, wix.Paging{Limit: wix.MaxPageSize, Offset: offset})
		if err != nil {
			return nil, 0, false, err // names the call and the group
		}
		out = make([]campaignCandidate, 0, len(p.MemberAnswers))
		for _, ma := range p.MemberAnswers {
			if ma.MemberID != "" {
				out = append(out, campaignCandidate{ID: ma.MemberID, G: g, K: r.match.match(ma.Answers)})
			}
		}
		md, n = p.Metadata, len(p.MemberAnswers)
		if err := r.noteNoAnswers(ctx, gi, offset, n); err != nil {
			return nil, 0, false, err
		}
	}
	next := offset + n
	expectCampaignCalls(ctx, md.Total, next)
	// A counted total decides (a Wix serving fewer than 100 a page has more
	// after a short page); without one, a short page is the last.
	return out, n, wix.MorePages(n, wix.MaxPageSize, next, md), nil
}

// collect lists every group (several groups): each page of ids is saved in
// the ledger, so a resumed attempt rebuilds the union without calling Wix
// again. It leaves the union, in order of first appearance, in r.union.
func (r *campaignRun) collect(ctx context.Context) error {
	idx := map[string]int{}
	add := func(page []campaignCandidate) {
		for _, c := range page {
			if i, ok := idx[c.ID]; ok {
				r.union[i].G = r.union[i].G.or(c.G)
				r.union[i].K = r.union[i].K.or(c.K)
				continue
			}
			idx[c.ID] = len(r.union)
			r.union = append(r.union, c)
		}
	}
	for p := 0; p < r.st.Pages; p++ {
		var page []campaignCandidate
		ok, err := r.steps.Load(ctx, campaignPageStep(p), &page)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("campaign checkpoint: page %d missing", p)
		}
		add(page)
	}
	ordered := r.match == nil // List Answers documents no order
	for !r.st.Collected {
		page, n, more, err := r.readPage(ctx, r.st.Group, r.st.at(ordered))
		if err != nil {
			return err
		}
		fresh, done, err := r.st.advance(page, n, more, ordered, r.c.GroupIDs[r.st.Group])
		if err != nil {
			return err
		}
		if len(fresh) > 0 { // a page stepped back from or passed saves none
			if err := r.steps.Checkpoint(ctx, campaignPageStep(r.st.Pages), fresh); err != nil {
				return err
			}
			add(fresh)
			r.st.Pages++
		}
		if done {
			r.st.Group++
			r.st.offsetCursor = offsetCursor{} // the next group starts afresh
			r.st.Collected = r.st.Group >= len(r.c.GroupIDs)
		}
		if err := r.save(ctx); err != nil {
			return err
		}
	}
	return nil
}

func campaignPageStep(n int) string { return fmt.Sprintf("campaign-page-%d", n) }

// members resolves the first ≤100 pending ids with Query Members (FULL).
func (r *campaignRun) members(ctx context.Context) error {
	n := min(len(r.st.Pending), campaignChunk)
	chunk := r.st.Pending[:n]
	ids := make([]string, n)
	for i, c := range chunk {
		ids[i] = c.ID
	}
	page, err := r.site.QueryMembers(ctx, wix.MembersQuery{
		Filter:    map[string]any{"id": map[string]any{"$in": ids}},
		Paging:    &wix.Paging{Limit: wix.MaxPageSize},
		Fieldsets: []string{wix.FieldsetFull},
	})
	if err != nil {
		return fmt.Errorf("query members: %w", err)
	}
	byID := make(map[string]*wix.Member, len(page.Members))
	for i := range page.Members {
		byID[page.Members[i].ID] = &page.Members[i]
	}
	for _, c := range chunk {
		m := byID[c.ID]
		email := ""
		if m != nil {
			email = strings.TrimSpace(m.Email())
		}
		if email == "" { // no address (or the member is gone)
			r.st.Totals.NoEmail++
			continue
		}
		r.st.Buffer = append(r.st.Buffer, campaignRecipient{
			ID: c.ID, ContactID: m.ContactID, Email: email,
			First: m.Contact.FirstName, Last: m.Contact.LastName, G: c.G, K: c.K,
		})
	}
	r.st.Pending = append([]campaignCandidate(nil), r.st.Pending[n:]...)
	return r.save(ctx)
}

// campaignDistinctEmails counts distinct emails (case-insensitive) among
// the first recipients, stopping at limit.
func campaignDistinctEmails(rs []campaignRecipient, limit int) int {
	seen := make(map[string]struct{}, min(len(rs), limit))
	for _, r := range rs {
		seen[strings.ToLower(r.Email)] = struct{}{}
		if len(seen) >= limit {
			break
		}
	}
	return len(seen)
}

// subscriptions checks the subscription of the first ≤100 distinct emails
// of the buffer and publishes the SUBSCRIBED members.
func (r *campaignRun) subscriptions(ctx context.Context) error {
	seen := map[string]struct{}{}
	var emails []string
	n := 0
	for _, rc := range r.st.Buffer {
		k := strings.ToLower(rc.Email)
		if _, ok := seen[k]; !ok {
			if len(emails) == campaignChunk {
				break
			}
			seen[k] = struct{}{}
			emails = append(emails, rc.Email)
		}
		n++
	}
	page, err := r.site.QueryEmailSubscriptions(ctx, emails, wix.Paging{Limit: wix.MaxPageSize})
	if err != nil {
		return fmt.Errorf("query email subscriptions: %w", err)
	}
	var selected []campaignRecipient
	for _, rc := range r.st.Buffer[:n] {
		switch s := page.Status(rc.Email); s {
		case wix.StatusSubscribed:
			selected = append(selected, rc)
		case wix.StatusUnsubscribed:
			r.st.Totals.Unsub++
		default:
			if r.st.Totals.NotSub == nil {
				r.st.Totals.NotSub = map[string]int{}
			}
			r.st.Totals.NotSub[s]++
		}
	}
	r.st.Buffer = append([]campaignRecipient(nil), r.st.Buffer[n:]...)
	if len(selected) == 0 {
		return r.save(ctx)
	}
	seq, err := r.h.eventsLastSeq(ctx)
	if err != nil {
		return err
	}
	r.st.Batch = &campaignBatch{Seq: seq, At: time.Now().UTC(), Members: selected}
	if err := r.save(ctx); err != nil {
		return err
	}
	return r.publishBatch(ctx, nil)
}

// resumeBatch finishes a batch an earlier attempt started publishing.
func (r *campaignRun) resumeBatch(ctx context.Context) error {
	b := r.st.Batch
	window, err := r.h.window(ctx)
	if err != nil {
		return err
	}
	elapsed := time.Since(b.At)
	if elapsed >= 0 && elapsed < window*3/4 {
		// Every event of the batch was published after b.At, so the stream
		// still drops a duplicate id: republish the whole batch.
		r.log.Info("resuming campaign batch inside the duplicate window", zap.Int("members", len(b.Members)), zap.Duration("elapsed", elapsed))
		return r.publishBatch(ctx, nil)
	}
	var done map[string]bool
	if !r.h.campaignNoScan {
		if done, err = r.h.scanPublished(ctx, b.Seq, r.c.CampaignID, b.Members); err != nil {
			return err
		}
	}
	r.log.Info("resuming campaign batch after the duplicate window: scanned the events stream",
		zap.Int("members", len(b.Members)), zap.Int("already_published", len(done)), zap.Duration("elapsed", elapsed))
	return r.publishBatch(ctx, done)
}

// publishBatch publishes the batch's members not in skip, then records the
// batch as done.
func (r *campaignRun) publishBatch(ctx context.Context, skip map[string]bool) error {
	b := r.st.Batch
	r.batchAlready, r.batchRepeated = 0, 0
	for _, m := range b.Members {
		if skip[m.ID] {
			continue
		}
		if f := r.h.campaignBeforePublish; f != nil {
			if err := f(m.ID); err != nil {
				return err
			}
		}
		if err := r.publish(ctx, m); err != nil {
			return err
		}
	}
	r.st.Totals.Selected += len(b.Members) - r.batchAlready - r.batchRepeated
	r.st.Totals.Already += r.batchAlready
	r.st.Totals.Seen -= r.batchRepeated // counted when Wix named them the first time
	r.st.Batch = nil
	return r.save(ctx)
}

// publish sends one member_selected event. The campaign's content is
// spliced into the body as received, byte for byte (encoding/json would
// compact and HTML-escape a json.RawMessage).
func (r *campaignRun) publish(ctx context.Context, m campaignRecipient) error {
	evt := &messages.MemberSelected{
		EventMeta:       r.cmd.EventMeta(),
		CampaignID:      r.c.CampaignID,
		MemberID:        m.ID,
		ContactID:       m.ContactID,
		Email:           m.Email,
		FirstName:       m.First,
		LastName:        m.Last,
		GroupIDs:        campaignPick(r.c.GroupIDs, m.G),
		MatchedKeywords: campaignPick(r.c.Audience.Keywords, m.K),
	}
	if r.match == nil {
		evt.MatchedKeywords = nil
	}
	msg, err := r.h.pub.Message(ctx, evt)
	if err != nil {
		return err
	}
	if len(r.c.Content) > 0 {
		body := msg.Payload
		if len(body) < 2 || body[len(body)-1] != '}' {
			return errors.New("member_selected: unexpected encoding")
		}
		out := make([]byte, 0, len(body)+len(r.c.Content)+12)
		out = append(out, body[:len(body)-1]...)
		out = append(out, `,"content":`...)
		out = append(out, r.c.Content...)
		out = append(out, '}')
		msg.Payload = out
	}
	return r.publishSelected(ctx, msg)
}
