package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
	"groupflow/internal/testutil"
)

const (
	me    = "me"
	other = "other"
	typ   = "provision_group"
	ttl   = 30 * time.Second
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	kv    *clockKV // the server's stamps on the test's clock
	l     *ledger.Ledger
	clock *testutil.Clock
	n     int
}

func newFixture(t *testing.T) *fixture {
	env := testenv.Start(t, testenv.Quiet())
	kv, err := env.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock(t0)
	ckv := newClockKV(kv, clock)
	f := &fixture{kv: ckv, l: ledger.New(ckv), clock: clock}
	f.l.SetClock(f.clock.Now)
	return f
}

// acquire takes command id's lease for owner, failing the test otherwise.
func (f *fixture) acquire(t *testing.T, id, owner string, seq uint64) *ledger.Lease {
	t.Helper()
	l, _, err := f.l.Acquire(context.Background(), f.claim(id, owner, seq))
	if err != nil || l == nil {
		t.Fatalf("acquire %s for %s: %v", id, owner, err)
	}
	return l
}

// id returns a new command id, so cases share one server.
func (f *fixture) id() string { f.n++; return fmt.Sprintf("c%d", f.n) }

func (f *fixture) claim(id, owner string, seq uint64) ledger.Claim {
	return ledger.Claim{CommandType: typ, CommandID: id, Subject: "groups.cmd." + typ, Delivery: 1, Seq: seq, Owner: owner, TTL: ttl}
}

// put writes rec as the command's record, as another writer would.
func (f *fixture) put(t *testing.T, rec *ledger.Record) {
	t.Helper()
	b, _ := json.Marshal(rec)
	if _, err := f.kv.Put(context.Background(), ledger.RecordKey(rec.CommandType, rec.CommandID), b); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) get(t *testing.T, id string) *ledger.Record {
	t.Helper()
	rec, err := f.l.Record(context.Background(), typ, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// states builds each record state of the package doc's table for id (nil: none).
var states = map[string]func(id string) *ledger.Record{
	"none": func(string) *ledger.Record { return nil },
	"held-same-seq": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Owner: other, OwnerSeq: 7, LastSeq: 7, UpdatedAt: t0, LeaseUntil: t0.Add(time.Minute)}
	},
	"held-other-seq": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Owner: other, OwnerSeq: 3, LastSeq: 3, UpdatedAt: t0, LeaseUntil: t0.Add(time.Minute)}
	},
	"expired": func(id string) *ledger.Record { // written by its owner 31s ago, for 30s
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Owner: other, OwnerSeq: 7, LastSeq: 7, UpdatedAt: t0.Add(-31 * time.Second), LeaseUntil: t0.Add(-time.Second),
			Steps: map[string]json.RawMessage{"group": json.RawMessage(`{"id":"g1"}`)}, Calls: 3}
	},
	"mine": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Owner: me, OwnerSeq: 7, LastSeq: 7, UpdatedAt: t0, LeaseUntil: t0.Add(time.Minute)}
	},
	"released": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, Failures: 2, LastError: "boom", LastSeq: 7}
	},
	"dead-lettered": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusDeadLettered, Reason: "boom", Failures: 10, FirstFailure: t0.Add(-time.Hour),
			Steps: map[string]json.RawMessage{"group": json.RawMessage(`{"id":"g1"}`)}, Calls: 5}
	},
	"completed": func(id string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusCompleted, EventType: "group_provisioned", EventID: "e1", Event: json.RawMessage(`{"id":1}`)}
	},
	"foreign": func(string) *ledger.Record {
		return &ledger.Record{CommandType: typ, CommandID: "someone-else", Status: ledger.StatusCompleted, EventType: "group_provisioned", EventID: "e2", Event: json.RawMessage(`{"id":2}`)}
	},
}

