package mailer_test

import (
	"strings"
	"testing"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestRecipientNames sends to members whose names hold quotes, commas,
// backslashes, non-ASCII letters and a header-injection attempt, through a
// real Mailpit: each is delivered to its own address with its name intact
// (the injection neutralised onto one line, no extra header or recipient);
// an address carrying CR/LF or a display name is refused as a recipient
// error, nothing sent.
func TestRecipientNames(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))

	type person struct{ first, last, wantName string }
	good := map[string]person{} // email → person
	var evs []*messages.MemberSelected
	for i, p := range []person{
		{`Jo"hn`, "Doe", `Jo"hn Doe`},
		{"Smith,", "John", "Smith, John"},
		{"Zoë", "Ångström-山田", "Zoë Ångström-山田"},
		{`back\slash`, `O'Brien & "Co"`, `back\slash O'Brien & "Co"`},
		{"Eve\r\nBcc: victim@evil.example", "X\nSubject: pwned", "Eve Bcc: victim@evil.example X Subject: pwned"},
		{"\"\r\n\t", `<evil@evil.example>`, `" <evil@evil.example>`},
	} {
		ev := member("c-names", i+1, offerJSON)
		ev.FirstName, ev.LastName = p.first, p.last
		good[ev.Email] = p
		evs = append(evs, ev)
	}
	bad := map[string]bool{}
	for i, email := range []string{"member0091@example.com\r\nBcc: victim@evil.example", "Someone <member0092@example.com>",
		"member0093@example.com, victim@evil.example", "member0094@exa\x00mple.com"} {
		ev := member("c-names", 90+i, offerJSON)
		ev.Email = email
		bad[ev.EventID()] = true
		evs = append(evs, ev)
	}
	h.publish(evs...)

	for range bad {
		f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
		if !bad[f.SourceEventID] || !f.Permanent || !strings.Contains(f.Reason, "recipient address is not valid") && !strings.Contains(f.Reason, "no deliverable email address") {
			t.Errorf("email_failed = %+v, want a permanent recipient refusal of a bad address", f)
		}
	}
	mp.WaitCount(len(good), waitNormal)
	h.waitDrained(waitNormal)
	list, total := mp.Messages()
	if total != len(good) {
		t.Fatalf("mailpit has %d messages, want %d", total, len(good))
	}
	for _, s := range list {
		msg := mp.Message(s.ID)
		if len(msg.To) != 1 {
			t.Errorf("message %s has recipients %+v, want one", s.ID, msg.To)
			continue
		}
		p, ok := good[msg.To[0].Address]
		if !ok {
			t.Errorf("message to unexpected %+v", msg.To)
			continue
		}
		if msg.To[0].Name != p.wantName {
			t.Errorf("To name = %q, want %q", msg.To[0].Name, p.wantName)
		}
		hdr := mp.Headers(s.ID)
		if len(hdr["Bcc"]) != 0 || len(hdr["Subject"]) != 1 || len(hdr["To"]) != 1 {
			t.Errorf("headers of the message to %q were injected: Bcc %q Subject %q To %q", p.wantName, hdr["Bcc"], hdr["Subject"], hdr["To"])
		}
	}
	for _, d := range h.env.DeadLetters() {
		if !bad[d.CommandID] {
			t.Errorf("a good name was dead-lettered: %s", d.Reason)
		}
	}
}
