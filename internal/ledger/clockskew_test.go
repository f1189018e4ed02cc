package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
)

// skewed returns two ledgers over one real embedded server's ledger bucket
// (its own clock stamps the entries): the owner's, on this machine's clock,
// and another instance's, whose clock is off by skew.
func skewed(t *testing.T, skew time.Duration) (owner, taker *ledger.Ledger) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	kv, err := env.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	owner, taker = ledger.New(kv), ledger.New(kv)
	taker.SetClock(func() time.Time { return time.Now().Add(skew) })
	return owner, taker
}

func skewClaim(id, owner string, ttl time.Duration) ledger.Claim {
	return ledger.Claim{CommandType: typ, CommandID: id, Subject: "groups.cmd." + typ, Delivery: 1, Seq: 7, Owner: owner, TTL: ttl}
}

// TestClockAheadDoesNotTakeOverALiveLease: another instance whose clock is
// 10 minutes ahead of the owner's finds the lease the owner has just taken
// (TTL 30s). By its own clock the lease ended long ago; by the server's it
// has 30s left. It must leave it alone (and give the message back for
// about the lease's term, not minus 10 minutes): a take-over here is an
// Unsure second attempt that, while the owner creates the Wix group, may
// create a second one. Neither may its Fail or DeadLetter of another
// delivery cut the owner's lease, whose next write must still go through.
func TestClockAheadDoesNotTakeOverALiveLease(t *testing.T) {
	ctx := context.Background()
	owner, taker := skewed(t, 10*time.Minute)
	lease, _, err := owner.Acquire(ctx, skewClaim("ahead", me, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := taker.Acquire(ctx, skewClaim("ahead", other, 30*time.Second))
	var held *ledger.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("an instance 10 minutes ahead took over a lease acquired just now with TTL 30s: lease %v, err %v", p != nil, err)
	}
	if held.DuplicateCopy {
		t.Errorf("the same message taken for a second copy: %v", held)
	}
	if left := held.Until.Sub(time.Now().Add(10 * time.Minute)); left <= 0 || left > 31*time.Second {
		t.Errorf("HeldError.Until is %v from now on the taker's clock, want within the lease's 30s", left)
	}
	if _, err := taker.Fail(ctx, typ, "ahead", ledger.Failure{Err: "x", Delivery: 1, At: time.Now(), Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := taker.DeadLetter(ctx, typ, "ahead", ledger.Holder{Seq: 7, LeaseID: "another-delivery"}, "gone"); err != nil {
		t.Fatal(err)
	}
	rec, err := taker.Record(ctx, typ, "ahead")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Owner != me || rec.Failures != 0 || rec.Status != ledger.StatusProcessing {
		t.Errorf("the live lease was written over by an instance whose clock is ahead: %+v", rec)
	}
	if live, err := taker.Live(ctx, rec); err != nil || !live {
		t.Errorf("Live by the instance ahead: %v, %v; want true", live, err)
	}
	if err := lease.Hold(ctx); err != nil {
		t.Errorf("the owner's lease was lost: %v", err)
	}
	if err := lease.Checkpoint(ctx, "group", map[string]string{"id": "g-1"}); err != nil {
		t.Errorf("the owner could not checkpoint: %v", err)
	}
}

// TestClockBehindTakesOverAnExpiredLease: an instance whose clock is 10
// minutes behind the owner's finds the owner's lease live while the server
// says so, and takes it over as soon as the server's clock says it expired
// (the owner crashed), not 10 minutes later, even after its own Ledger.Fail
// of the message rewrote the record; while it is held, the message is given
// back for about the lease's term, not 10 minutes more.
func TestClockBehindTakesOverAnExpiredLease(t *testing.T) {
	ctx := context.Background()
	owner, taker := skewed(t, -10*time.Minute)
	const term = time.Second
	if _, _, err := owner.Acquire(ctx, skewClaim("behind", me, term)); err != nil {
		t.Fatal(err)
	}
	_, _, err := taker.Acquire(ctx, skewClaim("behind", other, term))
	var held *ledger.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("a live lease taken over: %v", err)
	}
	if left := held.Until.Sub(time.Now().Add(-10 * time.Minute)); left <= 0 || left > term+time.Second {
		t.Errorf("HeldError.Until is %v from now on the taker's clock, want within the lease's %v", left, term)
	}
	time.Sleep(term + 300*time.Millisecond) // the owner crashed: no renewal
	// A failure of the message counted meanwhile keeps the expired lease's
	// owner, and must not make it live again: the term it leaves is spent
	// (its UpdatedAt, on the clock 10 minutes behind, is not the owner's).
	if rec, err := taker.Fail(ctx, typ, "behind", ledger.Failure{Err: "x", Delivery: 1, At: time.Now(), Seq: 7}); err != nil || rec.Failures != 1 || rec.Owner != me {
		t.Fatalf("failure of an expired lease's message: %+v, %v", rec, err)
	}
	p, _, err := taker.Acquire(ctx, skewClaim("behind", other, 30*time.Second))
	if err != nil || p == nil {
		t.Fatalf("an instance 10 minutes behind did not take over a lease the server's clock says expired: %v", err)
	}
	if !p.Unsure() {
		t.Errorf("a take-over after a crash must be Unsure")
	}
}

// refusingClockKV refuses every probe of the server's clock (a full
// JetStream store refuses writes; reads still work).
type refusingClockKV struct{ jetstream.KeyValue }

func (k refusingClockKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if key == ledger.ClockKey {
		return 0, errors.New("insufficient resources")
	}
	return k.KeyValue.Put(ctx, key, value)
}

// blindBesideALease returns two ledgers over one real server's ledger
// bucket — the owner's, and one whose probes of the server's clock all
// fail (refusingClockKV) — and the owner's lease on command id (message 7).
func blindBesideALease(t *testing.T, id string) (owner, blind *ledger.Ledger, lease *ledger.Lease) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	kv, err := env.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	owner, blind = ledger.New(kv), ledger.New(refusingClockKV{kv})
	lease, _, err = owner.Acquire(context.Background(), skewClaim(id, me, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return owner, blind, lease
}

// TestDeadLetterBesideAnUnjudgedLeaseWritesNothing: the dead letter of one
// delivery of message 7 meets another delivery's lease on the command,
// and the server's clock cannot be read. DeadLetter must write nothing and
// say so with ErrUnjudged (the runtime then neither announces the failure
// nor acknowledges the message); the other lease goes on.
func TestDeadLetterBesideAnUnjudgedLeaseWritesNothing(t *testing.T) {
	ctx := context.Background()
	owner, blind, lease := blindBesideALease(t, "unjudged")
	rec, err := blind.DeadLetter(ctx, typ, "unjudged", ledger.Holder{Seq: 7, LeaseID: "another-delivery"}, "gone")
	if !errors.Is(err, ledger.ErrUnjudged) {
		t.Fatalf("DeadLetter beside a lease it cannot judge: record %+v, err %v; want ErrUnjudged", rec, err)
	}
	if got, err := owner.Record(ctx, typ, "unjudged"); err != nil || got.Status != ledger.StatusProcessing || got.Owner != me {
		t.Errorf("the record was written: %+v, %v", got, err)
	}
	if err := lease.Hold(ctx); err != nil {
		t.Errorf("the other delivery's lease was lost: %v", err)
	}
}

// TestDeadLetterOfItsOwnLeaseNeedsNoClock: the delivery that holds the
// command's lease (its Fail not written: the lease is still on the record)
// dead-letters it while the server's clock cannot be read. Whether that
// lease is live decides nothing — it is the caller's own — so DeadLetter
// must not probe the clock, nor fail with ErrUnjudged (which leaves the
// message to AckWait and the failure unannounced), but mark the command
// dead-lettered.
func TestDeadLetterOfItsOwnLeaseNeedsNoClock(t *testing.T) {
	ctx := context.Background()
	_, blind, lease := blindBesideALease(t, "own-lease")
	rec, err := blind.DeadLetter(ctx, typ, "own-lease", ledger.Holder{Seq: 7, LeaseID: lease.ID()}, "gone")
	if err != nil || rec == nil || rec.Status != ledger.StatusDeadLettered {
		t.Fatalf("DeadLetter by the lease's own delivery: record %+v, err %v; want dead-lettered", rec, err)
	}
}
