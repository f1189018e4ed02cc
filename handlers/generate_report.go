package handlers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/failure"
	"groupflow/internal/report"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// GenerateReport handles generate_report (Wix "analytics" sample flow):
// List Groups with limit 1 for metadata.total, Query Groups sorted by
// membersCount DESC for the top groups and by recentActivityDate ASC for the
// idle ones (100 a page, stopping as soon as enough rows are read, or at the
// first group active within IdleDays). It costs 1 + ⌈top/100⌉ + ⌈idle/100⌉
// calls at most. With allGroups it lists every group instead (List Groups,
// 100 a page) and takes the top and idle rows from that list: ⌈G/100⌉
// calls for G groups (1 for none), and compares the list with the site's
// previous all-groups report (found through report.Latest; no Wix call).
// The data read, and the previous report's id, are checkpointed in the
// ledger, so a retry (e.g. the object store was unavailable) neither calls
// Wix again nor compares with another report. The report is rendered
// (internal/report) as HTML, CSV and JSON, stored in the reports object
// store under "<command id>.<format>", the site's pointer moved to it
// (allGroups), and returned as report_generated naming the objects.
type GenerateReport struct {
	sites    Sites
	js       jetstream.JetStream
	log      *zap.Logger
	now      func() time.Time
	profiles report.Profiles
}

// WithProfiles sets where site names, URLs, time zones and report
// recipients come from (default: none known) and returns h.
func (h *GenerateReport) WithProfiles(p report.Profiles) *GenerateReport {
	h.profiles = p
	return h
}

// NewGenerateReport returns the generate_report handler.
func NewGenerateReport(sites Sites, js jetstream.JetStream, log *zap.Logger) *GenerateReport {
	if log == nil {
		log = zap.NewNop()
	}
	return &GenerateReport{sites: sites, js: js, log: log.Named("generate_report"), now: time.Now}
}

// CommandType implements runtime.TypedHandler.
func (h *GenerateReport) CommandType() string { return messages.CmdGenerateReport }

const reportDataStep = "report-data"

// reportData is the checkpoint of the Wix reads.
type reportData struct {
	GeneratedAt time.Time            `json:"generatedAt"`
	Total       int                  `json:"total"`
	Top         []messages.GroupStat `json:"top"`
	Idle        []messages.IdleGroup `json:"idle"`
	// Groups (allGroups) and the previous report compared with.
	Groups     []messages.ReportGroup `json:"groups,omitempty"`
	PreviousID string                 `json:"previousId,omitempty"`
}

// Handle implements runtime.TypedHandler.
func (h *GenerateReport) Handle(ctx context.Context, cmd *runtime.Command, c *messages.GenerateReport) (messages.Event, error) {
	steps := cmd.Checkpoints()
	var d reportData
	found, err := steps.Load(ctx, reportDataStep, &d)
	if err != nil {
		return nil, err
	}
	if !found {
		if d, err = h.read(ctx, cmd.SiteID, c); err != nil {
			return nil, err
		}
		if err := steps.Checkpoint(ctx, reportDataStep, &d); err != nil {
			return nil, err
		}
	}
	evt, err := h.event(ctx, cmd, c, d)
	if err != nil {
		return nil, err
	}
	htmlData, csvData, jsonData, err := report.Render(evt)
	if err != nil {
		return nil, err
	}
	if evt.Objects, err = report.Store(ctx, h.js, cmd.ID, htmlData, csvData, jsonData); err != nil {
		return nil, err
	}
	if c.AllGroups {
		if err := report.SetLatest(ctx, h.js, cmd.SiteID, cmd.ID, d.GeneratedAt); err != nil {
			return nil, err
		}
	}
	evt.Changes = report.BoundChanges(evt.Changes)
	return evt, nil
}

