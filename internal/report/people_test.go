package report

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"groupflow/messages"
)

var at = time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC) // 08:00 in Berlin

const evil = `<script>alert("x")</script> & "Co"`

// sample is an all-groups report compared with a previous one.
func sample() (*messages.ReportGenerated, *messages.ReportGenerated) {
	prev := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "r-1"}, GeneratedAt: at.AddDate(0, 0, -7), AllGroups: true,
		Groups: []messages.ReportGroup{
			{GroupID: "yoga", Name: "Yoga", MembersCount: 40},
			{GroupID: "evil", Name: evil, MembersCount: 10},
			{GroupID: "gone", Name: "Gone club", MembersCount: 4},
		}}
	cur := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "r-2", SiteID: "s"}, GeneratedAt: at, AllGroups: true, TotalGroups: 3,
		Site: messages.ReportSite{Name: "Acme " + evil, URL: "https://acme.example/", TimeZone: "Europe/Berlin"},
		Groups: []messages.ReportGroup{
			{GroupID: "yoga", Name: "Yoga", Slug: "yoga", MembersCount: 45, CreatedDate: at.AddDate(-1, 0, 0), LastActivity: at.AddDate(0, 0, -60), Privacy: "PUBLIC"},
			{GroupID: "evil", Name: evil, Slug: `"><script>x</script>`, MembersCount: 8, CreatedDate: at.AddDate(0, -2, 0), LastActivity: at.AddDate(0, 0, -1)},
			{GroupID: "new", Name: "Chess", Slug: "chess", MembersCount: 2, CreatedDate: at.AddDate(0, 0, -10)},
		}}
	return prev, cur
}

func TestCompareAndFlag(t *testing.T) {
	prev, cur := sample()
	ch := Compare(prev, cur.Groups)
	if ch.PreviousReportID != "r-1" || ch.AddedTotal != 1 || ch.Added[0].GroupID != "new" || ch.RemovedTotal != 1 || ch.Removed[0].GroupID != "gone" {
		t.Fatalf("changes %+v", ch)
	}
	// +5 yoga, -2 evil, +2 new, -4 gone
	if ch.MemberChange != 1 || cur.Groups[0].MemberChange != 5 || cur.Groups[1].MemberChange != -2 || !cur.Groups[2].New {
		t.Fatalf("member change %d, groups %+v", ch.MemberChange, cur.Groups)
	}
	flags := Flag(cur.Groups, at, Thresholds{IdleDays: 30, LargeGroup: 20, SmallGroup: 3})
	want := map[string]string{"yoga": messages.FlagLargeIdle, "new": messages.FlagNeverActive}
	if len(flags) != len(want) {
		t.Fatalf("flags %+v", flags)
	}
	for _, f := range flags {
		if want[f.GroupID] != f.Kind || f.Action == "" {
			t.Errorf("flag %+v, want %s", f, want[f.GroupID])
		}
	}
	// Activity at creation only (what Wix records for a new group) is none.
	if f := Flag([]messages.ReportGroup{{GroupID: "x", MembersCount: 5, CreatedDate: at.AddDate(0, 0, -9), LastActivity: at.AddDate(0, 0, -9).Add(time.Second)}}, at, ThresholdsOf(&messages.GenerateReport{})); len(f) != 1 || f[0].Kind != messages.FlagNeverActive || f[0].IdleDays != 9 {
		t.Errorf("activity at creation: %+v", f)
	}
	// A group created today with no activity yet is small, not "never active".
	if f := Flag([]messages.ReportGroup{{GroupID: "x", MembersCount: 1, CreatedDate: at.Add(-time.Hour)}}, at, ThresholdsOf(&messages.GenerateReport{})); len(f) != 1 || f[0].Kind != messages.FlagSmall {
		t.Errorf("young group: %+v", f)
	}
	big := &messages.ReportChanges{Added: make([]messages.GroupStat, 250), AddedTotal: 250}
	if b := BoundChanges(big); len(b.Added) != messages.MaxChangeRows || b.AddedTotal != 250 || len(big.Added) != 250 {
		t.Errorf("bound: %d of %d", len(b.Added), b.AddedTotal)
	}
}