// seed writes state s for a new command id and returns the id.
func (f *fixture) seed(t *testing.T, s string) string {
	id := f.id()
	if rec := states[s](id); rec != nil {
		key := *rec
		key.CommandID = id // the key is id's, whatever the record says
		b, _ := json.Marshal(rec)
		at := f.clock.Now() // stamped when its writer wrote it
		if !rec.UpdatedAt.IsZero() {
			at = rec.UpdatedAt
		}
		if _, err := f.kv.putAt(context.Background(), ledger.RecordKey(typ, key.CommandID), b, at); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestAcquireTable: every state of the package doc's table × Acquire (by
// "me", message seq 7).
func TestAcquireTable(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		state string
		want  string // "lease", "fresh", "completed", "held", "duplicate", "collision"
		check func(t *testing.T, l *ledger.Lease, rec *ledger.Record)
	}{
		{"none", "fresh", nil},
		{"held-same-seq", "held", nil},
		{"held-other-seq", "duplicate", nil},
		{"expired", "lease", func(t *testing.T, l *ledger.Lease, rec *ledger.Record) {
			// Failover: the new owner resumes from the checkpoints and the count.
			if ok, _ := l.Load(context.Background(), "group", new(map[string]any)); !ok || rec.Calls != 3 || l.Calls() != 3 {
				t.Errorf("checkpoints or calls not kept on failover: %+v", rec)
			}
		}},
		{"mine", "lease", nil},
		{"released", "lease", func(t *testing.T, _ *ledger.Lease, rec *ledger.Record) {
			if rec.Failures != 2 {
				t.Errorf("failures of a transiently failed command reset by a redelivery: %+v", rec)
			}
		}},
		{"dead-lettered", "lease", func(t *testing.T, l *ledger.Lease, rec *ledger.Record) {
			// A replay: clean failure slate, checkpoints and calls kept.
			ok, _ := l.Load(context.Background(), "group", new(map[string]any))
			if rec.Failures != 0 || !rec.FirstFailure.IsZero() || rec.Reason != "" || !ok || rec.Calls != 5 {
				t.Errorf("replay of a dead letter: %+v (checkpoint found: %v)", rec, ok)
			}
		}},
		{"completed", "completed", nil},
		{"foreign", "collision", nil},
	}
	for _, c := range cases {
		t.Run(c.state, func(t *testing.T) {
			id := f.seed(t, c.state)
			before := f.get(t, id)
			l, done, err := f.l.Acquire(context.Background(), f.claim(id, me, 7))
			var held *ledger.HeldError
			var coll *ledger.CollisionError
			got := ""
			switch {
			case errors.As(err, &held) && held.DuplicateCopy:
				got = "duplicate"
			case errors.As(err, &held):
				got = "held"
			case errors.As(err, &coll):
				got = "collision"
			case err != nil:
				t.Fatal(err)
			case done != nil:
				got = "completed"
				if done.EventID != "e1" {
					t.Errorf("answered from %+v", done)
				}
			case l.Fresh():
				got = "fresh"
			default:
				got = "lease"
			}
			if got != c.want {
				t.Fatalf("Acquire on %s: %s (%v), want %s", c.state, got, err, c.want)
			}
			after := f.get(t, id)
			if l == nil {
				// Refused or answered: the record is not written.
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Errorf("record written by a refused Acquire:\n%+v\n%+v", before, after)
				}
				return
			}
			if after.Status != ledger.StatusProcessing || after.Owner != me || after.OwnerSeq != 7 || !after.LeaseUntil.Equal(t0.Add(ttl)) {
				t.Errorf("lease not taken: %+v", after)
			}
			if c.check != nil {
				c.check(t, l, after)
			}
		})
	}
}

