package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"groupflow/internal/ledger"
)

// TestForgedLeaseTermIsBounded: a record whose lease claims a term of ten
// years (LeaseUntil ten years past its UpdatedAt: forged by anyone who may
// write the bucket, or corrupted) must not hold the command for ten years
// — every instance would give the message back for the whole term (the
// HeldError's Until is its nak delay), never failing it, never
// dead-lettering it. No lease of this service is longer than a day; a day
// after the record was written, the command is taken over.
func TestForgedLeaseTermIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.id()
	f.put(t, &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Owner: other, OwnerSeq: 7, LastSeq: 7,
		UpdatedAt: t0, LeaseUntil: t0.Add(10 * 365 * 24 * time.Hour)})
	_, _, err := f.l.Acquire(ctx, f.claim(id, me, 7))
	var held *ledger.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("a lease written just now taken over: %v", err)
	}
	if left := held.Until.Sub(f.clock.Now()); left > 24*time.Hour {
		t.Errorf("a forged ten-year lease holds the command for %v (HeldError.Until), want at most a day", left)
	}
	f.clock.Advance(24*time.Hour + time.Second)
	if live, err := f.l.Live(ctx, f.get(t, id)); err != nil || live {
		t.Errorf("a day after it was written, the forged lease is live: %v, %v", live, err)
	}
	if lease, _, err := f.l.Acquire(ctx, f.claim(id, me, 7)); err != nil || lease == nil {
		t.Fatalf("a day after it was written, the forged ten-year lease still holds the command: %v", err)
	}
}
