package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"slices"
	"time"

	"groupflow/messages"
)

// Location is the report's time zone: r.Site.TimeZone, else UTC.
func Location(r *messages.ReportGenerated) *time.Location {
	if r.Site.TimeZone != "" {
		if loc, err := time.LoadLocation(r.Site.TimeZone); err == nil {
			return loc
		}
	}
	return time.UTC
}

// SiteName is the site's name for people: its configured name, else its id.
func SiteName(r *messages.ReportGenerated) string {
	return cmp.Or(r.Site.Name, r.SiteID, "your site")
}

// Period describes what the report covers, e.g. "7 Dec 2026" or
// "30 Nov – 7 Dec 2026" (since the previous report), in local time.
func Period(r *messages.ReportGenerated) string {
	loc := Location(r)
	end := r.GeneratedAt.In(loc)
	if r.Changes == nil || r.Changes.PreviousAt.IsZero() {
		return end.Format("2 Jan 2006")
	}
	start := r.Changes.PreviousAt.In(loc)
	if start.Format("2 Jan 2006") == end.Format("2 Jan 2006") {
		return start.Format("2 Jan 2006 15:04") + " – " + end.Format("15:04")
	}
	return start.Format("2 Jan") + " – " + end.Format("2 Jan 2006")
}

type growthBar struct {
	Y, X, Width, TextY int
	Name, Label        string
	Up                 bool
}

type groupRow struct {
	messages.ReportGroup
	Link, Created, Last string
	Flag                string
}

type htmlData struct {
	R                      *messages.ReportGenerated
	SiteName, Local, Zone  string
	Period, PrevLocal      string
	Members                int
	Groups                 []groupRow
	Top                    []groupRow
	Idle                   []htmlIdle
	Growth                 []growthBar
	ChartW, ChartH, Center int
	LabelW                 int
	GrowthCut              bool // more groups changed than the chart shows
	IdleFilter             bool
}

type htmlIdle struct {
	Rank                   int
	Name, Link             string
	MembersCount, IdleDays int
	LastActivity           string
}

const (
	barH      = 20
	barGap    = 6
	labelW    = 240
	halfW     = 220
	maxGrowth = 15
)

func renderHTML(r *messages.ReportGenerated) ([]byte, error) {
	loc := Location(r)
	d := htmlData{R: r, SiteName: SiteName(r), Period: Period(r), LabelW: labelW, IdleFilter: r.IdleDays > 0}
	if !r.GeneratedAt.IsZero() {
		t := r.GeneratedAt.In(loc)
		d.Local, d.Zone = t.Format("Monday 2 January 2006, 15:04"), t.Format("MST")+" ("+loc.String()+")"
	}
	if r.Changes != nil && !r.Changes.PreviousAt.IsZero() {
		d.PrevLocal = r.Changes.PreviousAt.In(loc).Format("Mon 2 Jan 2006, 15:04")
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.In(loc).Format("2 Jan 2006")
	}
	flags := flagsByGroup(r.Flags)
	for _, g := range r.Groups {
		d.Members += g.MembersCount
		d.Groups = append(d.Groups, groupRow{ReportGroup: g, Link: cmpURL(g.URL, r.Site.URL, g.Slug), Created: date(g.CreatedDate), Last: date(g.LastActivity), Flag: flags[g.GroupID].Kind})
	}
	for _, g := range r.Top {
		d.Top = append(d.Top, groupRow{ReportGroup: messages.ReportGroup{Name: g.Name, MembersCount: g.MembersCount}, Link: GroupURL(r.Site.URL, g.Slug)})
	}
	for i, g := range r.Idle {
		d.Idle = append(d.Idle, htmlIdle{Rank: i + 1, Name: g.Name, Link: GroupURL(r.Site.URL, g.Slug), MembersCount: g.MembersCount, IdleDays: g.IdleDays, LastActivity: date(g.LastActivity)})
	}
	d.growth(r)
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("report html: %w", err)
	}
	return buf.Bytes(), nil
}

// growth lays out the chart of member change per group since the previous
// report: the maxGrowth largest changes (either way), gains right of the
// axis, losses left; a new group counts as gaining all its members.
// Groups without change are not drawn.
func (d *htmlData) growth(r *messages.ReportGenerated) {
	if r.Changes == nil {
		return
	}
	var changed []messages.ReportGroup
	for _, g := range r.Groups {
		if g.New {
			g.MemberChange = g.MembersCount // a new group grew from nothing
		}
		if g.MemberChange != 0 {
			changed = append(changed, g)
		}
	}
	slices.SortStableFunc(changed, func(a, b messages.ReportGroup) int { return cmp.Compare(abs(b.MemberChange), abs(a.MemberChange)) })
	d.GrowthCut = len(changed) > maxGrowth
	changed = changed[:min(len(changed), maxGrowth)]
	peak := 1
	for _, g := range changed {
		peak = max(peak, abs(g.MemberChange))
	}
	d.Center = labelW + halfW
	d.ChartW, d.ChartH = labelW+2*halfW+60, 16+len(changed)*(barH+barGap)
	for i, g := range changed {
		y := 8 + i*(barH+barGap)
		w := max(1, abs(g.MemberChange)*halfW/peak)
		b := growthBar{Y: y, Width: w, TextY: y + barH/2 + 5, Name: truncate(g.Name, 36), Up: g.MemberChange > 0, Label: fmt.Sprintf("%+d", g.MemberChange)}
		if g.New {
			b.Label += " (new)"
		}
		b.X = d.Center
		if !b.Up {
			b.X = d.Center - w
		}
		d.Growth = append(d.Growth, b)
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-1]) + "…"
}

var funcs = template.FuncMap{
	"inc":    func(i int) int { return i + 1 },
	"signed": func(n int) string { return fmt.Sprintf("%+d", n) },
	"add":    func(a, b int) int { return a + b },
	"flagLabel": func(kind string) string {
		switch kind {
		case messages.FlagLargeIdle:
			return "large, idle"
		case messages.FlagNeverActive:
			return "never active"
		}
		return kind
	},
}

// The page is well-formed XHTML-compatible markup (every element closed)
// so that any HTML or XML parser reads it; html/template escapes every
// value by context (a group name in text, a slug in a URL).
var pageTmpl = template.Must(template.New("report").Funcs(funcs).Parse(pageHTML))
