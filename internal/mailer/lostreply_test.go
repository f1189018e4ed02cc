package mailer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gomail "github.com/wneessen/go-mail"

	"groupflow/internal/mailer"
	"groupflow/messages"
)

// kvHookJS opens the send-record bucket through wrap (a test's KV hooks).
type kvHookJS struct {
	jetstream.JetStream
	wrap func(jetstream.KeyValue) jetstream.KeyValue
}

func (j *kvHookJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := j.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return j.wrap(kv), nil
}

// hookKV makes h's mailers open their bucket through wrap.
func (h *harness) hookKV(wrap func(jetstream.KeyValue) jetstream.KeyValue) {
	h.wrapJS = func(js jetstream.JetStream) jetstream.JetStream { return &kvHookJS{JetStream: js, wrap: wrap} }
}

// lostClaimKV stores the first record it creates (the first claim) and
// answers as a reply lost in a stream leader change would (nats: timeout).
type lostClaimKV struct {
	jetstream.KeyValue
	lost atomic.Bool
}

func (k *lostClaimKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	n, err := k.KeyValue.Create(ctx, key, value, opts...)
	if err == nil && k.lost.CompareAndSwap(false, true) {
		return 0, nats.ErrTimeout
	}
	return n, err
}

type countingSender struct{ n atomic.Int32 }

func (s *countingSender) Send(context.Context, *gomail.Msg) error { s.n.Add(1); return nil }

// TestLostClaimReplyDoesNotFailTheEmail: a member_selected event's "sending"
// claim is stored but its reply is lost, on the delivery before the last.
// The claim is this very message's: the last delivery must send the email
// (once) — not take its own claim for another live delivery's, wait for it
// (ClaimTimeout, 5 minutes by default) and, being the last, fail the email
// for good (email_failed, dead-lettered, never sent).
func TestLostClaimReplyDoesNotFailTheEmail(t *testing.T) {
	h := newHarness(t)
	kv := &lostClaimKV{}
	h.hookKV(func(inner jetstream.KeyValue) jetstream.KeyValue { kv.KeyValue = inner; return kv })
	sender := &countingSender{}
	h.startWith(sender, nil, func(c *mailer.Config) {
		c.MaxDeliver = 2
		c.ClaimTimeout = 5 * time.Minute // the default
	})
	sentSubj, failedSubj := h.env.Subjects.Event(messages.EvtEmailSent), h.env.Subjects.Event(messages.EvtEmailFailed)
	outcome := h.env.Watch(h.env.Subjects.Event("*"))
	h.publish(member("lost-claim", 1, offerJSON))

	got := outcome.Next(waitNormal, func(m *nats.Msg) bool { return m.Subject == sentSubj || m.Subject == failedSubj })
	if got.Subject != sentSubj {
		t.Fatalf("email_failed after the claim's reply was lost (sends: %d, claim lost: %v, dead letters: %d)",
			sender.n.Load(), kv.lost.Load(), len(h.env.DeadLetters()))
	}
	if !kv.lost.Load() || sender.n.Load() != 1 {
		t.Fatalf("claim lost %v, sends %d (want 1)", kv.lost.Load(), sender.n.Load())
	}
}
