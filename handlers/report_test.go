package handlers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"groupflow/internal/runtime"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"groupflow/internal/report"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

func TestReportOver500Groups(t *testing.T) {
	env := testenv.Start(t)
	wx := testenv.StartWix(t, wixsim.Options{Members: 1500, Groups: 500})
	site := wx.Site()
	// A hostile name on the largest group: it must come out escaped.
	var ids []string
	for _, m := range site.Members()[:800] {
		ids = append(ids, m.ID)
	}
	evil := `<script>alert("x")</script> & Co's "best"`
	site.AddGroup(evil, "", ids...)
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(wx.Client, env.JS, env.Log)))

	groups := site.Groups()
	seq := map[string]int{}
	for i, g := range groups {
		seq[g.ID] = i
	}
	byMembers := slices.Clone(groups)
	slices.SortStableFunc(byMembers, func(a, b wixsim.Group) int {
		return cmp.Or(cmp.Compare(b.MembersCount, a.MembersCount), cmp.Compare(seq[b.ID], seq[a.ID]))
	})
	byActivity := slices.Clone(groups)
	slices.SortStableFunc(byActivity, func(a, b wixsim.Group) int {
		return cmp.Or(a.LastActivityDate.Compare(b.LastActivityDate), cmp.Compare(seq[b.ID], seq[a.ID]))
	})

	for _, tc := range []struct {
		name            string
		top, idle, days int
		calls           int64
	}{
		{name: "defaults", calls: 3},
		{name: "150 top 120 idle", top: 150, idle: 120, calls: 5},
		{name: "idle for 60 days", top: 5, idle: 300, days: 60, calls: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wx.Sim.ResetCalls()
			w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
			id := "report-" + strings.ReplaceAll(tc.name, " ", "-")
			env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": id, "top": tc.top, "idle": tc.idle, "idleDays": tc.days})
			ev := testenv.Decode[messages.ReportGenerated](t, w.Next(60*time.Second, testenv.ForCommand(id)))

			if ev.TotalGroups != len(groups) || len(groups) <= 500 {
				t.Errorf("total %d, simulator has %d", ev.TotalGroups, len(groups))
			}
			calls := wx.Sim.Calls(wx.SiteID)
			if wx.Calls() != tc.calls || ev.WixCalls != tc.calls || calls[wix.OpGroupsList] != 1 {
				t.Errorf("calls sim=%d event=%d want %d: %v", wx.Calls(), ev.WixCalls, tc.calls, calls)
			}
			top := cmp.Or(tc.top, messages.DefaultReportTop)
			if len(ev.Top) != top {
				t.Fatalf("top has %d rows, want %d", len(ev.Top), top)
			}
			for i, g := range ev.Top {
				if g.GroupID != byMembers[i].ID || g.MembersCount != byMembers[i].MembersCount || g.Name != byMembers[i].Name {
					t.Fatalf("top[%d] = %+v, want %+v", i, g, byMembers[i])
				}
			}
			if ev.Top[0].Name != evil {
				t.Errorf("largest group %q", ev.Top[0].Name)
			}
			var wantIdle []wixsim.Group
			for _, g := range byActivity {
				if len(wantIdle) == cmp.Or(tc.idle, messages.DefaultReportIdle) {
					break
				}
				days := int(ev.GeneratedAt.Sub(g.LastActivityDate) / (24 * time.Hour))
				if tc.days > 0 && days < tc.days {
					break
				}
				wantIdle = append(wantIdle, g)
			}
			if len(ev.Idle) != len(wantIdle) || len(wantIdle) == 0 {
				t.Fatalf("idle has %d rows, want %d", len(ev.Idle), len(wantIdle))
			}
			for i, g := range ev.Idle {
				days := int(ev.GeneratedAt.Sub(wantIdle[i].LastActivityDate) / (24 * time.Hour))
				if g.GroupID != wantIdle[i].ID || !g.LastActivity.Equal(wantIdle[i].LastActivityDate) || g.IdleDays != days || (tc.days > 0 && g.IdleDays < tc.days) {
					t.Fatalf("idle[%d] = %+v, want %+v (%d days)", i, g, wantIdle[i], days)
				}
			}
			if ev.Objects != report.Objects(id) {
				t.Errorf("objects %+v", ev.Objects)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			page, err := report.Load(ctx, env.JS, id, "html")
			if err != nil {
				t.Fatal(err)
			}
			text := reportParseHTML(t, page)
			if strings.Contains(string(page), "<script>") || !strings.Contains(text, evil) {
				t.Error("group name not escaped (or missing) in the HTML")
			}
			if !strings.Contains(string(page), `<strong id="total-groups">`+strconv.Itoa(len(groups))+`</strong>`) {
				t.Error("total missing from the HTML")
			}
			// The chart shows growth since the previous all-groups report,
			// not a copy of the top table: none in a report without allGroups.
			if n := strings.Count(string(page), `<rect`); n != 0 || !strings.Contains(string(page), `<table id="top">`) {
				t.Errorf("%d chart bars in a report without allGroups, or no top table", n)
			}
			for _, g := range ev.Idle {
				if !strings.Contains(string(page), `<td class="num">`+strconv.Itoa(g.IdleDays)+`</td></tr>`) {
					t.Fatalf("idle days of %s missing", g.GroupID)
				}
			}
			csvData, err := report.Load(ctx, env.JS, id, "csv")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(bytes.NewReader(csvData)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2+len(ev.Top)+len(ev.Idle) || rows[2][3] != evil || rows[2][5] != strconv.Itoa(ev.Top[0].MembersCount) {
				t.Errorf("csv: %d rows, first top %v", len(rows), rows[2])
			}
			js, err := report.Load(ctx, env.JS, id, "json")
			if err != nil || !bytes.Contains(js, []byte(`"totalGroups": `+strconv.Itoa(len(groups)))) {
				t.Errorf("json: %v %.200s", err, js)
			}
		})
	}

	t.Run("unknown report", func(t *testing.T) {
		_, err := report.Load(context.Background(), env.JS, "nope", "html")
		if !errors.Is(err, report.ErrNotFound) {
			t.Errorf("err = %v", err)
		}
	})
}

// reportParseHTML parses the page strictly (it is well-formed markup) and
// returns its text.
func reportParseHTML(t *testing.T, page []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	var text strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("HTML does not parse: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			text.Write(v)
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced HTML (depth %d)", depth)
	}
	return text.String()
}
