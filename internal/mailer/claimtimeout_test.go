package mailer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"

	"groupflow/internal/events"
	"groupflow/internal/mailer"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// heldSender counts sends; each one waits until release is closed (an SMTP
// server slow to answer DATA, within SendTimeout).
type heldSender struct {
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (s *heldSender) Send(context.Context, *gomail.Msg) error {
	s.calls.Add(1)
	s.entered <- struct{}{}
	<-s.release
	return nil
}

// TestClaimTimeoutMustOutliveASendAttempt: a "sending" claim is refreshed
// only between SMTP attempts, so a claim timeout shorter than one attempt
// (SendTimeout) lets a copy of the event (a dead-letter replay, a repeat
// outside the duplicate window) take over the claim of a live instance
// that is still waiting for its server's answer — and send the email a
// second time. The package doc says ClaimTimeout must exceed SendTimeout
// plus the wait between attempts; New must refuse a configuration that
// does not (and --claim-timeout 30s with the default --smtp-timeout 60s).
func TestClaimTimeoutMustOutliveASendAttempt(t *testing.T) {
	h := newHarness(t)
	mod := func(c *mailer.Config) { c.ClaimTimeout, c.SendTimeout = 10*time.Millisecond, 5*time.Second }
	cfg := testConfig(h)
	mod(&cfg)
	pub, err := events.NewJetStreamPublisher(h.env.NC, runtime.WatermillLogger(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mailer.New(cfg, mailer.Deps{JS: h.env.JS, Publisher: pub, Sender: nopSender{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		if !strings.Contains(err.Error(), "claim timeout") {
			t.Fatalf("New refused with %v, want an error naming the claim timeout", err)
		}
		return
	}

	// Accepted: show what it does.
	sender := &heldSender{entered: make(chan struct{}, 2), release: make(chan struct{})}
	defer func() {
		select {
		case <-sender.release:
		default:
			close(sender.release)
		}
	}()
	h.startWith(sender, nil, mod)
	h.publish(member("slow-smtp", 1, offerJSON))
	<-sender.entered // the first delivery is sending under its claim
	stored := h.env.Events(messages.EvtMemberSelected)
	m := nats.NewMsg(stored[0].Subject)
	m.Data, m.Header = stored[0].Data, stored[0].Header
	m.Header.Set(nats.MsgIdHdr, "replay-1")
	if _, err := h.env.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sender.entered:
		close(sender.release)
		t.Fatalf("a copy of the event took over the live claim and sent the email again (%d sends)", sender.calls.Load())
	case <-time.After(waitNormal):
		t.Fatalf("the copy was not handled in %s", waitNormal)
	}
}
