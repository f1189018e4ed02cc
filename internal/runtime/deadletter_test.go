package runtime_test

// Dead letters and their announcements: a command that fails is announced
// once (command_failed, or its recorded outcome republished), and a dead
// letter beside another delivery's live lease neither acknowledges that
// delivery's message nor announces for it.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// A command fails permanently on its own lease (the only copy), and one
// ledger write of that lease goes wrong: the lease's Fail is not stored, or
// an earlier renewal was stored but its reply lost (so the lease's revision
// is stale). The record then still shows the command's own live lease. Were
// it taken for another copy's, the message would be acknowledged and its
// dead letter stored, but no command_failed published and the record left
// "processing" for ever; the record carries the lease's id, so it is known
// for this lease's own: both are recorded and announced.
func TestOwnFailedCommandIsAnnouncedWhenItsLeaseWriteWentWrong(t *testing.T) {
	for _, c := range []struct {
		name string
		run  func(ctx context.Context, arm func(stored bool), cmd *runtime.Command) error
	}{
		{"Fail not stored", func(ctx context.Context, arm func(bool), cmd *runtime.Command) error {
			arm(false) // the deadLetter middleware's Lease.Fail write
			return failure.Permanent(errors.New("wix 400: bad request"))
		}},
		{"renewal stored, reply lost", func(ctx context.Context, arm func(bool), cmd *runtime.Command) error {
			arm(true)
			if err := cmd.Lease.Renew(ctx); !errors.Is(err, errInjected) {
				return err
			}
			return failure.Permanent(errors.New("wix 400: bad request"))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.Start(t)
			// The next record update once armed fails: not stored (a broker
			// error), or stored with its reply lost (a timeout after the
			// server applied it).
			var armed, stored atomic.Bool
			direct := hookLedger(t, env, &recordKV{update: func(next func() (uint64, error)) (uint64, error) {
				if !armed.CompareAndSwap(true, false) {
					return next()
				}
				if stored.Load() {
					_, _ = next()
				}
				return 0, errInjected
			}})
			arm := func(s bool) { stored.Store(s); armed.Store(true) }
			h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
				return c.run(ctx, arm, cmd)
			})
			env.StartRuntime(fastConfig(), runtime.Adapt(h))
			pub := env.Publish(messages.CmdGenerateReport, `{"id":"own-fail"}`)
			ctx := context.Background()
			cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
			if err != nil {
				t.Fatal(err)
			}
			// Acknowledged only after the dead letter is stored and announce
			// returned.
			awaitCond(t, "the command dead-lettered and acknowledged", func() bool {
				info, err := cons.Info(ctx)
				return err == nil && info.AckFloor.Stream >= pub.Sequence && len(env.DeadLetters()) == 1
			})
			if n := len(env.Events(messages.EvtCommandFailed)); n != 1 {
				t.Errorf("command_failed published %d times for the one copy of a command that failed permanently (want 1)", n)
			}
			rec, err := direct.Record(ctx, messages.CmdGenerateReport, "own-fail")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status != ledger.StatusDeadLettered {
				t.Errorf("record %s (owner %q seq %d, lease until %s), want dead_lettered: nothing will redeliver the acknowledged message",
					rec.Status, rec.Owner, rec.OwnerSeq, rec.LeaseUntil.Format(time.RFC3339))
			}
		})
	}
}