// TestLeaseOpsTable: each write of a lease, on the record as the lease left
// it (ok) and after another writer moved it (ErrLost, record untouched).
func TestLeaseOpsTable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ops := map[string]func(l *ledger.Lease) error{
		"Renew":           func(l *ledger.Lease) error { return l.Renew(ctx) },
		"Checkpoint":      func(l *ledger.Lease) error { return l.Checkpoint(ctx, "step", map[string]int{"n": 1}) },
		"CheckpointLarge": func(l *ledger.Lease) error { return l.Checkpoint(ctx, "big", make([]int, ledger.InlineStepLimit)) },
		"Complete": func(l *ledger.Lease) error {
			return l.Complete(ctx, ledger.Outcome{EventType: "x", EventID: "e", Event: json.RawMessage(`{}`)})
		},
	}
	for name, op := range ops {
		for _, moved := range []string{"", "expired-taken", "dead-lettered", "completed"} {
			t.Run(name+"/"+firstNonEmpty(moved, "unchanged"), func(t *testing.T) {
				id := f.id()
				l, _, err := f.l.Acquire(ctx, f.claim(id, me, 7))
				if err != nil {
					t.Fatal(err)
				}
				switch moved {
				case "expired-taken": // failover: another instance took it over
					f.clock.Advance(ttl + time.Second)
					if _, _, err := f.l.Acquire(ctx, f.claim(id, other, 7)); err != nil {
						t.Fatal(err)
					}
				case "dead-lettered": // by an operator's hand: DeadLetter leaves a live lease alone
					rec := f.get(t, id)
					rec.Status, rec.Owner = ledger.StatusDeadLettered, ""
					f.put(t, rec)
				case "completed":
					rec := f.get(t, id)
					rec.Status, rec.Event, rec.Owner = ledger.StatusCompleted, json.RawMessage(`{"other":1}`), ""
					f.put(t, rec)
				}
				before := f.get(t, id)
				err = op(l)
				after := f.get(t, id)
				if moved == "" {
					if err != nil {
						t.Fatalf("%s on its own record: %v", name, err)
					}
					return
				}
				if !errors.Is(err, ledger.ErrLost) {
					t.Fatalf("%s after %s: %v, want ErrLost", name, moved, err)
				}
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Errorf("%s by a stale owner changed the record:\n%+v\n%+v", name, before, after)
				}
				if err := l.Renew(ctx); !errors.Is(err, ledger.ErrLost) {
					t.Errorf("a lost lease renewed: %v", err)
				}
			})
		}
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestFailReleaseDeadLetterTable: the writes made outside a lease, by
// message seq 7 (the one that acquired each seeded record) or 9 (another
// copy with the same command id: a re-send, forged or invalid).
func TestFailReleaseDeadLetterTable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	counted := func(n int) func(t *testing.T, before, after *ledger.Record) {
		return func(t *testing.T, before, after *ledger.Record) {
			if after == nil || after.Failures != n || after.LastError != "boom" || after.Status != ledger.StatusProcessing ||
				after.Owner != before.Owner || after.LeaseUntil != before.LeaseUntil || after.Sure {
				t.Errorf("want failures %d, lease untouched: %+v", n, after)
			}
		}
	}
	deadLettered := func(t *testing.T, _, after *ledger.Record) {
		if after == nil || after.Status != ledger.StatusDeadLettered || after.Reason != "gone" || after.Owner != "" {
			t.Errorf("want dead-lettered: %+v", after)
		}
	}
	cases := []struct {
		state, op string
		seq       uint64
		check     func(t *testing.T, before, after *ledger.Record)
	}{
		{"none", "Fail", 7, func(t *testing.T, _, after *ledger.Record) {
			counted(1)(t, &ledger.Record{}, after)
			if after.LastSeq != 7 {
				t.Errorf("the record a failure creates names its message: LastSeq %d", after.LastSeq)
			}
		}},
		// A message that never acquired the command gives up no lease, not
		// even one of its own instance, and writes nothing beside a live one
		// (another delivery of the same message holds it: a write would cut
		// it off).
		{"mine", "Fail", 7, unchanged},
		{"held-same-seq", "Fail", 7, unchanged},
		{"expired", "Fail", 7, counted(1)},
		{"released", "Fail", 7, counted(3)},
		{"dead-lettered", "Fail", 9, func(t *testing.T, _, after *ledger.Record) {
			if after.Failures != 11 || after.Status != ledger.StatusDeadLettered {
				t.Errorf("failure of a dead-lettered command: %+v", after)
			}
		}},
		// Another copy's failure is not the command's: it runs, or awaits
		// its redelivery, on behalf of message 7.
		{"held-other-seq", "Fail", 7, unchanged},
		{"mine", "Fail", 9, unchanged},
		{"released", "Fail", 9, unchanged},
		{"completed", "Fail", 7, unchanged},
		{"foreign", "Fail", 7, unchanged},

		{"none", "DeadLetter", 7, deadLettered},
		{"released", "DeadLetter", 7, deadLettered},
		{"expired", "DeadLetter", 7, deadLettered},
		// Its own lease still on the record (the lease's Fail could not be
		// written, or the owner crashed and the deliveries ran out).
		{"mine", "DeadLetter", 7, deadLettered},
		{"held-same-seq", "DeadLetter", 7, deadLettered},
		{"dead-lettered", "DeadLetter", 9, deadLettered},
		// Only the copy that was dead-lettered failed.
		{"held-other-seq", "DeadLetter", 7, unchanged},
		{"mine", "DeadLetter", 9, unchanged},
		{"released", "DeadLetter", 9, unchanged},
		{"completed", "DeadLetter", 7, unchanged},
		{"foreign", "DeadLetter", 7, unchanged},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/seq%d", c.op, c.state, c.seq), func(t *testing.T) {
			id := f.seed(t, c.state)
			before := f.get(t, id)
			var err error
			if c.op == "Fail" {
				_, err = f.l.Fail(ctx, typ, id, ledger.Failure{Err: "boom", Delivery: 2, At: t0, Seq: c.seq})
			} else {
				_, err = f.l.DeadLetter(ctx, typ, id, ledger.Holder{Seq: c.seq}, "gone")
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, before, f.get(t, id))
		})
	}
}

