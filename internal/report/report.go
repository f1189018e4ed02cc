// Package report renders groupflow's group report (a ReportGenerated event)
// as a self-contained HTML page with an inline SVG bar chart, as CSV and as
// JSON, and stores and loads the rendered files in the JetStream Object
// Store bucket broker.ReportsBucket under "<reportId>.html|csv|json".
package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/natsname"
	"groupflow/messages"
)

// Formats accepted by Load and ObjectName.
const (
	FormatHTML = "html"
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// ErrNotFound is returned (wrapped) by Load when the report object does not exist.
var ErrNotFound = errors.New("report not found")

// ObjectName returns the object name of a report file:
// natsname.ObjectName(reportID, format), i.e. "<reportID>.<format>" when
// the id is a safe token ([A-Za-z0-9_-], at most 64 long), else
// "h<hash of the id>.<format>". Object names become part of NATS subjects:
// an id as it came would let a long one close the connection.
func ObjectName(reportID, format string) string { return natsname.ObjectName(reportID, format) }

// legacyObjectName is the name reports were stored under before ObjectName
// escaped ids ("<reportID>.<format>"); Load falls back to it when it is
// short enough to be looked up safely.
func legacyObjectName(reportID, format string) (string, bool) {
	n := reportID + "." + format
	return n, n != ObjectName(reportID, format) && len(n) <= maxLegacyName
}

// maxLegacyName bounds a legacy object name Load looks up: ids were never
// longer than messages.MaxIDLen once validated, and the meta subject is
// the name in base64 (4/3 longer).
const maxLegacyName = messages.MaxIDLen + 8

// Objects returns the object names of a report's three files.
func Objects(reportID string) messages.ReportObjects {
	return messages.ReportObjects{
		Bucket: broker.ReportsBucket,
		HTML:   ObjectName(reportID, FormatHTML),
		CSV:    ObjectName(reportID, FormatCSV),
		JSON:   ObjectName(reportID, FormatJSON),
	}
}

// Render returns the report as an HTML page, a CSV file and indented JSON
// (the event itself).
func Render(r *messages.ReportGenerated) (htmlOut, csvOut, jsonOut []byte, err error) {
	if r == nil {
		return nil, nil, nil, errors.New("report: nil report")
	}
	if htmlOut, err = renderHTML(r); err != nil {
		return nil, nil, nil, err
	}
	if csvOut, err = renderCSV(r); err != nil {
		return nil, nil, nil, err
	}
	if jsonOut, err = json.MarshalIndent(r, "", "  "); err != nil {
		return nil, nil, nil, fmt.Errorf("report json: %w", err)
	}
	return htmlOut, csvOut, append(jsonOut, '\n'), nil
}

// Store puts the rendered files into the reports bucket (overwriting a
// previous version, so a retried command stores the same names) and returns
// their names.
func Store(ctx context.Context, js jetstream.JetStream, reportID string, htmlData, csvData, jsonData []byte) (messages.ReportObjects, error) {
	if reportID == "" {
		return messages.ReportObjects{}, errors.New("report: empty report id")
	}
	// Bounded: a reply lost in a broker failover must become a retried
	// error, not a wait as long as the handler's deadline.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return messages.ReportObjects{}, fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	objs := Objects(reportID)
	for _, f := range []struct {
		name, ctype string
		data        []byte
	}{
		{objs.HTML, "text/html; charset=utf-8", htmlData},
		{objs.CSV, "text/csv; charset=utf-8", csvData},
		{objs.JSON, "application/json", jsonData},
	} {
		meta := jetstream.ObjectMeta{Name: f.name, Description: "groupflow report " + describeID(reportID), Headers: map[string][]string{"Content-Type": {f.ctype}}}
		if _, err := store.Put(ctx, meta, bytes.NewReader(f.data)); err != nil {
			return messages.ReportObjects{}, fmt.Errorf("store %s: %w", f.name, err)
		}
	}
	return objs, nil
}

// describeID is the report id for the object's description, bounded.
func describeID(id string) string {
	if r := []rune(id); len(r) > messages.MaxIDLen {
		return string(r[:messages.MaxIDLen]) + "…"
	}
	return id
}

// Load returns one stored file of a report; format is html, csv or json.
func Load(ctx context.Context, js jetstream.JetStream, reportID, format string) ([]byte, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	switch format {
	case FormatHTML, FormatCSV, FormatJSON:
	default:
		return nil, fmt.Errorf("report: unknown format %q (want html, csv or json)", format)
	}
	store, err := js.ObjectStore(ctx, broker.ReportsBucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", broker.ReportsBucket, err)
	}
	b, err := store.GetBytes(ctx, ObjectName(reportID, format))
	if legacy, ok := legacyObjectName(reportID, format); ok && errors.Is(err, jetstream.ErrObjectNotFound) {
		b, err = store.GetBytes(ctx, legacy)
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ObjectName(reportID, format))
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ObjectName(reportID, format), err)
	}
	return b, nil
}

// ---- CSV ----

var csvHeader = []string{"section", "rank", "group_id", "name", "slug", "members_count", "last_activity", "idle_days"}