// The max-deliveries capture: an instance crashed while working on the
// last delivery of a command (or the lease keeper lapsed its work and
// naked it, leaving the lease to expire). The advisory comes after the ack
// wait since the last keep-alive, which can be before the lease (renewed
// after that keep-alive) expires: the record still shows a live lease, but
// it is the captured message's own (OwnerSeq is its sequence), not another
// copy's. AnnounceCaptured must still record and announce the failure.
func TestCapturedDeadLetterOfACrashedOwnersMessageIsAnnounced(t *testing.T) {
	env := testenv.Start(t)
	rt := env.StartRuntime(fastConfig(), runtime.Adapt(newReportHandler(nil)))
	ctx := context.Background()
	const seq = 7
	// The crashed instance's lease on this very message (seq 7), renewed
	// shortly before it died: still live when the capture announces, it
	// lapses unrenewed (AnnounceCaptured waits for that).
	if _, _, err := env.Ledger.Acquire(ctx, ledger.Claim{CommandType: messages.CmdGenerateReport, CommandID: "crashed-1",
		Subject: env.Subjects.Command(messages.CmdGenerateReport), Delivery: 4, Seq: seq, Owner: "crashed-instance", TTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	rt.AnnounceCaptured(ctx, &dlq.Entry{
		CommandType: messages.CmdGenerateReport, CommandID: "crashed-1", Kind: messages.FailureExhausted,
		Reason: dlq.ReasonExhausted, OriginalSubject: env.Subjects.Command(messages.CmdGenerateReport),
		OriginalSeq: seq, Deliveries: 4, Body: []byte(`{"id":"crashed-1","correlationId":"c-1"}`),
	})
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "crashed-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusDeadLettered {
		t.Errorf("record %s (owner %q seq %d): the captured message's own lease kept the command 'processing' with nothing left to redeliver it",
			rec.Status, rec.Owner, rec.OwnerSeq)
	}
	// AnnounceCaptured publishes synchronously: the event is in the stream
	// if it was published at all.
	if n := len(env.Events(messages.EvtCommandFailed)); n != 1 {
		t.Errorf("command_failed published %d times for a captured command whose deliveries ran out (want 1)", n)
	}
}

// A command whose outcome was recorded but never published (the copy that
// completed it ran out of deliveries publishing the event): a dead letter
// of a copy of it republishes the recorded outcome, not command_failed.
func TestDeadLetterOfACompletedCommandRepublishesItsOutcome(t *testing.T) {
	env := testenv.Start(t)
	env.StartRuntime(fastConfig(), runtime.Adapt(newReportHandler(nil)))
	ctx := context.Background()
	l, _, err := env.Ledger.Acquire(ctx, ledger.Claim{CommandType: messages.CmdGenerateReport, CommandID: "unpublished",
		Subject: env.Subjects.Command(messages.CmdGenerateReport), Delivery: 1, Seq: 1, Owner: "gone-instance", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	evt := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "unpublished", CorrelationID: "unpublished"}, TotalGroups: 3}
	payload, err := json.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx, ledger.Outcome{EventType: messages.EvtReportGenerated, EventID: evt.EventID(), Event: payload}); err != nil {
		t.Fatal(err)
	}
	publishInvalidCopy(t, env, "unpublished", 0)
	var got []testenv.StreamMsg
	for _, m := range env.Events(messages.EvtReportGenerated) {
		if strings.Contains(string(m.Data), `"unpublished"`) {
			got = append(got, m)
		}
	}
	if len(got) != 1 {
		t.Errorf("recorded outcome published %d times, want 1", len(got))
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a command that completed", n)
	}
}

