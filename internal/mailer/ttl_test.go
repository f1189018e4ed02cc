package mailer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/events"
	"groupflow/internal/mailer"
	"groupflow/internal/runtime"
)

type nopSender struct{}

func (nopSender) Send(context.Context, *gomail.Msg) error { return nil }

// TestPrepareRefusesRecordsThatExpireBeforeTheirEvents: the send records are
// what keeps a member_selected event from being mailed twice; the package
// doc and --kv-ttl say they must outlive the events stream's MaxAge. A TTL
// shorter than that (here 1 hour against the stream's 7 days) lets any
// delivery of a still-stored event after its record expired (a re-created
// consumer delivers every stored event again; a replay after the duplicate
// window) send a second email. Prepare must refuse it rather than start.
func TestPrepareRefusesRecordsThatExpireBeforeTheirEvents(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	st, err := h.env.JS.Stream(ctx, h.env.Subjects.EventStream())
	if err != nil {
		t.Fatal(err)
	}
	maxAge := st.CachedInfo().Config.MaxAge
	if maxAge <= time.Hour {
		t.Fatalf("events stream MaxAge %s: the test wants one above an hour", maxAge)
	}
	pub, err := events.NewJetStreamPublisher(h.env.Conn(), runtime.WatermillLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(h.env.Conn())
	cfg := testConfig(h)
	cfg.Store.TTL = time.Hour
	m, err := mailer.New(cfg, mailer.Deps{JS: js, Publisher: pub, Sender: nopSender{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Logf("refused by New: %v", err)
		return
	}
	if err := m.Prepare(ctx); err == nil {
		t.Fatalf("Prepare accepted send records kept %s while the events stream keeps events %s: an event delivered after its record expired is mailed again", cfg.Store.TTL, maxAge)
	} else {
		t.Logf("refused: %v", err)
	}
}