// event builds the report from the data read: the site's profile, the
// comparison with the previous report, the flags.
func (h *GenerateReport) event(ctx context.Context, cmd *runtime.Command, c *messages.GenerateReport, d reportData) (*messages.ReportGenerated, error) {
	var p report.Profile
	if h.profiles != nil {
		p = h.profiles(cmd.SiteID)
	}
	evt := &messages.ReportGenerated{
		EventMeta:   cmd.EventMeta(),
		GeneratedAt: d.GeneratedAt,
		TotalGroups: d.Total,
		Top:         d.Top,
		Idle:        d.Idle,
		IdleDays:    c.IdleDays,
		Objects:     report.Objects(cmd.ID),
		WixCalls:    cmd.Checkpoints().Calls(),
		Site:        messages.ReportSite{Name: p.Name, URL: p.URL, TimeZone: cmp.Or(c.TimeZone, p.TimeZone, "UTC")},
		AllGroups:   c.AllGroups,
		Groups:      slices.Clone(d.Groups),
		Recipients:  p.Recipients,
	}
	flagOn := evt.Groups
	if c.AllGroups {
		prev, err := report.Previous(ctx, h.js, d.PreviousID)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			evt.Changes = report.Compare(prev, evt.Groups)
		}
	} else {
		flagOn = idleAsGroups(d.Idle, d.GeneratedAt)
	}
	evt.Flags = report.Flag(flagOn, d.GeneratedAt, report.ThresholdsOf(c))
	return evt, nil
}

// idleAsGroups turns idle rows into groups to flag: a row without activity
// is taken as created IdleDays ago (the read counted its idle days from
// its creation).
func idleAsGroups(idle []messages.IdleGroup, now time.Time) []messages.ReportGroup {
	out := make([]messages.ReportGroup, 0, len(idle))
	for _, g := range idle {
		rg := messages.ReportGroup{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount, LastActivity: g.LastActivity}
		if g.LastActivity.IsZero() && g.IdleDays > 0 {
			rg.CreatedDate = now.Add(-time.Duration(g.IdleDays) * 24 * time.Hour)
		}
		out = append(out, rg)
	}
	return out
}

// read makes the report's Wix calls.
func (h *GenerateReport) read(ctx context.Context, siteID string, c *messages.GenerateReport) (reportData, error) {
	site, err := h.sites.Site(siteID)
	if err != nil {
		return reportData{}, err
	}
	now := h.now().UTC()
	d := reportData{GeneratedAt: now}
	if c.AllGroups {
		if d.PreviousID, _, err = report.Latest(ctx, h.js, siteID); err != nil {
			return reportData{}, err
		}
		if err := h.readAll(ctx, site, c, &d); err != nil {
			return reportData{}, err
		}
		return d, nil
	}

	first, err := site.ListGroups(ctx, wix.Paging{Limit: 1})
	if err != nil {
		return reportData{}, fmt.Errorf("list groups: %w", err)
	}
	d.Total = first.Metadata.Total
	if d.Total == 0 && first.Metadata.Count == 0 {
		d.Total = len(first.Groups)
	}

	top := c.Top
	if top <= 0 {
		top = messages.DefaultReportTop
	}
	if d.Total > 0 || first.Metadata.TooManyToCount {
		err = reportPages(ctx, site, "membersCount", "DESC", func(g *wix.Group) bool {
			d.Top = append(d.Top, messages.GroupStat{GroupID: g.ID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount})
			return len(d.Top) < top
		})
		if err != nil {
			return reportData{}, err
		}
	}

	idle := c.Idle
	if idle <= 0 {
		idle = messages.DefaultReportIdle
	}
	if d.Total > 0 || first.Metadata.TooManyToCount {
		err = reportPages(ctx, site, "recentActivityDate", "ASC", func(g *wix.Group) bool {
			row := messages.IdleGroup{GroupID: g.ID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount}
			ref := g.LastActivityDate
			if ref != nil {
				row.LastActivity = ref.UTC()
			} else {
				ref = g.CreatedDate // no activity known: idle since creation
			}
			if ref != nil && now.After(*ref) {
				row.IdleDays = int(now.Sub(*ref) / (24 * time.Hour))
			}
			if c.IdleDays > 0 && ref != nil && row.IdleDays < c.IdleDays {
				return false // sorted oldest activity first: every later group is more recent
			}
			d.Idle = append(d.Idle, row)
			return len(d.Idle) < idle
		})
		if err != nil {
			return reportData{}, err
		}
	}
	return d, nil
}

