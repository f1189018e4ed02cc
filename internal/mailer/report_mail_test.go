package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/report"
	"groupflow/internal/testenv"
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
	withRecipients, without := storeReport(ctx, t, h, at, "rep-1", "head@acme.example", "deputy@acme.example"), storeReport(ctx, t, h, at, "rep-2")
	for _, b := range [][]byte{withRecipients, withRecipients, without} {
		if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), b); err != nil {
			t.Fatal(err)
		}
	}
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil) // Run: member and report mails

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

// storeReport renders and stores report id and returns its report_generated body.
func storeReport(ctx context.Context, t *testing.T, h *harness, at time.Time, id string, to ...string) []byte {
	t.Helper()
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

// TestReportMailPermanentFailureDeadLettered: a report mail that cannot be
// built (its subject template fails) is not retried: it is dead-lettered on
// groups.dlq.report_generated with the reason and announced by a permanent
// email_failed naming the report's event, as member mails are; nothing is
// mailed and the consumer has nothing left.
func TestReportMailPermanentFailureDeadLettered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	if err := os.WriteFile(filepath.Join(h.tmpl, "report.subject.tmpl"), []byte("{{index .Report.Recipients 5}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	at := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	body := storeReport(ctx, t, h, at, "rep-bad", "head@acme.example")
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), body); err != nil {
		t.Fatal(err)
	}
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)

	ev := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, func(*nats.Msg) bool { return true }))
	if !ev.Permanent || ev.CommandID != "rep-bad" || ev.SourceEventID == "" || ev.Reason == "" {
		t.Errorf("email_failed %+v", ev)
	}
	dead := h.env.Read(h.env.Subjects.DLQStream(), h.env.Subjects.DLQ(messages.EvtReportGenerated))
	if len(dead) != 1 || dead[0].Header.Get(messages.HeaderDLQReason) == "" || dead[0].Header.Get(messages.HeaderDLQKind) != messages.FailurePermanent ||
		dead[0].Header.Get(messages.HeaderDLQHandler) != mailer.ReportDurable {
		t.Fatalf("dead letters %d: %+v", len(dead), dead)
	}
	if _, total := mp.Messages(); total != 0 {
		t.Errorf("%d mails, want none", total)
	}
}

// TestReportSubjectBounded: report.subject.tmpl renders at most
// MaxRenderedSubject bytes, as member subjects do (the event is the
// producer's, and a template ranging over it multiplies it): past that the
// report mail fails permanently, saying so, and nothing is mailed.
func TestReportSubjectBounded(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	tmpl := "{{range .Report.Recipients}}" + strings.Repeat("x", mailer.MaxRenderedSubject) + "{{end}}"
	if err := os.WriteFile(filepath.Join(h.tmpl, "report.subject.tmpl"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	body := storeReport(ctx, t, h, time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC), "rep-long", "head@acme.example", "deputy@acme.example")
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), body); err != nil {
		t.Fatal(err)
	}
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)

	ev := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, func(*nats.Msg) bool { return true }))
	if !ev.Permanent || ev.CommandID != "rep-long" || !strings.Contains(ev.Reason, "renders more than 16384 bytes") {
		t.Errorf("email_failed %+v, want permanent, saying the subject renders too long", ev)
	}
	if _, total := mp.Messages(); total != 0 {
		t.Errorf("%d mails, want none", total)
	}
}

// TestReportMailFailureLogsNoRecipient: an SMTP error quotes the addresses
// it concerns (go-mail's "affected recipient(s): …"); member mails strip the
// recipient's address from it, and a report mail must too — its recipients
// are people — in every log line above debug level, while the 4xx is retried
// until the server takes the mail.
func TestReportMailFailureLogsNoRecipient(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	const to = "Head.Teacher@acme.example"
	body := storeReport(ctx, t, h, time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC), "rep-451", to)
	mp.Chaos(451, 100)
	if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), body); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, zap.New(core), nil)
	waitFor(t, "a report mail failing with 451", waitNormal, func() bool {
		return logs.FilterMessage("report mail failed; it will be redelivered").Len() > 0
	})
	mp.Chaos(451, 0)
	mp.WaitCount(1, waitNormal)
	for _, e := range logs.All() {
		if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(strings.ToLower(line), strings.ToLower(to)) {
			t.Errorf("a %s log line carries the recipient's address: %s", e.Level, line)
		}
	}
}
