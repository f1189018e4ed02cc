package schedule_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/handlers"
	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/report"
	"groupflow/internal/runtime"
	"groupflow/internal/schedule"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestEveryFiresReportsThatAreMailedOnce is issue 17's "done when": an
// @every schedule on the embedded server fires at least twice, giving two
// reports with two distinct ids, the second showing the changes since the
// first, and exactly one mail per report reaches Mailpit with the HTML
// body and the CSV attached.
func TestEveryFiresReportsThatAreMailedOnce(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	wx := testenv.StartWix(t, wixsim.Options{Members: 60, Groups: 6})
	profile := report.Profile{Name: "Acme <School>", URL: "https://acme.example", TimeZone: "Europe/Berlin", Recipients: []string{"head@acme.example"}}
	h := handlers.NewGenerateReport(wx.Client, env.JS, env.Log).WithProfiles(func(string) report.Profile { return profile })
	env.StartRuntime(runtime.Config{AckWait: 5 * time.Second, MaxDeliver: 5, Retries: -1, ShutdownGrace: 5 * time.Second}, runtime.Adapt(h))

	mp := mailpittest.Start(t, 0)
	sender, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	_, pub := env.EventPublisher()
	m, err := mailer.New(mailer.Config{Subjects: env.Subjects, From: "Groupflow <reports@groupflow.example>", Templates: t.TempDir()},
		mailer.Deps{JS: env.JS, Publisher: pub, Sender: sender, Logger: env.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }() // member and report mails
	t.Cleanup(func() { cancel(); <-done })

	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if _, err := schedule.Create(sctx, env.JS, env.Subjects, schedule.Spec{Kind: "report", Name: "e2e", Every: 2 * time.Second, Body: []byte(`{"allGroups":true}`)}); err != nil {
		t.Fatal(err)
	}
	any := func(*nats.Msg) bool { return true }
	first := testenv.Decode[messages.ReportGenerated](t, w.Next(30*time.Second, any))
	// Between the fires: a new group of three members.
	members := wx.Site().Members()
	wx.Site().AddGroup("Chess club", "", members[0].ID, members[1].ID, members[2].ID)
	grow, shrink := first.Groups[len(first.Groups)-1], first.Groups[0] // smallest gains 4, largest loses 2
	site, err := wx.Client.Site(wx.SiteID)
	if err != nil {
		t.Fatal(err)
	}
	in, err := site.ListGroupMembers(sctx, grow.GroupID, wix.Paging{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var join []string
	for _, m := range members[3:] {
		if len(join) < 4 && !slices.ContainsFunc(in.Members, func(g wix.GroupMember) bool { return g.MemberID == m.ID }) {
			join = append(join, m.ID)
		}
	}
	if _, err := site.AddGroupMembers(sctx, grow.GroupID, join); err != nil {
		t.Fatal(err)
	}
	gm, err := site.ListGroupMembers(sctx, shrink.GroupID, wix.Paging{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var leave []string
	for _, m := range gm.Members {
		if m.Role != "ADMIN" && len(leave) < 2 {
			leave = append(leave, m.MemberID)
		}
	}
	if err := site.RemoveGroupMembers(sctx, shrink.GroupID, leave); err != nil {
		t.Fatal(err)
	}
	var second messages.ReportGenerated
	for second.CommandID == "" || second.CommandID == first.CommandID {
		second = testenv.Decode[messages.ReportGenerated](t, w.Next(30*time.Second, any))
	}
	if ok, err := schedule.Remove(sctx, env.JS, env.Subjects, "report", "e2e"); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}

	for _, r := range []messages.ReportGenerated{first, second} {
		if !strings.HasPrefix(r.CommandID, "sched-e2e-") || r.Site.Name != profile.Name || r.Site.TimeZone != "Europe/Berlin" || !r.AllGroups {
			t.Errorf("report %s: %+v", r.CommandID, r.Site)
		}
	}
	if first.Changes != nil {
		t.Errorf("first report has changes: %+v", first.Changes)
	}
	ch := second.Changes
	if ch == nil || ch.PreviousReportID != first.CommandID || ch.AddedTotal != 1 || ch.Added[0].Name != "Chess club" || ch.MemberChange != 3+4-2 {
		t.Fatalf("second report's changes: %+v", ch)
	}
	change := map[string]int{}
	for _, g := range second.Groups {
		change[g.GroupID] = g.MemberChange
	}
	if change[grow.GroupID] != 4 || change[shrink.GroupID] != -2 {
		t.Errorf("member change of %s %d (want +4), of %s %d (want -2)", grow.Name, change[grow.GroupID], shrink.Name, change[shrink.GroupID])
	}

	// Exactly one mail per report, HTML body and CSV attached.
	mp.WaitCount(2, 30*time.Second)
	list, _ := mp.Messages()
	perReport := map[string]int{}
	for _, s := range list {
		hd := mp.Headers(s.ID)
		perReport[strings.Join(hd[mailer.HeaderReportID], ",")]++
	}
	for _, r := range []messages.ReportGenerated{first, second} {
		if perReport[r.CommandID] != 1 {
			t.Errorf("report %s mailed %d times (%v)", r.CommandID, perReport[r.CommandID], perReport)
		}
	}
	for id, n := range perReport {
		if n != 1 {
			t.Errorf("report %s mailed %d times", id, n)
		}
	}
	for _, s := range list {
		if strings.Join(mp.Headers(s.ID)[mailer.HeaderReportID], "") != second.CommandID {
			continue
		}
		msg := mp.Message(s.ID)
		if !strings.Contains(s.Subject, "Acme <School>") || len(s.To) != 1 || s.To[0].Address != "head@acme.example" {
			t.Errorf("subject %q to %+v", s.Subject, s.To)
		}
		if !strings.Contains(msg.HTML, "Chess club") || !strings.Contains(msg.HTML, `id="growth-chart"`) || strings.Contains(msg.HTML, "<School>") {
			t.Errorf("html body: %.300s", msg.HTML)
		}
		att := attachments(t, mp.API, s.ID)
		if len(att) != 1 || !strings.HasSuffix(att[0].FileName, ".csv") || !strings.HasPrefix(att[0].ContentType, "text/csv") {
			t.Errorf("attachments %+v", att)
		}
		t.Run("screenshots", func(t *testing.T) {
			page, err := report.Load(sctx, env.JS, second.CommandID, report.FormatHTML)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "report.html")
			if err := os.WriteFile(file, page, 0o644); err != nil {
				t.Fatal(err)
			}
			shoot(t, "file://"+file, `document.getElementById("growth-chart") !== null`, 1100, "report-page.png")
			// The HTML body as Mailpit received it, at a phone's width.
			shoot(t, mp.API+"/view/"+s.ID+".html", `document.getElementById("growth-chart") !== null`, 420, "report-mail.png")
		})
	}
}

type attachment struct{ FileName, ContentType string }

func attachments(t *testing.T, api, id string) []attachment {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m struct{ Attachments []attachment }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.Attachments
}

// TestScheduleOnCommandSubjectIsRefused: permissions cannot stop a
// producer from adding Nats-Schedule to a command it may publish, but the
// commands stream (discard-new, no AllowMsgSchedules) refuses it: schedules
// live only in the schedules stream, which only ops may publish to. (On a
// commands stream left with schedules by an older build, the runtime's
// catch-all consumer deletes such a schedule: internal/runtime/schedules.go.)
func TestScheduleOnCommandSubjectIsRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := nats.NewMsg(env.Subjects.Command(messages.CmdGenerateReport))
	m.Data = []byte(`{}`)
	m.Header.Set(schedule.HeaderSchedule, "@every 1h")
	m.Header.Set(schedule.HeaderTarget, env.Subjects.Command(messages.CmdGenerateReport+"_x"))
	if _, err := env.JS.PublishMsg(ctx, m); err == nil {
		t.Fatal("the commands stream stored a schedule")
	}
}