// reportPages runs Query Groups sorted on field (the sample bodies of the
// Wix docs, 100 a page) and hands every group to fn, once (a group a later
// page names again, the sort field having changed between the pages or an
// odd Wix repeating it, is skipped: one group, one row), until fn returns
// false. maxIdlePages pages in a row without a new group fail the command
// (permanent).
func reportPages(ctx context.Context, site *wix.Site, field, order string, fn func(*wix.Group) bool) error {
	q := wix.Query{Sort: []wix.Sort{{FieldName: field, Order: order}}, Paging: &wix.Paging{Limit: wix.MaxPageSize}}
	idle := newIdlePages("query groups by " + field)
	for page, err := range site.GroupPages(ctx, q) {
		if err != nil {
			return fmt.Errorf("query groups by %s: %w", field, err)
		}
		for i := range page.Groups {
			if id := page.Groups[i].ID; !idle.fresh(id) && id != "" {
				continue
			}
			if !fn(&page.Groups[i]) {
				return nil
			}
		}
		if err := idle.end(); err != nil {
			return err
		}
	}
	return nil
}

// readAll lists every group (⌈G/100⌉ List Groups calls) and derives the
// top and idle rows from the list. A group named again on a later page is
// skipped, so maxReportGroups does not bound a Wix repeating its pages:
// maxIdlePages pages in a row without a new group fail the command
// (permanent), as a total that says more follow keeps the paging going
// past a short page.
func (h *GenerateReport) readAll(ctx context.Context, site *wix.Site, c *messages.GenerateReport, d *reportData) error {
	var siteURL string
	if h.profiles != nil {
		siteURL = h.profiles(site.ID()).URL
	}
	idle := newIdlePages("list groups")
	for page, err := range site.ListGroupPages(ctx) {
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		for _, g := range page.Groups {
			if !idle.fresh(g.ID) && g.ID != "" {
				continue // named again on a later page: one group, one row
			}
			if len(d.Groups) >= maxReportGroups {
				return failure.Permanent(fmt.Errorf("list groups: more than %d groups; a report with allGroups covers at most that many", maxReportGroups))
			}
			d.Groups = append(d.Groups, reportGroup(&g, siteURL))
		}
		if err := idle.end(); err != nil {
			return err
		}
	}
	report.SortGroups(d.Groups)
	d.Total = len(d.Groups)
	for _, g := range d.Groups[:min(len(d.Groups), c.Top)] {
		d.Top = append(d.Top, messages.GroupStat{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount})
	}
	byIdle := slices.Clone(d.Groups)
	slices.SortStableFunc(byIdle, func(a, b messages.ReportGroup) int {
		return cmp.Compare(report.IdleDaysSince(d.GeneratedAt, b.LastActivity, b.CreatedDate), report.IdleDaysSince(d.GeneratedAt, a.LastActivity, a.CreatedDate))
	})
	for _, g := range byIdle {
		days := report.IdleDaysSince(d.GeneratedAt, g.LastActivity, g.CreatedDate)
		if len(d.Idle) >= c.Idle || (c.IdleDays > 0 && days < c.IdleDays) {
			break
		}
		d.Idle = append(d.Idle, messages.IdleGroup{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount, LastActivity: g.LastActivity, IdleDays: days})
	}
	return nil
}

// maxReportGroups bounds an all-groups report (its checkpoint and event).
const maxReportGroups = 20000

func reportGroup(g *wix.Group, siteURL string) messages.ReportGroup {
	rg := messages.ReportGroup{GroupID: g.ID, Name: g.Name, Slug: g.Slug, URL: report.GroupURL(siteURL, g.Slug), Privacy: g.PrivacyStatus, MembersCount: g.MembersCount}
	if g.CreatedDate != nil {
		rg.CreatedDate = g.CreatedDate.UTC()
	}
	if g.LastActivityDate != nil {
		rg.LastActivity = g.LastActivityDate.UTC()
	}
	return rg
}
