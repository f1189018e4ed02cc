package mailer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/report"
	"groupflow/messages"
)

// TestReportMailedOncePerReport: a report_generated event stored twice
// (a republish) gives one mail — the stored HTML as the body, the CSV
// attached, to every recipient, the subject from report.subject.tmpl — and
// a report of a site without recipients gives none.
func TestReportMailedOncePerReport(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	if err := os.WriteFile(filepath.Join(h.tmpl, "report.subject.tmpl"), []byte("Weekly groups: {{.SiteName}}, {{.Period}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	mk := func(id string, to ...string) []byte {
		r := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: id, SiteID: "s", OccurredAt: at}, GeneratedAt: at, TotalGroups: 1,
			Site:       messages.ReportSite{Name: "Acme School", TimeZone: "Europe/Berlin"},
			Top:        []messages.GroupStat{{GroupID: "g", Name: "Yoga <b>", MembersCount: 3}},
			Recipients: to, Objects: report.Objects(id)}
		page, csvData, js, err := report.Render(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := report.Store(ctx, h.env.JS, id, page, csvData, js); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		return b
	}
	withRecipients, without := mk("rep-1", "head@acme.example", "deputy@acme.example"), mk("rep-2")
	for _, b := range [][]byte{withRecipients, withRecipients, without} {
		if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), b); err != nil {
			t.Fatal(err)
		}
	}
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.M.RunReports(rctx) }()
	defer func() { rcancel(); <-done }()

	waitFor(t, "report events handled", waitNormal, func() bool {
		c, err := h.env.JS.Consumer(ctx, h.env.Subjects.EventStream(), mailer.ReportDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= 3
	})
	list, total := mp.Messages()
	if total != 1 {
		t.Fatalf("%d mails, want 1: %+v", total, list)
	}
	s := list[0]
	if s.Subject != "Weekly groups: Acme School, 7 Dec 2026" || len(s.To) != 2 {
		t.Errorf("subject %q to %+v", s.Subject, s.To)
	}
	if hd := mp.Headers(s.ID); strings.Join(hd[mailer.HeaderReportID], "") != "rep-1" {
		t.Errorf("headers %v", hd)
	}
	msg := mp.Message(s.ID)
	if !strings.Contains(msg.HTML, "Yoga &lt;b&gt;") || !strings.Contains(msg.HTML, "@media print") {
		t.Errorf("html body %.200s", msg.HTML)
	}
}
