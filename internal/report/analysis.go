package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/natsname"
	"groupflow/internal/netsafe"
	"groupflow/messages"
)

// Profile is what a site's configuration says about it for people: its
// name, its public URL (groups link to <URL>/group/<slug>), its time zone
// (IANA) and who receives its reports by mail.
type Profile struct {
	Name       string
	URL        string
	TimeZone   string
	Recipients []string
}

// Profiles looks a site's profile up by id (the zero Profile when unknown).
type Profiles func(siteID string) Profile

// CheckProfile validates a configured profile: an http(s) URL without user
// info, a known IANA time zone, valid recipient addresses. Its errors name
// the URL without a password or token (netsafe.RedactURL).
func CheckProfile(p Profile) error {
	if p.URL != "" {
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fmt.Errorf("site url %q: want http(s)://host[/path] without user info", netsafe.RedactURL(p.URL))
		}
	}
	if msg := messages.TimeZoneProblem(p.TimeZone); msg != "" {
		return fmt.Errorf("site time zone %q %s", p.TimeZone, msg)
	}
	for _, r := range p.Recipients {
		if !messages.ValidEmail(r) {
			return fmt.Errorf("report recipient %q is not an email address", r)
		}
	}
	return nil
}

// GroupURL is a group's page on the site: <siteURL>/group/<slug>, the slug
// path-escaped; "" without a site URL or a slug.
func GroupURL(siteURL, slug string) string {
	if siteURL == "" || slug == "" {
		return ""
	}
	return strings.TrimRight(siteURL, "/") + "/group/" + url.PathEscape(slug)
}

// Thresholds of the report's flags.
type Thresholds struct {
	IdleDays   int // a large group idle for at least this many days is flagged
	LargeGroup int // from this many members a group is large
	SmallGroup int // groups with fewer members are flagged
}

// ThresholdsOf applies the defaults (messages.Default*) to a command's values.
func ThresholdsOf(c *messages.GenerateReport) Thresholds {
	return Thresholds{
		IdleDays:   cmp.Or(c.IdleDays, messages.DefaultFlagIdleDays),
		LargeGroup: cmp.Or(c.LargeGroup, messages.DefaultLargeGroup),
		SmallGroup: cmp.Or(c.SmallGroup, messages.DefaultSmallGroup),
	}
}

// IdleDaysSince is the whole days from the last activity (else the
// creation) to now; 0 when neither is known or it is in the future.
func IdleDaysSince(now time.Time, last, created time.Time) int {
	ref := last
	if ref.IsZero() {
		ref = created
	}
	if ref.IsZero() || !now.After(ref) {
		return 0
	}
	return int(now.Sub(ref) / (24 * time.Hour))
}

