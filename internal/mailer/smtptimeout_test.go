package mailer_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// silentSMTP listens on a loopback port (held, so no race for it) and
// accepts connections that it never answers, not even with a greeting: an
// SMTP server that hangs. The connections are closed when the test ends.
func silentSMTP(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func testMsg(t *testing.T) *gomail.Msg {
	t.Helper()
	m := gomail.NewMsg()
	if err := m.From("news@acme.example"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("member@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Subject("hello")
	m.SetBodyString(gomail.TypeTextPlain, "hello")
	return m
}

// TestSMTPSendEndsWithItsContext: Send's context bounds the attempt
// (Config.SendTimeout, which the claim timeout is checked against). go-mail
// reads the context only while dialing and bounds the rest by the
// connection timeout, set once at the dial and again before MAIL: against a
// server that never answered, an attempt with a 300 ms context lasted the
// whole 30 s connection timeout (up to twice it for a server answering
// just in time), and a claim checked against SendTimeout was taken over
// while the attempt went on.
func TestSMTPSendEndsWithItsContext(t *testing.T) {
	port := silentSMTP(t)
	s, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: mailer.TLSNone, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, testMsg(t))
	took := time.Since(start)
	if err == nil {
		t.Fatal("a send to a server that never answers succeeded")
	}
	if took > 5*time.Second {
		t.Fatalf("Send took %s with a 300ms context (err %v)", took.Round(time.Millisecond), err)
	}
	if perm, _ := mailer.ClassifySMTP(err); perm {
		t.Fatalf("a timed-out attempt is permanent: %v", err)
	}
	if !strings.Contains(err.Error(), "time limit") {
		t.Errorf("error %q does not say the attempt ran out of time", err)
	}
}

// TestSilentSMTPServerIsDeadLettered: a member mail to an SMTP server that
// never answers ends in a dead letter (exhausted) after SendAttempts
// attempts of SendTimeout each, not of the SMTP connection timeout.
func TestSilentSMTPServerIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	port := silentSMTP(t)
	h.start(mailer.SMTPConfig{Port: port, Timeout: 30 * time.Second}, nil, func(c *mailer.Config) { c.MaxDeliver = 1 })
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	ev := member("c-silent", 1, offerJSON)
	h.publish(ev)

	f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
	if f.SourceEventID != ev.EventID() || f.Permanent || !strings.Contains(f.Reason, "time limit") {
		t.Fatalf("email_failed = %+v, want transient (exhausted) saying the attempt ran out of time", f)
	}
	dead := h.env.DeadLetters()
	if len(dead) != 1 || dead[0].CommandID != ev.EventID() || dead[0].Kind != messages.FailureExhausted {
		t.Fatalf("dead letters = %+v, want one exhausted for %s", dead, ev.EventID())
	}
}

// TestSMTPOverTLS: member mails go out over implicit TLS and over
// STARTTLS, with AUTH PLAIN (refused by go-mail without TLS).
func TestSMTPOverTLS(t *testing.T) {
	for _, c := range []struct{ mode, tls string }{
		{mailpittest.ImplicitTLS, mailer.TLSImplicit},
		{mailpittest.StartTLS, mailer.TLSStartTLS},
	} {
		t.Run(c.mode, func(t *testing.T) {
			h := newHarness(t)
			mp := mailpittest.StartWithTLS(t, c.mode)
			h.start(mailer.SMTPConfig{Port: mp.SMTPPort, TLS: c.tls, TLSSkipVerify: true, Auth: mailer.AuthPlain, Username: "u", Password: "p"}, nil, nil)
			h.publish(member("c-tls", 1, offerJSON))
			mp.WaitCount(1, waitNormal)
			if list, _ := mp.Messages(); len(list) != 1 || list[0].Username != "u" {
				t.Fatalf("messages = %+v", list)
			}
		})
	}
}
