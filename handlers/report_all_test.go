package handlers

import (
	"context"
	"testing"
	"time"

	"groupflow/internal/report"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestReportAllGroupsBudget: an all-groups report of G groups costs
// ⌈G/100⌉ List Groups calls and nothing else, links every group, shows the
// command's time zone, and compares with the site's previous all-groups
// report (the second one, with nothing changed, shows no change).
func TestReportAllGroupsBudget(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	wx := testenv.StartWix(t, wixsim.Options{Members: 300, Groups: 250})
	profile := report.Profile{Name: "Gym", URL: "https://gym.example", TimeZone: "America/New_York"}
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(wx.Client, env.JS, env.Log).WithProfiles(func(string) report.Profile { return profile })))
	g := len(wx.Site().Groups())
	want := int64((g + 99) / 100)

	var prev string
	for i, id := range []string{"all-1", "all-2"} {
		wx.Sim.ResetCalls()
		w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
		env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": id, "allGroups": true, "timeZone": "Asia/Tokyo", "top": 5, "idle": 5})
		ev := testenv.Decode[messages.ReportGenerated](t, w.Next(60*time.Second, testenv.ForCommand(id)))
		calls := wx.Sim.Calls(wx.SiteID)
		if ev.WixCalls != want || wx.Calls() != want || calls[wix.OpGroupsList] != want {
			t.Errorf("%s: %d calls (sim %v), want ⌈%d/100⌉ = %d", id, ev.WixCalls, calls, g, want)
		}
		if len(ev.Groups) != g || ev.TotalGroups != g || len(ev.Top) != 5 || len(ev.Idle) != 5 || ev.Site.TimeZone != "Asia/Tokyo" || ev.Site.Name != "Gym" {
			t.Fatalf("%s: %d groups of %d, top %d, idle %d, site %+v", id, len(ev.Groups), g, len(ev.Top), len(ev.Idle), ev.Site)
		}
		if ev.Groups[0].URL != report.GroupURL(profile.URL, ev.Groups[0].Slug) || ev.Groups[0].URL == "" || ev.Groups[0].MembersCount < ev.Groups[g-1].MembersCount {
			t.Errorf("%s: first group %+v", id, ev.Groups[0])
		}
		switch i {
		case 0:
			if ev.Changes != nil {
				t.Errorf("first report compared with %+v", ev.Changes)
			}
		case 1:
			if ev.Changes == nil || ev.Changes.PreviousReportID != prev || ev.Changes.MemberChange != 0 || ev.Changes.AddedTotal+ev.Changes.RemovedTotal != 0 {
				t.Errorf("second report's changes %+v", ev.Changes)
			}
		}
		latest, _, err := report.Latest(context.Background(), env.JS, ev.SiteID)
		if err != nil || latest != id {
			t.Errorf("pointer %q %v, want %s", latest, err, id)
		}
		prev = id
	}
}