func unchanged(t *testing.T, before, after *ledger.Record) {
	t.Helper()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("record changed:\n%+v\n%+v", before, after)
	}
}

// TestLeaseLifecycle: acquire, checkpoints (inline and spilled) read back
// by the next owner after a failover, calls counted across owners, release,
// and completion dropping the checkpoints.
func TestLeaseLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.id()
	a, _, err := f.l.Acquire(ctx, f.claim(id, me, 7))
	if err != nil {
		t.Fatal(err)
	}
	calls := int64(4)
	a.CountCalls(func() int64 { return calls })
	big := make([]int, ledger.InlineStepLimit)
	if err := a.Checkpoint(ctx, "small", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Checkpoint(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if err := a.Checkpoint(ctx, "small", "s2"); err != nil {
		t.Fatal(err)
	}
	if rec := f.get(t, id); rec.Calls != 4 || string(rec.Steps["small"]) != `"s2"` || rec.Steps["big"] != nil {
		t.Fatalf("record after checkpoints: %+v", rec)
	}
	// A crash; the lease expires; another instance takes over (failover).
	f.clock.Advance(ttl + time.Second)
	b, _, err := f.l.Acquire(ctx, f.claim(id, other, 7))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	var got []int
	if ok, err := b.Load(ctx, "small", &s); !ok || err != nil || s != "s2" {
		t.Fatalf("inline checkpoint after failover: %q %v %v", s, ok, err)
	}
	if ok, err := b.Load(ctx, "big", &got); !ok || err != nil || len(got) != len(big) {
		t.Fatalf("spilled checkpoint after failover: %d %v %v", len(got), ok, err)
	}
	// The stale owner wakes up: none of its writes lands.
	if err := a.Checkpoint(ctx, "big", []int{1}); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("stale owner's spilled checkpoint: %v", err)
	}
	if ok, _ := b.Load(ctx, "big", &got); !ok || len(got) != len(big) {
		t.Fatal("the stale owner overwrote the new owner's state")
	}
	b.CountCalls(func() int64 { return 2 })
	if b.Calls() != 6 {
		t.Errorf("calls across owners: %d, want 6", b.Calls())
	}
	if err := b.Checkpoint(ctx, "big", []int{9}); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := f.get(t, id); rec.Owner != "" || rec.Calls != 6 {
		t.Fatalf("released: %+v", rec)
	}
	c, _, err := f.l.Acquire(ctx, f.claim(id, me, 8))
	if err != nil || c.Fresh() {
		t.Fatalf("acquire after release: %v fresh=%v", err, c != nil && c.Fresh())
	}
	if ok, _ := c.Load(ctx, "big", &got); !ok || len(got) != 1 {
		t.Fatalf("spilled checkpoint after release: %v %v", ok, got)
	}
	if err := c.Complete(ctx, ledger.Outcome{EventType: "x", EventID: "e", Event: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if rec := f.get(t, id); rec.Status != ledger.StatusCompleted || rec.Steps != nil || rec.Owner != "" || rec.Calls != 6 {
		t.Fatalf("completed: %+v", rec)
	}
}

// TestUnsureTable: Unsure (an earlier attempt may have sent a side effect
// it left no checkpoint of) is false only for a fresh command and for an
// in-process retry (Claim.After) of sure attempts that did not act, with
// nobody's write in between; every other take-over is unsure.
func TestUnsureTable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name string
		// prepare makes the earlier attempt(s) and returns the lease the
		// claim names as After (nil: none).
		prepare func(t *testing.T, id string) *ledger.Lease
		want    bool
	}{
		{"fresh", func(*testing.T, string) *ledger.Lease { return nil }, false},
		{"redelivery after a crash (no After)", func(t *testing.T, id string) *ledger.Lease {
			f.acquire(t, id, me, 7)
			return nil
		}, true},
		{"in-process retry, no side effect", func(t *testing.T, id string) *ledger.Lease {
			return f.acquire(t, id, me, 7)
		}, false},
		{"in-process retry after Acting", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			a.Acting()
			return a
		}, true},
		{"in-process retry after Acting taken back (refused)", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			a.Acting()
			a.Unacted()
			return a
		}, false},
		{"in-process retry after a checkpoint and renewal", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			if err := a.Checkpoint(ctx, "s", 1); err != nil {
				t.Fatal(err)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			return a
		}, false},
		{"retry of a retry that was unsure", func(t *testing.T, id string) *ledger.Lease {
			f.acquire(t, id, me, 7) // crashed attempt
			b, _, err := f.l.Acquire(ctx, f.claim(id, me, 7))
			if err != nil || !b.Unsure() {
				t.Fatalf("second attempt: %v unsure=%v", err, b != nil && b.Unsure())
			}
			return b
		}, true},
		{"redelivery after a sure attempt failed", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			if _, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"redelivery after a sure attempt was released (shutdown)", func(t *testing.T, id string) *ledger.Lease {
			if err := f.acquire(t, id, me, 7).Release(ctx); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"takeover by another owner after a sure attempt failed", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, other, 7)
			if _, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"redelivery after an acting attempt failed", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			a.Acting()
			if _, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, true},
		{"redelivery after an acting attempt was released", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			a.Acting()
			if err := a.Release(ctx); err != nil {
				t.Fatal(err)
			}
			return nil
		}, true},
		{"redelivery after an unsure attempt failed", func(t *testing.T, id string) *ledger.Lease {
			f.acquire(t, id, me, 7) // crashed attempt
			b := f.acquire(t, id, me, 7)
			if _, err := b.Fail(ctx, ledger.Failure{Err: "x", Delivery: 2, At: t0}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, true},
		{"crash after a redelivery that followed a sure failure", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			if _, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			f.acquire(t, id, me, 7) // then crashed: it may have acted
			return nil
		}, true},
		{"a stale owner's failure after another's sure failure", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			a.Acting()
			f.clock.Advance(ttl + time.Second)
			b := f.acquire(t, id, other, 7)
			if _, err := b.Fail(ctx, ledger.Failure{Err: "x", Delivery: 2, At: t0}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			return nil
		}, true},
		{"another owner wrote since After", func(t *testing.T, id string) *ledger.Lease {
			a := f.acquire(t, id, me, 7)
			f.clock.Advance(ttl + time.Second)
			b := f.acquire(t, id, other, 7) // failover; then it gives up
			if err := b.Release(ctx); err != nil {
				t.Fatal(err)
			}
			return a
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := f.id()
			cl := f.claim(id, me, 7)
			cl.After = c.prepare(t, id)
			lease, _, err := f.l.Acquire(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if lease.Unsure() != c.want {
				t.Errorf("Unsure = %v, want %v", lease.Unsure(), c.want)
			}
		})
	}
}

