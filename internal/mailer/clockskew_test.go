package mailer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/mailer"
	"groupflow/internal/testenv"
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

// claimedMember starts a harness whose member_selected event of campaign is
// claimed by owner, and returns a context for the test's broker calls.
func claimedMember(t *testing.T, campaign, owner string) (*harness, context.Context, *messages.MemberSelected, *mailer.Store) {
	t.Helper()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	ev := member(campaign, 1, offerJSON)
	return h, ctx, ev, claimLive(ctx, t, h, ev.EventID(), owner)
}

// TestLiveClaimNotTakenOverByAClockAhead: a claim's age is the time since
// the server stored it. An instance whose clock runs 10 minutes ahead of
// the server's (more than the 5-minute ClaimTimeout) must not read a claim
// another instance wrote a moment ago as stale and take it over — it would
// send the member's email (or the report mail) a second time. On its last
// delivery it dead-letters the event as claim_held; nothing is sent and
// the live owner's claim is left as it was.
func TestLiveClaimNotTakenOverByAClockAhead(t *testing.T) {
	h, ctx, ev, store := claimedMember(t, "clock-ahead", "alive")
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
	h, ctx, ev, store := claimedMember(t, "clock-behind", "crashed")
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

// failingClockKV fails every write of the clock probe (ClockKey).
type failingClockKV struct {
	jetstream.KeyValue
	probes atomic.Int32
}

func (k *failingClockKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if key == mailer.ClockKey {
		k.probes.Add(1)
		return 0, nats.ErrTimeout
	}
	return k.KeyValue.Put(ctx, key, value)
}

// TestFailedClockProbeTakesNoClaimOver: when the server's time cannot be
// read, a claim's age is unknown. The delivery must not guess it from the
// instance's clock (or take the claim for stale) and send: it is retried
// as any broker error is, and the last delivery dead-letters the event as
// exhausted, with nothing sent and the claim untouched.
func TestFailedClockProbeTakesNoClaimOver(t *testing.T) {
	h, ctx, ev, store := claimedMember(t, "clock-probe", "crashed")
	kv := &failingClockKV{}
	h.hookKV(func(inner jetstream.KeyValue) jetstream.KeyValue { kv.KeyValue = inner; return kv })
	sender := &countingSender{}
	failed := h.env.Watch(h.env.Subjects.Event(messages.EvtEmailFailed))
	h.startWith(sender, nil, func(c *mailer.Config) {
		c.MaxDeliver = 2
		mailer.SetClock(c, skewedClock(time.Hour)) // the instance's own clock calls the claim stale
	})
	h.publish(ev)
	f := testenv.Decode[messages.EmailFailed](t, failed.Next(waitNormal, nil))
	if f.SourceEventID != ev.EventID() || f.Permanent || !strings.Contains(f.Reason, "clock probe") {
		t.Errorf("email_failed = %+v, want the failed clock probe", f)
	}
	if n, p := sender.n.Load(), kv.probes.Load(); n != 0 || p != 2 {
		t.Fatalf("%d sends, %d probes; want none sent after a failed probe on each of the 2 deliveries", n, p)
	}
	rec, err := store.Get(ctx, ev.EventID())
	if err != nil || rec == nil || rec.Status != mailer.StatusSending || rec.Owner != "crashed" || rec.Claims != 1 {
		t.Errorf("record = %+v, %v; want the claim untouched", rec, err)
	}
}