func TestPageForPeople(t *testing.T) {
	prev, cur := sample()
	cur.Changes = Compare(prev, cur.Groups)
	cur.Flags = Flag(cur.Groups, at, Thresholds{IdleDays: 30, LargeGroup: 20, SmallGroup: 3})
	page, csvData, _, err := Render(cur)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	text := parseStrict(t, page)
	for _, want := range []string{"Monday 7 December 2026, 08:00", "CET (Europe/Berlin)", "Acme " + evil, "30 Nov – 7 Dec 2026",
		"Gone club", "ask an admin to post", "never used"} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Error("a hostile name or slug is not escaped")
	}
	if !strings.Contains(s, `href="https://acme.example/group/yoga"`) || !strings.Contains(s, `href="https://acme.example/group/%22%3E%3Cscript%3Ex%3C%2Fscript%3E"`) {
		t.Error("group links missing or not path-escaped")
	}
	if !strings.Contains(s, "@media print") || !strings.Contains(s, "@page") {
		t.Error("no print stylesheet")
	}
	// Growth chart: one bar per changed group (yoga +5, new +2, evil -2).
	if n, down := strings.Count(s, `<rect class="bar-`), strings.Count(s, `<rect class="bar-down"`); n != 3 || down != 1 {
		t.Errorf("growth bars %d (%d down), want 3 (1 down)", n, down)
	}
	rows, err := csv.NewReader(bytes.NewReader(csvData)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows[0]) != len(csvHeader) || rows[0][11] != "member_change" {
		t.Fatalf("csv header %v", rows[0])
	}
	var groups, removed int
	for _, r := range rows[1:] {
		switch r[0] {
		case "group":
			groups++
			if r[2] == "yoga" && (r[11] != "5" || r[13] != messages.FlagLargeIdle || r[8] != "https://acme.example/group/yoga" || r[9] != "PUBLIC") {
				t.Errorf("yoga row %v", r)
			}
		case "removed":
			removed++
		}
	}
	if groups != 3 || removed != 1 {
		t.Errorf("csv: %d group rows, %d removed", groups, removed)
	}
}

func TestFirstReportSaysSo(t *testing.T) {
	_, cur := sample()
	page, _, _, err := Render(cur)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "first all-groups report") || strings.Contains(string(page), "<rect") {
		t.Error("a first report draws a chart or does not say it is the first")
	}
}

func TestCheckProfileAndGroupURL(t *testing.T) {
	for _, p := range []Profile{{URL: "javascript:alert(1)"}, {URL: "https://u:p@acme.example"}, {TimeZone: "Mars/Base"}, {Recipients: []string{"nope"}}} {
		if CheckProfile(p) == nil {
			t.Errorf("accepted %+v", p)
		}
	}
	if err := CheckProfile(Profile{Name: "Acme", URL: "https://acme.example", TimeZone: "Europe/Berlin", Recipients: []string{"a@acme.example"}}); err != nil {
		t.Error(err)
	}
	if GroupURL("", "x") != "" || GroupURL("https://a.example", "") != "" || GroupURL("https://a.example/", "a b") != "https://a.example/group/a%20b" {
		t.Error("GroupURL")
	}
}

// TestCheckProfileHidesURLSecrets: a site URL refused for its user info (or
// for not parsing, user info still in it) is named without the password:
// --site-url and a sites file's url reach the startup log through it.
func TestCheckProfileHidesURLSecrets(t *testing.T) {
	for _, u := range []string{"https://u:pw-s3cret@acme.example", "ftp://u:pw-s3cret@acme.example", "https://u:pw-s3cret@acme.example/%zz", "https://pw-s3cret@acme.example"} {
		err := CheckProfile(Profile{URL: u})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "site url") {
			t.Errorf("%s: err = %v, want the site url refused without its secret", u, err)
		}
	}
}

func parseStrict(t *testing.T, page []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = true, nil, xml.HTMLEntity
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return text.String()
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		if c, ok := tok.(xml.CharData); ok {
			text.Write(c)
		}
	}
}
