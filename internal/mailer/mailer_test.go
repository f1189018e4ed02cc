package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

func TestEmailRenderedAndDelivered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	core, logs := observer.New(zapcore.DebugLevel)
	const password = "s3cret-Pa55word"
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort, Auth: mailer.AuthPlainNoEnc, Username: "groupmail-test", Password: password}, zap.New(core), nil)
	sent := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailSent))

	ev := member("spring-2026", 1, offerJSON)
	ev.FirstName = "<script>alert(1)</script>"
	ev.LastName = `O'Brien & "Co"`
	h.publish(ev)

	mp.WaitCount(1, waitNormal)
	evt := testenv.Decode[messages.EmailSent](t, sent.Next(waitNormal, nil))
	list, total := mp.Messages()
	if total != 1 {
		t.Fatalf("mailpit has %d messages, want 1", total)
	}
	msg := mp.Message(list[0].ID)

	wantMsgID := mailer.MessageID(ev.EventID(), "acme.example")
	if msg.MessageID != wantMsgID {
		t.Errorf("Message-ID = %q, want %q", msg.MessageID, wantMsgID)
	}
	if evt.SourceEventID != ev.EventID() || evt.MessageID != wantMsgID || evt.MemberID != ev.MemberID || evt.CampaignID != ev.CampaignID || evt.CommandID != ev.CommandID {
		t.Errorf("email_sent = %+v", evt)
	}
	if msg.Subject != "<script>alert(1)</script>, your spring offer: 20% off" {
		t.Errorf("subject = %q", msg.Subject)
	}
	if len(msg.To) != 1 || msg.To[0].Address != ev.Email {
		t.Errorf("to = %+v", msg.To)
	}
	if msg.From.Address != "news@acme.example" || msg.From.Name != "Acme Club" {
		t.Errorf("from = %+v", msg.From)
	}
	if msg.Username != "groupmail-test" {
		t.Errorf("SMTP auth user seen by mailpit = %q", msg.Username)
	}
	for _, want := range []string{"Hi <script>alert(1)</script>,", "20% off", "until May 31", "code SPRING20", "https://shop.acme.example/?utm=spring",
		"Unsubscribe: https://acme.example/unsub?m=member-0001&c=spring-2026"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, msg.Text)
		}
	}
	if strings.Contains(msg.HTML, "<script>") {
		t.Errorf("HTML body contains an unescaped script tag:\n%s", msg.HTML)
	}
	for _, want := range []string{"Hi &lt;script&gt;alert(1)&lt;/script&gt;,", "<strong>20% off</strong>", "<code", "SPRING20",
		`href="https://shop.acme.example/?utm=spring"`, `href="https://acme.example/unsub?m=member-0001&amp;c=spring-2026"`} {
		if !strings.Contains(msg.HTML, want) {
			t.Errorf("HTML body lacks %q:\n%s", want, msg.HTML)
		}
	}
	hdr := mp.Headers(list[0].ID)
	if got := hdr["List-Unsubscribe"]; len(got) != 1 || got[0] != "<https://acme.example/unsub?m=member-0001&c=spring-2026>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if got := hdr["List-Unsubscribe-Post"]; len(got) != 1 || got[0] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if got := hdr["X-Groupflow-Event-Id"]; len(got) != 1 || got[0] != ev.EventID() {
		t.Errorf("X-Groupflow-Event-Id = %q", got)
	}
	if st := r.M.Stats(); st.Sent != 1 || st.Failed != 0 || st.Duplicates != 0 {
		t.Errorf("stats = %+v", st)
	}

	// Secrets never logged; addresses only at debug level.
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, password) {
			t.Errorf("the SMTP password was logged: %s", line)
		}
		if e.Level > zapcore.DebugLevel && strings.Contains(line, ev.Email) {
			t.Errorf("an email address was logged at %s: %s", e.Level, line)
		}
	}
}

func TestTemplateErrorsAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))

	missingTemplate := member("c-missing", 1, `{"templateId":"autumn-offer","variables":{}}`)
	missingVariable := member("c-missing", 2, `{"templateId":"spring-offer","variables":{"discount":"20%","validUntil":"May 31","shopUrl":"https://x.example"}}`)
	noContent := member("c-missing", 3, ``)
	badID := member("c-missing", 4, `{"templateId":"../../etc/passwd"}`)
	cases := map[string]struct {
		ev     *messages.MemberSelected
		reason string
	}{
		missingTemplate.EventID(): {missingTemplate, `template "autumn-offer": missing file autumn-offer.subject.tmpl`},
		missingVariable.EventID(): {missingVariable, `map has no entry for key "code"`},
		noContent.EventID():       {noContent, "content.templateId is required"},
		badID.EventID():           {badID, "is not a valid template name"},
	}
	h.publish(missingTemplate, missingVariable, noContent, badID)

	for range cases {
		f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
		c, ok := cases[f.SourceEventID]
		if !ok {
			t.Fatalf("unexpected email_failed %+v", f)
		}
		if !f.Permanent || !strings.Contains(f.Reason, c.reason) || f.MemberID != c.ev.MemberID || f.CampaignID != "c-missing" {
			t.Errorf("email_failed = %+v, want permanent with reason containing %q", f, c.reason)
		}
	}
	dead := h.env.DeadLetters()
	if len(dead) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(cases))
	}
	for _, d := range dead {
		c, ok := cases[d.CommandID]
		if !ok {
			t.Fatalf("unexpected dead letter %+v", d)
		}
		if d.CommandType != messages.EvtMemberSelected || d.Kind != messages.FailurePermanent ||
			d.OriginalSubject != "groups.evt.member_selected" || d.Handler != "groupmail" || d.Deliveries != 1 ||
			!strings.Contains(d.Reason, c.reason) || d.Headers[messages.HeaderCEID] != c.ev.EventID() {
			t.Errorf("dead letter = %+v (reason %q), want reason containing %q", d, d.Reason, c.reason)
		}
		var body messages.MemberSelected
		if err := json.Unmarshal(d.Body, &body); err != nil || body.EventID() != c.ev.EventID() {
			t.Errorf("dead letter body is not the original event: %s", d.Body)
		}
	}
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 0 {
		t.Fatalf("%d messages sent, want none", n)
	}
	if st := r.M.Stats(); st.Failed != 4 || st.Sent != 0 {
		t.Errorf("stats = %+v", st)
	}

	// Add the missing template and republish the dead letter by hand
	// (`groupctl dlq replay` refuses an event's dead letter: replayed, it
	// would reach every consumer of the events stream).
	for _, suffix := range []string{mailer.SuffixSubject, mailer.SuffixText} {
		if err := os.WriteFile(filepath.Join(h.tmpl, "autumn-offer"+suffix), []byte("Autumn for {{.FirstName}}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dead {
		if d.CommandID != missingTemplate.EventID() {
			continue
		}
		h.republishDeadLetter(d, "replay-1")
	}
	mp.WaitCount(1, waitNormal)
	h.waitDrained(waitNormal)
	list, total := mp.Messages()
	if total != 1 || list[0].Subject != "Autumn for First1" || list[0].MessageID != mailer.MessageID(missingTemplate.EventID(), "acme.example") {
		t.Fatalf("after replay: %d messages %+v", total, list)
	}
}

func TestRedeliveredSentEventIsAckedWithoutMail(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	ev := member("c-dup", 1, offerJSON)
	h.publish(ev)
	mp.WaitCount(1, waitNormal)
	h.waitDrained(waitNormal)

	// The same event again, as a dead-letter replay or a second groupflow
	// publish outside the duplicate window would bring it: same payload and
	// ce-id, another Nats-Msg-Id, so the stream stores it again.
	stored := h.env.Events(messages.EvtMemberSelected)
	if len(stored) != 1 {
		t.Fatalf("%d member_selected events stored", len(stored))
	}
	for i := range 2 {
		h.republish(stored[0].Subject, stored[0].Data, stored[0].Header, fmt.Sprintf("redelivery-%d", i))
	}
	waitFor(t, "two duplicates skipped", waitNormal, func() bool { return r.M.Stats().Duplicates == 2 })
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 1 {
		t.Fatalf("%d messages in mailpit, want 1", n)
	}
	if n := len(h.env.Events(messages.EvtEmailSent)); n != 1 {
		t.Errorf("%d email_sent events stored, want 1 (deduplicated by id)", n)
	}
	if st := r.M.Stats(); st.Sent != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func campaign(name string, n int) ([]*messages.MemberSelected, map[string]bool) {
	evs := make([]*messages.MemberSelected, n)
	want := make(map[string]bool, n)
	for i := range n {
		evs[i] = member(name, i, offerJSON)
		want[mailer.MessageID(evs[i].EventID(), "acme.example")] = true
	}
	return evs, want
}

// checkExactlyOnce asserts Mailpit holds exactly one message per event.
func checkExactlyOnce(t *testing.T, mp *mailpittest.Server, want map[string]bool) {
	t.Helper()
	list, total := mp.Messages()
	seen := map[string]int{}
	for _, m := range list {
		seen[m.MessageID]++
	}
	if total != len(want) || len(list) != len(want) || len(seen) != len(want) {
		t.Errorf("mailpit: total %d, listed %d, distinct Message-IDs %d; want %d of each", total, len(list), len(seen), len(want))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("Message-ID %s received %d times", id, n)
		}
		if !want[id] {
			t.Errorf("unexpected Message-ID %s", id)
		}
	}
}

func TestCampaignOf300ExactlyOnce(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	evs, want := campaign("c-300", 300)
	h.publish(evs...)
	mp.WaitCount(300, waitLong)
	h.waitDrained(waitLong)
	checkExactlyOnce(t, mp, want)
	if n := len(h.env.Events(messages.EvtEmailSent)); n != 300 {
		t.Errorf("%d email_sent events, want 300", n)
	}
	if st := r.M.Stats(); st.Sent != 300 || st.Duplicates != 0 || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// crashingSender sends through inner; once n emails went out it signals
// crash and holds every later accepted send until release, so the crash
// hits emails that were accepted by the server but are not acknowledged.
type crashingSender struct {
	inner   mailer.Sender
	n       int64
	count   atomic.Int64
	crash   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *crashingSender) Send(ctx context.Context, m *gomail.Msg) error {
	if err := s.inner.Send(ctx, m); err != nil {
		return err
	}
	if s.count.Add(1) >= s.n {
		s.once.Do(func() { close(s.crash) })
		<-s.release
	}
	return nil
}

func TestCampaignOf300ExactlyOnceAcrossCrash(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	inner, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cs := &crashingSender{inner: inner, n: 100, crash: make(chan struct{}), release: make(chan struct{})}
	first := h.startWith(cs, nil, nil)
	evs, want := campaign("c-crash", 300)
	h.publish(evs...)

	select {
	case <-cs.crash:
	case <-time.After(waitLong):
		t.Fatal("no crash point reached")
	}
	first.M.Abort() // crash: nothing in flight is acknowledged
	close(cs.release)
	first.Stop() // and close its connections without draining
	atCrash := mp.Count()
	st1 := first.M.Stats()
	t.Logf("crashed after %d messages (stats %+v)", atCrash, st1)
	if atCrash >= 300 || atCrash < 100 {
		t.Fatalf("crash after %d messages; want between 100 and 299", atCrash)
	}

	second := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	mp.WaitCount(300, waitLong)
	h.waitDrained(waitLong)
	checkExactlyOnce(t, mp, want)
	st2 := second.M.Stats()
	t.Logf("restarted mailer: %+v", st2)
	if st1.Sent+st2.Sent != 300 {
		t.Errorf("sent %d + %d, want 300", st1.Sent, st2.Sent)
	}
	if st2.Duplicates < 1 {
		t.Errorf("the restarted mailer skipped %d redelivered sent events, want at least 1 (sent but unacknowledged at the crash)", st2.Duplicates)
	}
	if n := len(h.env.Events(messages.EvtEmailSent)); n != 300 {
		t.Errorf("%d email_sent events, want 300", n)
	}
}

func TestConnectionErrorRetriedUntilServerUp(t *testing.T) {
	h := newHarness(t)
	port := mailpittest.FreePort(t) // nothing listens here yet
	r := h.start(mailer.SMTPConfig{Port: port}, nil, func(c *mailer.Config) { c.MaxDeliver = 1000 })
	sent := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailSent))
	h.publish(member("c-retry", 1, offerJSON))

	waitFor(t, "retries against a closed port", waitNormal, func() bool { return r.M.Stats().Retried >= 3 })
	if st := r.M.Stats(); st.Sent != 0 || st.Failed != 0 {
		t.Fatalf("stats before the server is up = %+v", st)
	}
	mp := mailpittest.Start(t, port)
	mp.WaitCount(1, waitNormal)
	sent.Next(waitNormal, nil)
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	if len(h.env.DeadLetters()) != 0 {
		t.Fatal("a transient failure was dead-lettered")
	}
}

