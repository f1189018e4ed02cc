package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"groupflow/messages"
)

// csvHeader: the first eight columns are those of the first report format
// (section, rank, group_id, name, slug, members_count, last_activity,
// idle_days); the rest were added with the report for people. Sections:
// total, top, idle, group (allGroups), removed (since the previous report).
var csvHeader = []string{"section", "rank", "group_id", "name", "slug", "members_count", "last_activity", "idle_days",
	"url", "privacy", "created", "member_change", "new", "flag", "action"}

func renderCSV(r *messages.ReportGenerated) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	flags := flagsByGroup(r.Flags)
	site := r.Site.URL
	_ = w.Write(csvHeader)
	_ = w.Write(row("total", 0, messages.GroupStat{MembersCount: r.TotalGroups}, csvExtra{}))
	for i, g := range r.Top {
		_ = w.Write(row("top", i+1, g, csvExtra{url: GroupURL(site, g.Slug)}))
	}
	for i, g := range r.Idle {
		f := flags[g.GroupID]
		_ = w.Write(row("idle", i+1, messages.GroupStat{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount},
			csvExtra{last: stamp(g.LastActivity), idleDays: strconv.Itoa(g.IdleDays), url: GroupURL(site, g.Slug), flag: f.Kind, action: f.Action}))
	}
	for i, g := range r.Groups {
		f := flags[g.GroupID]
		change, isNew := "", ""
		if r.Changes != nil {
			change, isNew = strconv.Itoa(g.MemberChange), strconv.FormatBool(g.New)
		}
		_ = w.Write(row("group", i+1, messages.GroupStat{GroupID: g.GroupID, Name: g.Name, Slug: g.Slug, MembersCount: g.MembersCount},
			csvExtra{last: stamp(g.LastActivity), idleDays: strconv.Itoa(IdleDaysSince(r.GeneratedAt, g.LastActivity, g.CreatedDate)),
				url: cmpURL(g.URL, site, g.Slug), privacy: g.Privacy, created: stamp(g.CreatedDate), change: change, isNew: isNew, flag: f.Kind, action: f.Action}))
	}
	if r.Changes != nil {
		for i, g := range r.Changes.Removed {
			_ = w.Write(row("removed", i+1, g, csvExtra{change: strconv.Itoa(-g.MembersCount)}))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, fmt.Errorf("report csv: %w", err)
	}
	return buf.Bytes(), nil
}

// csvExtra are a row's cells after members_count.
type csvExtra struct{ last, idleDays, url, privacy, created, change, isNew, flag, action string }

// row is one CSV row; text cells are defused (csvCell).
func row(section string, rank int, g messages.GroupStat, x csvExtra) []string {
	r := ""
	if rank > 0 {
		r = strconv.Itoa(rank)
	}
	return []string{section, r, csvCell(g.GroupID), csvCell(g.Name), csvCell(g.Slug), strconv.Itoa(g.MembersCount), x.last, x.idleDays,
		csvCell(x.url), csvCell(x.privacy), x.created, x.change, x.isNew, x.flag, csvCell(x.action)}
}

func cmpURL(u, site, slug string) string {
	if u != "" {
		return u
	}
	return GroupURL(site, slug)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func flagsByGroup(fs []messages.ReportFlag) map[string]messages.ReportFlag {
	m := make(map[string]messages.ReportFlag, len(fs))
	for _, f := range fs {
		m[f.GroupID] = f
	}
	return m
}

// csvCell defuses spreadsheet formula injection: a cell starting with = + -
// @ or a tab/CR gets a leading apostrophe.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