// Message 7's delivery a (this instance, lease L1) fails permanently after
// delivery b of the same message (redelivered after AckWait, taken by
// another instance once L1 expired by its clock) leased the command (L2):
// the premise of ledger's TestStaleFailOfTheSameMessageLeavesTheLiveLeaseWritable,
// with a dead letter instead of a nak. a's DeadLetter now leaves b's live
// lease alone and announces nothing; were a's dead letter acknowledged,
// that ack would settle the message b works on (acks are by stream sequence):
// if b then fails transiently its nak redelivers nothing, and the command
// is left "processing" for ever, never announced. a must leave the message
// to b (neither acknowledge nor dead-letter it): b's outcome decides.
func TestDeadLetterBesideALiveLeaseOfTheSameMessageIsNotSilentlyAcked(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	bucket, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	h := newReportHandler(func(hctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt > 1 {
			return nil
		}
		// b acquires (what ledger.Acquire writes for another owner, seq 7).
		if err := leaseToB(ctx, bucket, ledger.RecordKey(cmd.Type, cmd.ID), cmd.StreamSeq, cmd.Delivery+1); err != nil {
			return err
		}
		return failure.Permanent(errors.New("wix 400: bad request"))
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	pub := env.Publish(messages.CmdGenerateReport, `{"id":"shared-msg"}`)
	if !ackedWithDeadLetter(t, env, pub) {
		// Left to b (neither acked nor nacked: redelivered only once b's
		// keep-alives would stop), with no dead letter of it.
		if n := len(env.DeadLetters()); n != 0 {
			t.Errorf("a's failure dead-lettered message %d (%d entries) though b holds it", pub.Sequence, n)
		}
		return
	}
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "shared-msg")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n == 0 && rec.Status != ledger.StatusDeadLettered {
		t.Errorf("message %d acknowledged by a's dead letter while b holds its live lease (record %s, owner %q, seq %d), and nothing announced: "+
			"b's work has no message left (its nak or failure redelivers nothing) and the command is never announced", pub.Sequence, rec.Status, rec.Owner, rec.OwnerSeq)
	}
}

// The premise of TestDeadLetterBesideALiveLeaseOfTheSameMessageIsNotSilentlyAcked
// (message 7 redelivered while delivery a still holds it), with b's acquire
// landing one step later: after a's Lease.Fail gave the lease up (so b's
// Acquire takes it at once) and before a's announce (DeadLetter) — the
// window in which a stores its dead letter, which holdForDLQ can stretch
// to minutes while the DLQ is full. a's DeadLetter then leaves b's live
// lease alone and announces nothing, but storeDeadLetter still returns nil:
// a acknowledges message 7 under b. If b then fails transiently its nak
// redelivers nothing, and the command stays "processing", never announced.
func TestDeadLetterAfterARedeliveryAcquiredBetweenFailAndAnnounceIsNotSilentlyAcked(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	raw, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	var seq atomic.Uint64
	injected := make(chan error, 1)
	key := ledger.RecordKey(messages.CmdGenerateReport, "window-msg")
	hookLedger(t, env, &recordKV{update: func(next func() (uint64, error)) (uint64, error) {
		n, err := next()
		if err != nil || !armed.CompareAndSwap(true, false) {
			return n, err
		}
		// a's Lease.Fail is stored (owner cleared): b, a redelivery of the
		// same message at another instance, acquires now (what
		// ledger.Acquire writes for it).
		injected <- func() error {
			e, err := raw.Get(ctx, key)
			if err != nil {
				return err
			}
			var rec ledger.Record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return err
			}
			if rec.Owner != "" {
				return errors.New("the armed update was not a's Fail (owner " + rec.Owner + ")")
			}
			rec.Owner, rec.LeaseID, rec.LeaseUntil = "instance-b", "lease-b", time.Now().Add(time.Minute)
			rec.OwnerSeq, rec.LastSeq, rec.Deliveries = seq.Load(), seq.Load(), rec.Deliveries+1
			b, _ := json.Marshal(rec)
			_, err = raw.Update(ctx, key, b, e.Revision())
			return err
		}()
		return n, err
	}})
	h := newReportHandler(func(hctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt > 1 {
			return nil
		}
		seq.Store(cmd.StreamSeq)
		armed.Store(true) // the deadLetter middleware's Lease.Fail write
		return failure.Permanent(errors.New("wix 400: bad request"))
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	pub := env.Publish(messages.CmdGenerateReport, `{"id":"window-msg"}`)
	select {
	case err := <-injected:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a's Fail never written")
	}
	if !ackedWithDeadLetter(t, env, pub) {
		return // left to b
	}
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "window-msg")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n == 0 && rec.Status != ledger.StatusDeadLettered {
		t.Errorf("message %d acknowledged by a's dead letter while b holds its live lease (record %s, owner %q, seq %d), and nothing announced: "+
			"b's work has no message left and the command is never announced", pub.Sequence, rec.Status, rec.Owner, rec.OwnerSeq)
	}
}

// leaseToB writes on the record under key what ledger.Acquire writes for
// delivery (number delivery) of message seq by another instance, b: a
// lease of one minute.
func leaseToB(ctx context.Context, bucket jetstream.KeyValue, key string, seq uint64, delivery int) error {
	e, err := bucket.Get(ctx, key)
	if err != nil {
		return err
	}
	var rec ledger.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return err
	}
	now := time.Now().UTC()
	rec.Status, rec.Owner, rec.LeaseID, rec.UpdatedAt, rec.LeaseUntil = ledger.StatusProcessing, "instance-b", "lease-b", now, now.Add(time.Minute)
	rec.OwnerSeq, rec.LastSeq, rec.Deliveries = seq, seq, delivery
	b, _ := json.Marshal(rec)
	_, err = bucket.Update(ctx, key, b, e.Revision())
	return err
}