func TestSMTP4xxRetriedAnd5xxDeadLettered(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, func(c *mailer.Config) { c.MaxDeliver = 1000 })
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))

	// 451: retried (in process, then by redelivery) until the server recovers.
	mp.Chaos(451, 100)
	h.publish(member("c-4xx", 1, offerJSON))
	waitFor(t, "4xx retries", waitNormal, func() bool { return r.M.Stats().Retried >= 2 })
	mp.Chaos(451, 0)
	mp.WaitCount(1, waitNormal)
	h.waitDrained(waitNormal)

	// 550: permanent, dead-lettered at once, nothing sent.
	mp.Chaos(550, 100)
	ev := member("c-5xx", 2, offerJSON)
	h.publish(ev)
	f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
	mp.Chaos(550, 0)
	if !f.Permanent || f.SourceEventID != ev.EventID() || !strings.Contains(f.Reason, "550") {
		t.Errorf("email_failed = %+v", f)
	}
	if strings.Contains(f.Reason, ev.Email) {
		t.Errorf("the reason carries the address: %q", f.Reason)
	}
	dead := h.env.DeadLetters()
	if len(dead) != 1 || dead[0].CommandID != ev.EventID() || dead[0].Kind != messages.FailurePermanent || !strings.Contains(dead[0].Reason, "550") {
		t.Fatalf("dead letters = %+v", dead)
	}
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 1 {
		t.Fatalf("%d messages, want 1 (the 4xx one)", n)
	}
	if st := r.M.Stats(); st.Sent != 1 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestExhaustedDeliveriesAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	port := mailpittest.FreePort(t) // never up
	r := h.start(mailer.SMTPConfig{Port: port}, nil, func(c *mailer.Config) { c.MaxDeliver = 2; c.SendAttempts = 1 })
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	ev := member("c-exhausted", 1, offerJSON)
	h.publish(ev)
	f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
	if f.Permanent || f.SourceEventID != ev.EventID() || !strings.Contains(f.Reason, "connect") && !strings.Contains(f.Reason, "dial") {
		t.Errorf("email_failed = %+v", f)
	}
	dead := h.env.DeadLetters()
	if len(dead) != 1 || dead[0].Kind != messages.FailureExhausted || dead[0].Deliveries != 2 {
		t.Fatalf("dead letters = %+v", dead)
	}
	h.waitDrained(waitNormal)
	if st := r.M.Stats(); st.Failed != 1 || st.Retried != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestStaleClaimIsTakenOver(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	ctx := context.Background()
	store, err := mailer.OpenStore(ctx, h.env.JS, mailer.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A crash between SMTP and the "sent" record leaves a claim behind.
	ev := member("c-stale", 1, offerJSON)
	if _, err := store.Write(ctx, ev.EventID(), mailer.Record{Status: mailer.StatusSending, EventID: ev.EventID(), Owner: "crashed", Claims: 1, At: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, func(c *mailer.Config) { c.ClaimTimeout, c.SendTimeout = 1500*time.Millisecond, time.Second })
	h.publish(ev)
	mp.WaitCount(1, waitNormal)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("sent after %s, before the claim went stale", el)
	}
	h.waitDrained(waitNormal)
	rec, err := store.Get(ctx, ev.EventID())
	if err != nil || rec == nil || rec.Status != mailer.StatusSent || rec.Claims != 2 {
		t.Fatalf("record = %+v, %v", rec, err)
	}
	if st := r.M.Stats(); st.Sent != 1 {
		t.Errorf("stats = %+v", st)
	}

	// A fresh claim on the last delivery is dead-lettered, not dropped.
	ev2 := member("c-stale", 2, offerJSON)
	if _, err := store.Write(ctx, ev2.EventID(), mailer.Record{Status: mailer.StatusSending, EventID: ev2.EventID(), Owner: "alive", Claims: 1, At: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, func(c *mailer.Config) { c.ClaimTimeout = time.Hour; c.MaxDeliver = 1 })
	h.publish(ev2)
	f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
	if f.SourceEventID != ev2.EventID() || f.Permanent || !strings.Contains(f.Reason, "claim") {
		t.Errorf("email_failed = %+v", f)
	}
	if n := mp.Count(); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestSendRateIsLimited(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	r := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, func(c *mailer.Config) { c.Rate = 20; c.Burst = 1 })
	evs, want := campaign("c-rate", 11)
	start := time.Now()
	h.publish(evs...)
	mp.WaitCount(11, waitNormal)
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Errorf("11 emails at 20/s took %s, want at least 500ms", el)
	}
	if st := r.M.Stats(); st.RateLimited == 0 {
		t.Errorf("stats = %+v, want rate-limited sends", st)
	}
	h.waitDrained(waitNormal)
	checkExactlyOnce(t, mp, want)
}
