package runtime_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// Copies of one command (re-sends with the same id, forged or invalid ones)
// beside a copy that runs: only the copy holding the lease changes the
// command's record, and only the command's own outcome is announced.

// gateKV blocks the first read of a record key after it is armed (the
// deadLetter middleware's Lease.Fail reading the record it modifies) until
// open is closed.
type gateKV struct {
	jetstream.KeyValue
	mu      sync.Mutex
	armed   bool
	blocked chan struct{} // closed once the read is held
	open    chan struct{}
}

func (g *gateKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	g.mu.Lock()
	hold := g.armed && strings.HasSuffix(key, ".record")
	if hold {
		g.armed = false
	}
	g.mu.Unlock()
	if hold {
		close(g.blocked)
		<-g.open
	}
	return g.KeyValue.Get(ctx, key)
}

// Copy 1 of a command fails (transiently, before any side effect: sure);
// its handler has returned, so this instance's one-copy-at-a-time guard is
// free, but the deadLetter middleware has not yet recorded the failure.
// Copy 2 (a re-send) is taken by the same instance, acquires the lease and
// sends Create Group (Acting). Copy 1's failure, recorded then, must not
// give up copy 2's live lease nor write copy 1's Sure: else another instance
// could take the command over at once, sure that nothing was sent, and
// create a second group.
func TestFailOfAnEarlierCopyLeavesTheRunningCopysLease(t *testing.T) {
	env := testenv.Start(t)
	kv, err := env.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateKV{KeyValue: kv, blocked: make(chan struct{}), open: make(chan struct{})}
	direct := env.Ledger
	env.Ledger = ledger.New(gate)

	copy2Acting := make(chan struct{})
	finish := make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt == 1 {
			gate.mu.Lock()
			gate.armed = true
			gate.mu.Unlock()
			return errors.New("wix 503 before any side effect") // transient
		}
		if err := cmd.Lease.Hold(ctx); err != nil {
			return err
		}
		cmd.Lease.Acting() // Create Group sent ...
		close(copy2Acting)
		select { // ... and its answer is slow
		case <-finish:
		case <-ctx.Done():
		}
		return nil
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	env.Publish(messages.CmdGenerateReport, `{"id":"race"}`, "Nats-Msg-Id", "copy-1")
	select {
	case <-gate.blocked: // copy 1's Fail is about to read the record
	case <-time.After(20 * time.Second):
		t.Fatal("copy 1's failure never read the record")
	}
	env.Publish(messages.CmdGenerateReport, `{"id":"race"}`, "Nats-Msg-Id", "copy-2")
	select {
	case <-copy2Acting:
	case <-time.After(20 * time.Second):
		t.Fatal("copy 2 never ran")
	}
	close(gate.open) // copy 1's Fail goes on
	defer close(finish)

	ctx := context.Background()
	var rec *ledger.Record
	awaitCond(t, "copy 1's failure recorded", func() bool {
		rec, err = direct.Record(ctx, messages.CmdGenerateReport, "race")
		return err == nil && rec != nil && rec.Failures > 0
	})
	if rec.Owner == "" || rec.Sure {
		t.Errorf("while copy 2 runs (acting), copy 1's failure left owner %q seq %d sure %v", rec.Owner, rec.OwnerSeq, rec.Sure)
	}
	l, _, err := direct.Acquire(ctx, ledger.Claim{CommandType: messages.CmdGenerateReport, CommandID: "race",
		Subject: env.Subjects.Command(messages.CmdGenerateReport), Delivery: 1, Seq: 99, Owner: "another-instance", TTL: time.Minute})
	if err == nil {
		t.Errorf("another instance took copy 2's live lease over; Unsure = %v (false: it would create a second group without looking)", l.Unsure())
		_ = l.Release(ctx)
	}
}

// While copy 1 of a command works (it sent Create Group), an invalid copy
// with the same id (forged, or a buggy re-send) is dead-lettered on its own:
// the command's record stays copy 1's (processing, its lease), no
// command_failed is announced for a command that runs, and copy 1 completes
// with the handler run once.
func TestInvalidCopyLeavesARunningCommandAlone(t *testing.T) {
	env := testenv.Start(t)
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
	env.Publish(messages.CmdGenerateReport, `{"id":"forge","top":3}`, "Nats-Msg-Id", "real")
	select {
	case <-acting:
	case <-time.After(20 * time.Second):
		t.Fatal("copy 1 never ran")
	}
	publishInvalidCopy(t, env, "forge", 1) // copy 1 stays pending
	ctx := context.Background()
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "forge")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusProcessing || rec.Owner == "" || rec.Failures != 0 {
		t.Errorf("while copy 1 runs, the invalid copy left its record %s, owner %q, failures %d", rec.Status, rec.Owner, rec.Failures)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a command that is running and will complete", n)
	}
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	close(release)
	done.Next(30*time.Second, testenv.ForCommand("forge"))
	if n := h.Calls("forge"); n != 1 {
		t.Errorf("the handler ran %d times for one valid command", n)
	}
}

// An invalid copy of a command that completed is dead-lettered on its own:
// the record stays completed and no command_failed contradicts the
// command's outcome event.
func TestInvalidCopyOfACompletedCommandIsNotAnnounced(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"late","top":3}`, "Nats-Msg-Id", "real")
	done.Next(30*time.Second, testenv.ForCommand("late"))
	publishInvalidCopy(t, env, "late", 0)
	ctx := context.Background()
	rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "late")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusCompleted {
		t.Errorf("the invalid copy left the completed command's record %s", rec.Status)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a command that completed", n)
	}
	if n := h.Calls("late"); n != 1 {
		t.Errorf("the handler ran %d times", n)
	}
}

// publishInvalidCopy publishes an invalid generate_report with command id
// id and waits until it is dead-lettered and acknowledged (its dead letter
// stored, and announced or not), with pending other messages unacked.
func publishInvalidCopy(t *testing.T, env *testenv.Env, id string, pending int) {
	t.Helper()
	forged := env.Publish(messages.CmdGenerateReport, `{"id":"`+id+`","top":-5}`, "Nats-Msg-Id", "forged-"+id)
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "the invalid copy dead-lettered and acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream >= forged.Sequence && info.NumAckPending == pending && len(env.DeadLetters()) == 1
	})
}