// ackedWithDeadLetter awaits message pub of generate_report being either
// acknowledged with a dead letter stored, or given back (redelivered), and
// reports which.
func ackedWithDeadLetter(t *testing.T, env *testenv.Env, pub *jetstream.PubAck) bool {
	t.Helper()
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	var acked bool
	awaitCond(t, "a's dead letter stored and the message acknowledged, or the message given back", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			return false
		}
		acked = info.AckFloor.Stream >= pub.Sequence && len(env.DeadLetters()) == 1
		return acked || info.NumRedelivered > 0
	})
	return acked
}

// clockRefusingKV is the ledger bucket refusing the first probes of the
// server's clock (a full store refuses that write; reads still work).
type clockRefusingKV struct {
	jetstream.KeyValue
	refuse atomic.Int64 // probes left to refuse
}

func (k *clockRefusingKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if key == ledger.ClockKey && k.refuse.Add(-1) >= 0 {
		return 0, errors.New("insufficient resources")
	}
	return k.KeyValue.Put(ctx, key, value)
}

// TestCapturedDeadLetterAnnouncedDespiteAFailedClockProbe: the captured
// message's own lease (a crashed owner's, seq 7) lapsed unrenewed, which
// AnnounceCaptured waited out, and the server's clock then fails one
// probe. The capture is the dead letter's only announcement (nothing
// redelivers the message): it must still record and announce the failure,
// not leave the entry in the DLQ unannounced for ever.
func TestCapturedDeadLetterAnnouncedDespiteAFailedClockProbe(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	const seq = 7
	if _, _, err := env.Ledger.Acquire(ctx, ledger.Claim{CommandType: messages.CmdGenerateReport, CommandID: "crashed-clock",
		Subject: env.Subjects.Command(messages.CmdGenerateReport), Delivery: 4, Seq: seq, Owner: "crashed-instance", TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	blind := &clockRefusingKV{KeyValue: kv}
	blind.refuse.Store(2) // leaseLapsed's probe, then DeadLetter's
	env.Ledger = ledger.New(blind)
	rt := env.StartRuntime(fastConfig(), runtime.Adapt(newReportHandler(nil)))
	rt.AnnounceCaptured(ctx, &dlq.Entry{
		CommandType: messages.CmdGenerateReport, CommandID: "crashed-clock", Kind: messages.FailureExhausted,
		Reason: dlq.ReasonExhausted, OriginalSubject: env.Subjects.Command(messages.CmdGenerateReport),
		OriginalSeq: seq, Deliveries: 4, Body: []byte(`{"id":"crashed-clock","correlationId":"c-1"}`),
	})
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "crashed-clock")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusDeadLettered {
		t.Errorf("record %s (owner %q seq %d): the captured dead letter was left unrecorded", rec.Status, rec.Owner, rec.OwnerSeq)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 1 {
		t.Errorf("command_failed published %d times for a captured command whose deliveries ran out (want 1)", n)
	}
}
