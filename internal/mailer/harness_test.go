package mailer_test

// The mailer tests' harness: a broker with groupflow's topology, sample
// templates, a mailer started on it, and campaigns to publish.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/mailer"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

const (
	testFrom   = "Acme Club <news@acme.example>"
	testUnsub  = "https://acme.example/unsub?m={{.MemberID}}&c={{.CampaignID}}"
	offerVars  = `"variables":{"discount":"20%","validUntil":"May 31","code":"SPRING20","shopUrl":"https://shop.acme.example/?utm=spring"}`
	offerJSON  = `{"templateId":"spring-offer",` + offerVars + `}`
	waitLong   = 60 * time.Second
	waitNormal = 20 * time.Second
)

// harness is a broker with groupflow's topology, a "groupflow" events
// publisher, and the repository's sample templates.
type harness struct {
	t      *testing.T
	env    *testenv.Env
	events *events.Publisher
	tmpl   string
	// wrapJS, if set, wraps the mailer's JetStream (a test's broker hooks).
	wrapJS func(jetstream.JetStream) jetstream.JetStream
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	evts, _ := env.EventPublisher()
	dir := t.TempDir()
	for _, suffix := range []string{mailer.SuffixSubject, mailer.SuffixText, mailer.SuffixHTML} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "templates", "spring-offer"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "spring-offer"+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, env: env, events: evts, tmpl: dir}
}

// running is a mailer running on its own NATS connections.
type running struct {
	M      *mailer.Mailer
	nc     *nats.Conn
	pubNC  *nats.Conn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Stop cancels the mailer, waits for Run, and closes its connections
// without draining (what a killed process leaves behind).
func (r *running) Stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			panic(err)
		}
		r.pubNC.Close()
		r.nc.Close()
	})
}

func testConfig(h *harness) mailer.Config {
	return mailer.Config{
		Templates: h.tmpl, From: testFrom, UnsubscribeURL: testUnsub,
		Concurrency: 4, AckWait: 2 * time.Second, ClaimTimeout: 3 * time.Second,
		SendTimeout: 2 * time.Second, SendAttempts: 2, RetryInitial: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		NakDelay: func(int) time.Duration { return 200 * time.Millisecond }, ShutdownGrace: 5 * time.Second,
	}
}

func (h *harness) start(smtpCfg mailer.SMTPConfig, log *zap.Logger, mod func(*mailer.Config)) *running {
	h.t.Helper()
	if smtpCfg.Host == "" {
		smtpCfg.Host = "127.0.0.1"
	}
	if smtpCfg.TLS == "" {
		smtpCfg.TLS = mailer.TLSNone
	}
	if smtpCfg.Timeout == 0 {
		smtpCfg.Timeout = 5 * time.Second
	}
	sender, err := mailer.NewSMTPSender(smtpCfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.startWith(sender, log, mod)
}

func (h *harness) startWith(sender mailer.Sender, log *zap.Logger, mod func(*mailer.Config)) *running {
	h.t.Helper()
	cfg := testConfig(h)
	if mod != nil {
		mod(&cfg)
	}
	if log == nil {
		log = zaptest.NewLogger(h.t, zaptest.Level(zap.ErrorLevel))
	}
	nc, err := nats.Connect(h.env.Server.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	pubNC, err := nats.Connect(h.env.Server.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	pub, err := events.NewJetStreamPublisher(pubNC, runtime.WatermillLogger(log))
	if err != nil {
		h.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.wrapJS != nil {
		js = h.wrapJS(js)
	}
	m, err := mailer.New(cfg, mailer.Deps{JS: js, Publisher: pub, Sender: sender, Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		if h.t.Failed() {
			cancel()
		}
	}()
	if err := m.Prepare(ctx); err != nil {
		h.t.Fatal(err)
	}
	r := &running{M: m, nc: nc, pubNC: pubNC, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	h.t.Cleanup(r.Stop)
	return r
}

func member(campaign string, i int, content string) *messages.MemberSelected {
	return &messages.MemberSelected{
		EventMeta:  messages.EventMeta{CommandID: "cmd-" + campaign, CorrelationID: "corr-" + campaign, SiteID: "test-site"},
		CampaignID: campaign,
		MemberID:   fmt.Sprintf("member-%04d", i),
		ContactID:  fmt.Sprintf("contact-%04d", i),
		Email:      fmt.Sprintf("member%04d@example.com", i),
		FirstName:  fmt.Sprintf("First%d", i),
		LastName:   "Last",
		GroupIDs:   []string{"group-1"},
		Content:    json.RawMessage(content),
	}
}

func (h *harness) publish(evs ...*messages.MemberSelected) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ev := range evs {
		if err := h.events.Publish(ctx, ev); err != nil {
			h.t.Fatalf("publish: %v", err)
		}
	}
}

// waitDrained waits until the mailer's consumer has nothing pending and
// nothing unacknowledged.
func (h *harness) waitDrained(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := h.env.JS.Consumer(ctx, h.env.Subjects.EventStream(), mailer.DefaultDurable)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(ctx)
		}
		cancel()
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("consumer not drained after %s: %+v %v", timeout, info, err)
		}
		time.Sleep(20 * time.Millisecond) // polling consumer state
	}
}

// waitFor polls cond (a counter) until it holds.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
}

// republish publishes body and header again on subject, with Nats-Msg-Id
// msgID (so the stream stores it again).
func (h *harness) republish(subject string, body []byte, header nats.Header, msgID string) {
	h.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = body
	for k, v := range header {
		m.Header[k] = v
	}
	m.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := h.env.JS.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// republishDeadLetter publishes dead letter d's body and headers again on
// its original subject, with Nats-Msg-Id msgID.
func (h *harness) republishDeadLetter(d *dlq.Entry, msgID string) {
	h.t.Helper()
	header := nats.Header{}
	for k, v := range d.Headers {
		header.Set(k, v)
	}
	h.republish(d.OriginalSubject, d.Body, header, msgID)
}
