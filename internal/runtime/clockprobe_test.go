package runtime_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/broker"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// The premise of TestDeadLetterBesideALiveLeaseOfTheSameMessageIsNotSilentlyAcked
// (delivery b of message 7 leased the command while delivery a still
// works on it, and a fails permanently), with the server's clock
// unreadable from a (every probe of ledger.ClockKey fails: a full
// JetStream store refuses writes, reads still work). Whether b's lease is
// live is then unknown, and a must settle nothing: neither dead-letter
// message 7 nor acknowledge it under b (b's outcome decides). Before, a's
// Lease.Fail returned no record with its probe's error, so a took the
// record for nobody's: it stored a dead letter of a command b runs,
// announced it failed and acknowledged b's message.
func TestDeadLetterBesideALeaseThatCannotBeJudgedIsNotStored(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	bucket, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	var blind atomic.Bool
	hookLedger(t, env, &recordKV{put: func(key string, next func() (uint64, error)) (uint64, error) {
		if key == ledger.ClockKey && blind.Load() {
			return 0, errInjected
		}
		return next()
	}})
	h := newReportHandler(func(hctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt > 1 {
			return nil
		}
		// b acquires (what ledger.Acquire writes for another owner).
		if err := leaseToB(ctx, bucket, ledger.RecordKey(cmd.Type, cmd.ID), cmd.StreamSeq, cmd.Delivery+1); err != nil {
			return err
		}
		blind.Store(true)
		return failure.Permanent(errors.New("wix 400: bad request"))
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	pub := env.Publish(messages.CmdGenerateReport, `{"id":"blind-msg"}`)
	if ackedWithDeadLetter(t, env, pub) {
		t.Fatalf("message %d dead-lettered (%d entries, %d command_failed) and acknowledged though b's lease on it could not be judged",
			pub.Sequence, len(env.DeadLetters()), len(env.Events(messages.EvtCommandFailed)))
	}
	if n := len(env.DeadLetters()); n != 0 {
		t.Errorf("a's failure dead-lettered message %d (%d entries) though b's lease on it could not be judged", pub.Sequence, n)
	}
}

// TestInvalidCopyLeavesARunningCommandAloneWhenTheClockCannotBeRead is
// TestInvalidCopyLeavesARunningCommandAlone with every probe of the
// server's clock failing once copy 1 runs (a full JetStream store refuses
// writes, reads still work). The invalid copy's dead letter needs no clock
// to see that another message (copy 1) acquired the command last: it must
// still be stored unannounced, not make the runtime announce command_failed
// for a command that runs and will complete.
func TestInvalidCopyLeavesARunningCommandAloneWhenTheClockCannotBeRead(t *testing.T) {
	env := testenv.Start(t)
	var blind atomic.Bool
	hookLedger(t, env, &recordKV{put: func(key string, next func() (uint64, error)) (uint64, error) {
		if key == ledger.ClockKey && blind.Load() {
			return 0, errInjected
		}
		return next()
	}})
	acting, release := make(chan struct{}), make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt == 1 {
			cmd.Lease.Acting()
			close(acting)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	env.Publish(messages.CmdGenerateReport, `{"id":"forge-blind","top":3}`, "Nats-Msg-Id", "real")
	select {
	case <-acting:
	case <-time.After(20 * time.Second):
		t.Fatal("copy 1 never ran")
	}
	blind.Store(true)
	publishInvalidCopy(t, env, "forge-blind", 1) // copy 1 stays pending
	ctx := context.Background()
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "forge-blind")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusProcessing || rec.Owner == "" {
		t.Errorf("while copy 1 runs, the invalid copy left its record %s, owner %q", rec.Status, rec.Owner)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a command that is running and will complete", n)
	}
	blind.Store(false)
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	close(release)
	done.Next(30*time.Second, testenv.ForCommand("forge-blind"))
}

// Delivery a of message 7 fails permanently and records it (Lease.Fail
// stores); before a's dead letter is recorded in the ledger, delivery b
// of the same message leases the command, and from then on the server's
// clock cannot be read (every probe of ledger.ClockKey fails). Whether b's
// lease is live is unknown, so a must neither announce command_failed for
// a command b may be running nor acknowledge message 7 under b: its dead
// letter stays stored, unannounced, and the message is left to its
// redelivery. Before, Ledger.DeadLetter's probe error made a announce the
// failure anyway and acknowledge the message.
func TestDeadLetterNotAnnouncedWhenALeaseBesideItCannotBeJudged(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	bucket, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	var failing, blind atomic.Bool
	var seq atomic.Uint64
	hookLedger(t, env, &recordKV{
		put: func(key string, next func() (uint64, error)) (uint64, error) {
			if key == ledger.ClockKey && blind.Load() {
				return 0, errInjected
			}
			return next()
		},
		update: func(next func() (uint64, error)) (uint64, error) {
			rev, err := next()
			if err != nil || !failing.CompareAndSwap(true, false) {
				return rev, err
			}
			// a's Lease.Fail is stored: b acquires the same message.
			if lerr := leaseToB(ctx, bucket, ledger.RecordKey(messages.CmdGenerateReport, "unjudged"), seq.Load(), 2); lerr != nil {
				t.Error(lerr)
			}
			blind.Store(true)
			return rev, err
		},
	})
	h := newReportHandler(func(hctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt > 1 {
			return nil
		}
		seq.Store(cmd.StreamSeq)
		failing.Store(true)
		return failure.Permanent(errors.New("wix 400: bad request"))
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	pub := env.Publish(messages.CmdGenerateReport, `{"id":"unjudged"}`)
	if ackedWithDeadLetter(t, env, pub) {
		t.Errorf("message %d acknowledged with its dead letter though b's lease on it could not be judged", pub.Sequence)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) beside b's lease, which could not be judged", n)
	}
}
