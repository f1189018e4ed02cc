package mailer_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/report"
	"groupflow/messages"
)

// TestReportDefaultSubjectBounded: without report.subject.tmpl the default
// subject ("Groups report · <site name> · <period>") is built from the
// producer's event too; a site name of 200 KB (any publisher on the
// events subject may send one) must not make a subject past
// MaxRenderedSubject, as the template's is bounded.
func TestReportDefaultSubjectBounded(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	r := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "rep-huge", SiteID: "s", OccurredAt: at}, GeneratedAt: at, TotalGroups: 1,
		Site:       messages.ReportSite{Name: strings.Repeat("Acme ", 40000), TimeZone: "Europe/Berlin"},
		Recipients: []string{"head@acme.example"}, Objects: report.Objects("rep-huge")}
	page, csvData, js, err := report.Render(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.Store(ctx, h.env.JS, "rep-huge", page, csvData, js); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), b); err != nil {
		t.Fatal(err)
	}
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	if n := mp.WaitCount(1, waitNormal); n != 1 {
		t.Fatalf("%d mails, want 1", n)
	}
	list, _ := mp.Messages()
	if n := len(list[0].Subject); n > mailer.MaxRenderedSubject {
		t.Fatalf("default report subject of %d bytes, want at most %d", n, mailer.MaxRenderedSubject)
	}
}