// TestLeaseHold: Hold writes nothing while over half the term is left,
// renews when less is, and reports ErrLost once another owner took over
// (the fence a checkpoint before a side effect used to be).
func TestLeaseHold(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.id()
	a := f.acquire(t, id, me, 7)
	until := a.Until()
	if err := a.Hold(ctx); err != nil || !a.Until().Equal(until) {
		t.Fatalf("fresh lease: Hold = %v, until %v -> %v (want no write)", err, until, a.Until())
	}
	f.clock.Advance(ttl/2 + time.Second)
	if err := a.Hold(ctx); err != nil || !a.Until().After(until) {
		t.Fatalf("half the term gone: Hold = %v, until %v -> %v (want a renewal)", err, until, a.Until())
	}
	f.clock.Advance(ttl + time.Second) // a's renewals fail; other takes over
	f.acquire(t, id, other, 7)
	if err := a.Hold(ctx); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("after a take-over: Hold = %v, want ErrLost", err)
	}
}

// TestDetachedLease: a lease outside the runtime keeps checkpoints in memory.
func TestDetachedLease(t *testing.T) {
	ctx := context.Background()
	l := ledger.Detached(typ, "x")
	if err := l.Checkpoint(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(ctx, "b", make([]int, ledger.InlineStepLimit)); err != nil {
		t.Fatal(err)
	}
	var n int
	if ok, err := l.Load(ctx, "a", &n); !ok || err != nil || n != 1 {
		t.Fatal(ok, err, n)
	}
	var big []int
	if ok, err := l.Load(ctx, "b", &big); !ok || err != nil || len(big) != ledger.InlineStepLimit {
		t.Fatal(ok, err, len(big))
	}
}

// TestSharedKeyCAS: two writers of a shared key never lose a write.
func TestSharedKeyCAS(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var v []string
	rev, err := f.l.Load(ctx, "shared.k", &v)
	if err != nil || rev != 0 {
		t.Fatal(rev, err)
	}
	r1, err := f.l.Store(ctx, "shared.k", []string{"a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Store(ctx, "shared.k", []string{"b"}, 0); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := f.l.Store(ctx, "shared.k", []string{"a", "c"}, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Store(ctx, "shared.k", []string{"a", "b"}, r1); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if err := f.l.Remove(ctx, "shared.k", r1); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("stale remove: %v", err)
	}
	r3, _ := f.l.Load(ctx, "shared.k", &v)
	if err := f.l.Remove(ctx, "shared.k", r3); err != nil {
		t.Fatal(err)
	}
	if rev, _ := f.l.Load(ctx, "shared.k", &v); rev != 0 {
		t.Fatalf("removed key still there at %d", rev)
	}
	if _, err := f.l.Store(ctx, "shared.k", []string{"d"}, 0); err != nil {
		t.Fatalf("create after remove: %v", err)
	}
}

// TestStaleLeaseGivesUpNothing: two leases of one owner (one process) on
// one command exist when a second lease is acquired by this instance
// between the first's handler returning (runtime.handle frees its in-process
// guard) and the deadLetter middleware recording the first's failure
// (Lease.Fail) or its shutdown (Lease.Release): a second copy of the
// command (a re-send, seq 8), or a redelivery of the same message (seq 7,
// delivery 2: redelivered after AckWait without keep-alives). The first
// lease's late give-up must not free the second's live lease, nor write the
// first's Sure over the second's attempt, which sends Create Group
// (Acting): otherwise another instance takes the command over at once, sure
// (no Wix lookup), while the second still sends (Hold needs no write with
// half a term left), and a second group is created.
func TestStaleLeaseGivesUpNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ups := []struct {
		name string
		up   func(*ledger.Lease) error
	}{
		{"Fail", func(a *ledger.Lease) error {
			_, err := a.Fail(ctx, ledger.Failure{Err: "x", Delivery: 1, At: t0})
			return err
		}},
		{"Release", func(a *ledger.Lease) error { return a.Release(ctx) }},
	}
	seconds := []struct {
		name     string
		seq      uint64
		delivery int
	}{{"another copy", 8, 1}, {"same message redelivered", 7, 2}}
	for _, second := range seconds {
		for _, c := range ups {
			t.Run(second.name+"/"+c.name, func(t *testing.T) {
				id := f.id()
				a := f.acquire(t, id, me, 7) // the first: fresh, sure, no side effect
				cl := f.claim(id, me, second.seq)
				cl.Delivery = second.delivery
				b, _, err := f.l.Acquire(ctx, cl) // the second, same instance
				if err != nil || b == nil {
					t.Fatal(err)
				}
				b.Acting() // b sends Create Group
				if err := c.up(a); err != nil {
					t.Fatal(err)
				}
				rec := f.get(t, id)
				if rec.Owner != me || rec.OwnerSeq != second.seq {
					t.Errorf("a's %s gave up b's live lease: owner %q seq %d sure %v", c.name, rec.Owner, rec.OwnerSeq, rec.Sure)
				}
				if rec.Sure {
					t.Errorf("a's %s wrote Sure over b's attempt, which acted", c.name)
				}
				if err := b.Hold(ctx); err != nil {
					t.Fatalf("b lost its lease to a's %s: %v", c.name, err)
				}
				if p, _, err := f.l.Acquire(ctx, f.claim(id, other, second.seq)); err == nil {
					t.Errorf("another owner took b's live lease over (Unsure = %v: false means it creates the group again without looking)", p.Unsure())
				}
			})
		}
	}
}

// TestStaleFailOfTheSameMessageLeavesTheLiveLeaseWritable: a (delivery 1
// of message 7) fails late, after b (delivery 2 of the same message,
// redelivered after AckWait, in this instance or another) acquired the
// command and sent Create Group. a's Fail must write nothing beside b's
// live lease (a write would move the record's revision): b's next write —
// the checkpoint of the group it created — must still be accepted, since
// nobody else acquired the command.
func TestStaleFailOfTheSameMessageLeavesTheLiveLeaseWritable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, owner := range []string{me, other} {
		t.Run("second owner "+owner, func(t *testing.T) {
			id := f.id()
			a := f.acquire(t, id, me, 7)
			if owner != me {
				f.clock.Advance(ttl + time.Second) // a's lease expired: another instance takes the redelivery
			}
			cl := f.claim(id, owner, 7)
			cl.Delivery = 2
			b, _, err := f.l.Acquire(ctx, cl)
			if err != nil || b == nil {
				t.Fatal(err)
			}
			b.Acting() // b sends Create Group
			if _, err := a.Fail(ctx, ledger.Failure{Err: "wix 503", Delivery: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			if err := b.Checkpoint(ctx, "group", map[string]string{"id": "g-1"}); err != nil {
				t.Errorf("b, the only live lease, could not checkpoint the group it created after a's late Fail: %v (rec %+v)", err, *f.get(t, id))
			}
		})
	}
}

// TestForgedCopyAfterAPreAcquireFailureDoesNotFailTheCommand: message 7
// (valid) failed before it could acquire the command (Acquire's write timed
// out; Ledger.Fail records it) and awaits its redelivery; its failure names
// it (LastSeq), whether it created the record or found one naming no
// message (written by an older version, or by a fired schedule's relay
// failure, Seq 0). A forged invalid copy, message 9, must then not count a
// failure nor mark the command dead-lettered (which announces
// command_failed).
func TestForgedCopyAfterAPreAcquireFailureDoesNotFailTheCommand(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, existing := range []bool{false, true} {
		t.Run(map[bool]string{false: "record created", true: "record naming no message"}[existing], func(t *testing.T) {
			id := f.id()
			if existing {
				f.put(t, &ledger.Record{CommandType: typ, CommandID: id, Status: ledger.StatusProcessing, StartedAt: t0})
			}
			if _, err := f.l.Fail(ctx, typ, id, ledger.Failure{Err: "acquire: timeout", Delivery: 1, At: t0, Seq: 7}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.l.Fail(ctx, typ, id, ledger.Failure{Err: "invalid", Delivery: 1, At: t0, Seq: 9}); err != nil {
				t.Fatal(err)
			}
			rec, err := f.l.DeadLetter(ctx, typ, id, ledger.Holder{Seq: 9}, "invalid")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status == ledger.StatusDeadLettered || rec.Failures != 1 {
				t.Errorf("a forged copy's dead letter failed the command message 7 still carries (announced command_failed): %+v", rec)
			}
		})
	}
}
