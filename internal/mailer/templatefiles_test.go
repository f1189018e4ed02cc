package mailer_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestTemplateFilesThatAreNoFilesAreDeadLettered: the template directory is
// untrusted config. A template file that is a FIFO blocked its read for
// ever, holding the renderer's lock, so no event was rendered again (each
// kept alive, none dead-lettered: the mailer stood still); a symlink to a
// device (/dev/zero) or a file of gigabytes was read whole into memory.
// Each is refused as a template error naming the file (dead letter,
// email_failed), and the next event is mailed.
func TestTemplateFilesThatAreNoFilesAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))

	for _, id := range []string{"fifo", "device", "huge"} {
		if err := os.WriteFile(filepath.Join(h.tmpl, id+mailer.SuffixSubject), []byte("Hello {{.FirstName}}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(h.tmpl, "fifo"+mailer.SuffixText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(h.tmpl, "device"+mailer.SuffixText)); err != nil {
		t.Fatal(err)
	}
	huge, err := os.Create(filepath.Join(h.tmpl, "huge"+mailer.SuffixText))
	if err != nil {
		t.Fatal(err)
	}
	if err := huge.Truncate(mailer.MaxTemplateFile + 1); err != nil { // sparse: no disk
		t.Fatal(err)
	}
	huge.Close()

	cases := map[string]struct {
		ev     *messages.MemberSelected
		reason string
	}{}
	for i, c := range []struct{ id, reason string }{
		{"fifo", "fifo.txt.tmpl is not a regular file (a FIFO)"},
		{"device", "device.txt.tmpl is not a regular file (a device)"},
		{"huge", "huge.txt.tmpl is larger than"},
	} {
		ev := member("c-files", i+1, `{"templateId":"`+c.id+`"}`)
		cases[ev.EventID()] = struct {
			ev     *messages.MemberSelected
			reason string
		}{ev, c.reason}
		// One at a time: the FIFO first, so that a stuck read fails the
		// test here rather than read /dev/zero into memory behind it.
		h.publish(ev)
		f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
		if f.SourceEventID != ev.EventID() || !f.Permanent || !strings.Contains(f.Reason, c.reason) {
			t.Fatalf("email_failed = %+v, want permanent for %s with reason containing %q", f, c.id, c.reason)
		}
	}
	dead := h.env.DeadLetters()
	if len(dead) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(cases))
	}
	for _, d := range dead {
		c, ok := cases[d.CommandID]
		if !ok || d.Kind != messages.FailurePermanent || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("dead letter %+v (reason %q), want permanent with reason containing %q", d, d.Reason, c.reason)
		}
	}

	// The mailer goes on.
	h.publish(member("c-files", 9, offerJSON))
	mp.WaitCount(1, waitNormal)
	h.waitDrained(waitNormal)
}

// TestTemplateThatRendersTooMuchIsDeadLettered: the event's variables are
// the producer's, the templates the operator's; a template that ranges over
// a list variable multiplies it. A 200 kB event (100,000 list items) with a
// 200-byte row per item rendered 20 MB of text and as much HTML, each held
// in memory and sent (four such events at once: 160 MB). Each part is
// bounded (MaxRenderedBody, MaxRenderedSubject): more is a template error
// saying which part, dead-lettered, no mail.
func TestTemplateThatRendersTooMuchIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	row := strings.Repeat("x", 200)
	for name, body := range map[string]string{
		"rows" + mailer.SuffixSubject:  "Your {{len .Variables.items}} items",
		"rows" + mailer.SuffixText:     "{{range .Variables.items}}" + row + "\n{{end}}",
		"title" + mailer.SuffixSubject: "{{range .Variables.items}}" + row + "{{end}}",
		"title" + mailer.SuffixText:    "hello",
	} {
		if err := os.WriteFile(filepath.Join(h.tmpl, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	items := strings.TrimSuffix(strings.Repeat("0,", 100_000), ",")
	for i, c := range []struct{ id, reason string }{
		{"rows", `template "rows": render text body: renders more than`},
		{"title", `template "title": render subject: renders more than`},
	} {
		ev := member("c-big", i+1, `{"templateId":"`+c.id+`","variables":{"items":[`+items+`]}}`)
		h.publish(ev)
		f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
		if f.SourceEventID != ev.EventID() || !f.Permanent || !strings.Contains(f.Reason, c.reason) {
			t.Fatalf("email_failed = %+v, want permanent for %s with reason containing %q", f, c.id, c.reason)
		}
	}
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 0 {
		t.Fatalf("%d messages sent, want none", n)
	}
	// The bound leaves room: the same template with 1,000 items is mailed.
	h.publish(member("c-big", 9, `{"templateId":"rows","variables":{"items":[`+strings.TrimSuffix(strings.Repeat("0,", 1000), ",")+`]}}`))
	mp.WaitCount(1, waitNormal)
}