func renderCSV(r *messages.ReportGenerated) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(csvHeader)
	_ = w.Write([]string{"total", "", "", "", "", strconv.Itoa(r.TotalGroups), "", ""})
	for i, g := range r.Top {
		_ = w.Write([]string{"top", strconv.Itoa(i + 1), csvCell(g.GroupID), csvCell(g.Name), csvCell(g.Slug), strconv.Itoa(g.MembersCount), "", ""})
	}
	for i, g := range r.Idle {
		last := ""
		if !g.LastActivity.IsZero() {
			last = g.LastActivity.UTC().Format(time.RFC3339)
		}
		_ = w.Write([]string{"idle", strconv.Itoa(i + 1), csvCell(g.GroupID), csvCell(g.Name), csvCell(g.Slug), strconv.Itoa(g.MembersCount), last, strconv.Itoa(g.IdleDays)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("report csv: %w", err)
	}
	return buf.Bytes(), nil
}

// csvCell defuses spreadsheet formula injection: a cell starting with = + -
// @ or a tab/CR gets a leading apostrophe.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ---- HTML ----

type htmlBar struct {
	Y, Width, TextY int
	Name            string
	Count           int
}

type htmlData struct {
	R                  *messages.ReportGenerated
	Generated          string
	Bars               []htmlBar
	ChartW, ChartH     int
	LabelW, BarMaxW    int
	IdleFilter         bool
	IdleRows           []htmlIdle
	HasTop, HasIdle    bool
	TopCount, IdleSize int
}

type htmlIdle struct {
	Rank         int
	Name, Slug   string
	GroupID      string
	MembersCount int
	LastActivity string
	IdleDays     int
}

const (
	barH    = 22
	barGap  = 6
	labelW  = 260
	barMaxW = 460
)

func renderHTML(r *messages.ReportGenerated) ([]byte, error) {
	d := htmlData{R: r, LabelW: labelW, BarMaxW: barMaxW, IdleFilter: r.IdleDays > 0,
		HasTop: len(r.Top) > 0, HasIdle: len(r.Idle) > 0, TopCount: len(r.Top), IdleSize: len(r.Idle)}
	if !r.GeneratedAt.IsZero() {
		d.Generated = r.GeneratedAt.UTC().Format(time.RFC3339)
	}
	maxCount := 1
	for _, g := range r.Top {
		maxCount = max(maxCount, g.MembersCount)
	}
	for i, g := range r.Top {
		y := 10 + i*(barH+barGap)
		w := int(float64(g.MembersCount) / float64(maxCount) * barMaxW)
		if g.MembersCount > 0 {
			w = max(w, 1)
		}
		d.Bars = append(d.Bars, htmlBar{Y: y, Width: w, TextY: y + barH/2 + 5, Name: truncate(g.Name, 40), Count: g.MembersCount})
	}
	d.ChartW = labelW + barMaxW + 80
	d.ChartH = 20 + len(r.Top)*(barH+barGap)
	for i, g := range r.Idle {
		row := htmlIdle{Rank: i + 1, Name: g.Name, Slug: g.Slug, GroupID: g.GroupID, MembersCount: g.MembersCount, IdleDays: g.IdleDays, LastActivity: "unknown"}
		if !g.LastActivity.IsZero() {
			row.LastActivity = g.LastActivity.UTC().Format("2006-01-02")
		}
		d.IdleRows = append(d.IdleRows, row)
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("report html: %w", err)
	}
	return buf.Bytes(), nil
}

func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-1]) + "…"
}

// The page is well-formed XHTML-compatible markup (every element closed)
// so that any HTML or XML parser reads it; html/template escapes every
// value by context.
var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>Groups report {{.R.CommandID}}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin-top:1rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
td.num,th.num{text-align:right}
.bar{fill:#3b7dd8}
.label{font-size:12px;fill:#222}
.count{font-size:12px;fill:#555}
</style>
</head>
<body>
<h1>Groups report</h1>
<p>Generated <time datetime="{{.Generated}}">{{.Generated}}</time> · site <code>{{.R.SiteID}}</code> · <strong id="total-groups">{{.R.TotalGroups}}</strong> groups in total · {{.R.WixCalls}} Wix calls</p>
<h2>Top {{.TopCount}} groups by members</h2>
{{if .HasTop}}<svg xmlns="http://www.w3.org/2000/svg" id="top-chart" width="{{.ChartW}}" height="{{.ChartH}}" viewBox="0 0 {{.ChartW}} {{.ChartH}}" role="img" aria-label="Top groups by members">
{{range .Bars}}<g class="row"><text class="label" x="{{$.LabelW}}" dx="-8" y="{{.TextY}}" text-anchor="end">{{.Name}}</text><rect class="bar" x="{{$.LabelW}}" y="{{.Y}}" width="{{.Width}}" height="22"><title>{{.Name}}: {{.Count}}</title></rect><text class="count" x="{{$.LabelW}}" dx="{{.Width}}" dy="0" y="{{.TextY}}"> {{.Count}}</text></g>
{{end}}</svg>
<table id="top">
<thead><tr><th class="num">#</th><th>Group</th><th>Slug</th><th class="num">Members</th></tr></thead>
<tbody>
{{range $i, $g := .R.Top}}<tr><td class="num">{{inc $i}}</td><td>{{$g.Name}}</td><td>{{$g.Slug}}</td><td class="num">{{$g.MembersCount}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No groups.</p>{{end}}
<h2>{{.IdleSize}} idle groups{{if .IdleFilter}} (no activity for at least {{.R.IdleDays}} days){{end}}</h2>
{{if .HasIdle}}<table id="idle">
<thead><tr><th class="num">#</th><th>Group</th><th>Slug</th><th class="num">Members</th><th>Last activity</th><th class="num">Days idle</th></tr></thead>
<tbody>
{{range .IdleRows}}<tr><td class="num">{{.Rank}}</td><td>{{.Name}}</td><td>{{.Slug}}</td><td class="num">{{.MembersCount}}</td><td>{{.LastActivity}}</td><td class="num">{{.IdleDays}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No idle groups.</p>{{end}}
</body>
</html>
`))
