package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

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
// calls at most. The data read is checkpointed in the ledger, so a retry
// (e.g. the object store was unavailable) does not call Wix again. The
// report is rendered (internal/report) as HTML, CSV and JSON, stored in the
// reports object store under "<command id>.<format>", and returned as
// report_generated naming the objects.
type GenerateReport struct {
	sites Sites
	js    jetstream.JetStream
	log   *zap.Logger
	now   func() time.Time
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
	evt := &messages.ReportGenerated{
		EventMeta:   cmd.EventMeta(),
		GeneratedAt: d.GeneratedAt,
		TotalGroups: d.Total,
		Top:         d.Top,
		Idle:        d.Idle,
		IdleDays:    c.IdleDays,
		Objects:     report.Objects(cmd.ID),
		WixCalls:    steps.Calls(),
	}
	htmlData, csvData, jsonData, err := report.Render(evt)
	if err != nil {
		return nil, err
	}
	if evt.Objects, err = report.Store(ctx, h.js, cmd.ID, htmlData, csvData, jsonData); err != nil {
		return nil, err
	}
	return evt, nil
}

// read makes the report's Wix calls.
func (h *GenerateReport) read(ctx context.Context, siteID string, c *messages.GenerateReport) (reportData, error) {
	site, err := h.sites.Site(siteID)
	if err != nil {
		return reportData{}, err
	}
	now := h.now().UTC()
	d := reportData{GeneratedAt: now}

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
// Wix docs, 100 a page) and hands every group to fn until fn returns false.
func reportPages(ctx context.Context, site *wix.Site, field, order string, fn func(*wix.Group) bool) error {
	q := wix.Query{Sort: []wix.Sort{{FieldName: field, Order: order}}, Paging: &wix.Paging{Limit: wix.MaxPageSize}}
	for page, err := range site.GroupPages(ctx, q) {
		if err != nil {
			return fmt.Errorf("query groups by %s: %w", field, err)
		}
		for i := range page.Groups {
			if !fn(&page.Groups[i]) {
				return nil
			}
		}
	}
	return nil
}
