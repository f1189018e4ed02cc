package mailer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
)

// failingOnceSender fails its first send transiently, then sends nothing:
// it counts the sends it was asked for.
type failingOnceSender struct{ calls atomic.Int32 }

func (s *failingOnceSender) Send(context.Context, *gomail.Msg) error {
	if s.calls.Add(1) == 1 {
		return errors.New("smtp: connection reset by peer")
	}
	return nil
}

// TestLastDeliveryGivenBackByShutdownIsNotLost: the last of MaxDeliver
// deliveries is given back unacknowledged by a shutdown (here while it waits
// for the send rate), which is no failure of the email. The event must be
// delivered again and mailed by the next instance — not dropped by a
// consumer whose own delivery limit is MaxDeliver, which never redelivers
// it (no email, no dead letter, no email_failed).
func TestLastDeliveryGivenBackByShutdownIsNotLost(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	sender := &failingOnceSender{}
	first := h.startWith(sender, nil, func(c *mailer.Config) {
		c.MaxDeliver = 2
		c.SendAttempts = 1
		c.Rate, c.Burst = 0.001, 1 // the first delivery takes the only token
		c.ShutdownGrace = 100 * time.Millisecond
	})
	h.publish(member("last-delivery", 1, offerJSON))
	// Delivery 1 failed transiently; delivery 2, the last, waits for the rate.
	waitFor(t, "the last delivery waiting for the send rate", waitNormal, func() bool {
		return sender.calls.Load() == 1 && first.M.Stats().RateLimited == 1
	})
	first.Stop() // gives the last delivery back unacknowledged

	second := h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, func(c *mailer.Config) { c.MaxDeliver = 2 }) // the same configuration
	if n := mp.WaitCount(1, waitNormal); n != 1 {
		t.Fatalf("%d messages after the restart, want 1: the event given back on its last delivery was lost (dead letters: %d, stats %+v)",
			n, len(h.env.DeadLetters()), second.M.Stats())
	}
	h.waitDrained(waitNormal)
	if n := mp.Count(); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}
