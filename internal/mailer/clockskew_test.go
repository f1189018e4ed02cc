package mailer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/mailer"
	"groupflow/messages"
)

// skewedClock is a clock off the server's by skew.
func skewedClock(skew time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(skew) }
}

// claimLive stores a "sending" claim of owner for eventID, as an instance
// that is sending the email right now leaves it, and returns the store.
func claimLive(ctx context.Context, t *testing.T, h *harness, eventID, owner string) *mailer.Store {
	t.Helper()
	store, err := mailer.OpenStore(ctx, h.env.JS, mailer.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Write(ctx, eventID, mailer.Record{Status: mailer.StatusSending, EventID: eventID, Owner: owner, Claims: 1, At: time.Now().UTC()}, 0); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestLiveClaimNotTakenOverByAClockAhead: a claim's age is the time since
// the server stored it. An instance whose clock runs 10 minutes ahead of
// the server's (more than the 5-minute ClaimTimeout) must not read a claim
// another instance wrote a moment ago as stale and take it over — it would
// send the member's email (or the report mail) a second time. On its last
// delivery it dead-letters the event as claim_held; nothing is sent and
// the live owner's claim is left as it was.
func TestLiveClaimNotTakenOverByAClockAhead(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev := member("clock-ahead", 1, offerJSON)
	store := claimLive(ctx, t, h, ev.EventID(), "alive")
	report := storeReport(ctx, t, h, time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC), "rep-clock", "head@acme.example")
	reportID := messages.EventID(messages.EvtReportGenerated, "rep-clock")
	claimLive(ctx, t, h, reportID, "alive")

	sender := &countingSender{}
	h.startWith(sender, nil, func(c *mailer.Config) {
		c.ClaimTimeout = 5 * time.Minute // the default
		c.MaxDeliver = 1
		mailer.SetClock(c, skewedClock(10*time.Minute))
	})
	h.publish(ev)
	if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtReportGenerated), report); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both events sent or dead-lettered", waitNormal, func() bool {
		return sender.n.Load() > 0 || len(h.env.DeadLetters()) == 2
	})
	if n := sender.n.Load(); n != 0 {
		t.Fatalf("an instance whose clock is 10 minutes ahead took over a live claim and sent %d mail(s) a second time", n)
	}
	for _, d := range h.env.DeadLetters() {
		if d.CommandID != ev.EventID() && d.CommandID != reportID || !strings.Contains(d.Reason, "claim") {
			t.Errorf("dead letter %+v, want the claim held", d)
		}
	}
	for _, id := range []string{ev.EventID(), reportID} {
		rec, err := store.Get(ctx, id)
		if err != nil || rec == nil || rec.Status != mailer.StatusSending || rec.Owner != "alive" || rec.Claims != 1 {
			t.Errorf("record of %s = %+v, %v; want the live owner's claim untouched", id, rec, err)
		}
	}
}

// TestStaleClaimTakenOverOnTimeByAClockBehind: an instance whose clock runs
// 10 minutes behind the server's must take over a claim left by a crash
// once it is ClaimTimeout old on the server's clock, not 10 minutes later.
func TestStaleClaimTakenOverOnTimeByAClockBehind(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev := member("clock-behind", 1, offerJSON)
	store := claimLive(ctx, t, h, ev.EventID(), "crashed")
	sender := &countingSender{}
	sent := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailSent))
	h.startWith(sender, nil, func(c *mailer.Config) {
		c.ClaimTimeout, c.SendTimeout = 1500*time.Millisecond, time.Second
		mailer.SetClock(c, skewedClock(-10*time.Minute))
	})
	h.publish(ev)
	sent.Next(waitNormal, func(*nats.Msg) bool { return true })
	rec, err := store.Get(ctx, ev.EventID())
	if err != nil || rec == nil || rec.Status != mailer.StatusSent || rec.Claims != 2 || sender.n.Load() != 1 {
		t.Fatalf("record = %+v, %v; sends %d; want sent once under the second claim", rec, err, sender.n.Load())
	}
}