// Flag lists the groups needing attention, each once (never active before
// large idle before small), in the order of groups.
func Flag(groups []messages.ReportGroup, now time.Time, th Thresholds) []messages.ReportFlag {
	var out []messages.ReportFlag
	for _, g := range groups {
		days := IdleDaysSince(now, g.LastActivity, g.CreatedDate)
		if neverActive(g) {
			days = IdleDaysSince(now, time.Time{}, g.CreatedDate)
		}
		f := messages.ReportFlag{GroupID: g.GroupID, Name: g.Name, MembersCount: g.MembersCount, IdleDays: days}
		switch {
		case neverActive(g) && days >= 7:
			f.Kind = messages.FlagNeverActive
			f.Action = fmt.Sprintf("Created %d days ago and never used: post a welcome message, or delete the group.", days)
		case g.MembersCount >= th.LargeGroup && days >= th.IdleDays:
			f.Kind = messages.FlagLargeIdle
			f.Action = fmt.Sprintf("%d members and no activity for %d days: ask an admin to post, or archive it.", g.MembersCount, days)
		case g.MembersCount < th.SmallGroup:
			f.Kind = messages.FlagSmall
			f.Action = fmt.Sprintf("Only %d member(s): invite people, or merge it with a similar group.", g.MembersCount)
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

// neverActive: a group whose last activity is unknown or its creation
// (Wix sets lastActivityDate when a group is created).
func neverActive(g messages.ReportGroup) bool {
	if g.CreatedDate.IsZero() {
		return false
	}
	return g.LastActivity.IsZero() || !g.LastActivity.After(g.CreatedDate.Add(time.Minute))
}

// Compare sets MemberChange and New on groups from the previous report's
// groups and returns the changes (every added and removed group; the
// caller bounds them for the event with messages.MaxChangeRows).
func Compare(prev *messages.ReportGenerated, groups []messages.ReportGroup) *messages.ReportChanges {
	before := make(map[string]messages.ReportGroup, len(prev.Groups))
	for _, g := range prev.Groups {
		before[g.GroupID] = g
	}
	ch := &messages.ReportChanges{PreviousReportID: prev.CommandID, PreviousAt: prev.GeneratedAt}
	seen := make(map[string]bool, len(groups))
	for i := range groups {
		g := &groups[i]
		seen[g.GroupID] = true
		old, ok := before[g.GroupID]
		if !ok {
			g.New, g.MemberChange = true, 0
			ch.Added = append(ch.Added, messages.GroupStat{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount})
			ch.MemberChange += g.MembersCount
			continue
		}
		g.MemberChange = g.MembersCount - old.MembersCount
		ch.MemberChange += g.MemberChange
	}
	for _, g := range prev.Groups {
		if !seen[g.GroupID] {
			ch.Removed = append(ch.Removed, messages.GroupStat{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount})
			ch.MemberChange -= g.MembersCount
		}
	}
	ch.AddedTotal, ch.RemovedTotal = len(ch.Added), len(ch.Removed)
	return ch
}

// BoundChanges returns a copy of ch whose Added and Removed keep their
// first messages.MaxChangeRows entries (the totals count all).
func BoundChanges(ch *messages.ReportChanges) *messages.ReportChanges {
	if ch == nil {
		return nil
	}
	c := *ch
	c.Added = c.Added[:min(len(c.Added), messages.MaxChangeRows):min(len(c.Added), messages.MaxChangeRows)]
	c.Removed = c.Removed[:min(len(c.Removed), messages.MaxChangeRows):min(len(c.Removed), messages.MaxChangeRows)]
	if len(c.Added) == 0 {
		c.Added = nil
	}
	if len(c.Removed) == 0 {
		c.Removed = nil
	}
	return &c
}

// SortGroups orders groups largest first, then by name and id.
func SortGroups(gs []messages.ReportGroup) {
	slices.SortStableFunc(gs, func(a, b messages.ReportGroup) int {
		return cmp.Or(cmp.Compare(b.MembersCount, a.MembersCount), strings.Compare(a.Name, b.Name), strings.Compare(a.GroupID, b.GroupID))
	})
}

// ---- the per-site pointer to the latest all-groups report ----

// pointer is the object "latest-<sha256 of the site id>.json" in the
// reports bucket: the site's latest all-groups report.
type pointer struct {
	ReportID    string    `json:"reportId"`
	GeneratedAt time.Time `json:"generatedAt"`
}

// PointerName is the object name of a site's latest-report pointer.
func PointerName(siteID string) string { return "latest-" + natsname.Digest(siteID) + ".json" }

// Latest returns the id of the site's latest all-groups report, "" when
// there is none. Cost: one object store read, no Wix call.
func Latest(ctx context.Context, js jetstream.JetStream, siteID string) (string, time.Time, error) {
	// Bounded like Store: a reply lost in a failover is a retried error.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	b, err := store.GetBytes(ctx, PointerName(siteID))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("load report pointer: %w", err)
	}
	var p pointer
	if err := json.Unmarshal(b, &p); err != nil {
		return "", time.Time{}, fmt.Errorf("report pointer: %w", err)
	}
	return p.ReportID, p.GeneratedAt, nil
}

// Previous loads the stored JSON of report id (nil for ""): the report a
// new one is compared with.
func Previous(ctx context.Context, js jetstream.JetStream, id string) (*messages.ReportGenerated, error) {
	if id == "" {
		return nil, nil
	}
	b, err := Load(ctx, js, id, FormatJSON)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // the pointer outlived its report: compare with nothing
	}
	if err != nil {
		return nil, err
	}
	var r messages.ReportGenerated
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("previous report %s: %w", id, err)
	}
	return &r, nil
}

// SetLatest points the site's pointer at report id unless it already
// points at a report generated later (a retried or late older report does
// not move it back).
func SetLatest(ctx context.Context, js jetstream.JetStream, siteID, id string, at time.Time) error {
	cur, curAt, err := Latest(ctx, js, siteID)
	if err != nil {
		return err
	}
	if cur == id || (cur != "" && curAt.After(at)) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	b, _ := json.Marshal(pointer{ReportID: id, GeneratedAt: at})
	if _, err := store.PutBytes(ctx, PointerName(siteID), b); err != nil {
		return fmt.Errorf("store report pointer: %w", err)
	}
	return nil
}
