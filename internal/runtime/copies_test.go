package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// Copies of one command (re-sends with the same id, forged or invalid ones)
// beside a copy that runs: only the copy holding the lease changes the
// command's record, and only the command's own outcome is announced.

var errInjected = errors.New("injected: no reply from the broker")

// recordKV is the ledger bucket with a test's hooks on the reads and writes
// of command records (keys ending ".record"); next does the real call, and
// a hook left nil passes through.
type recordKV struct {
	jetstream.KeyValue
	get    func(next func() (jetstream.KeyValueEntry, error)) (jetstream.KeyValueEntry, error)
	create func(value []byte, next func() (uint64, error)) (uint64, error)
	update func(next func() (uint64, error)) (uint64, error)
	// put hooks every Put (ledger.ClockKey's probes among them).
	put func(key string, next func() (uint64, error)) (uint64, error)
}

func (k *recordKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	next := func() (uint64, error) { return k.KeyValue.Put(ctx, key, value) }
	if k.put == nil {
		return next()
	}
	return k.put(key, next)
}

// hookLedger makes env's runtime use the ledger bucket through kv's hooks
// (set them before the runtime starts); it returns the ledger without them.
func hookLedger(t *testing.T, env *testenv.Env, kv *recordKV) *ledger.Ledger {
	t.Helper()
	bucket, err := env.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	kv.KeyValue = bucket
	direct := env.Ledger
	env.Ledger = ledger.New(kv)
	return direct
}

func (k *recordKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	next := func() (jetstream.KeyValueEntry, error) { return k.KeyValue.Get(ctx, key) }
	if k.get == nil || !strings.HasSuffix(key, ".record") {
		return next()
	}
	return k.get(next)
}

func (k *recordKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	next := func() (uint64, error) { return k.KeyValue.Create(ctx, key, value, opts...) }
	if k.create == nil || !strings.HasSuffix(key, ".record") {
		return next()
	}
	return k.create(value, next)
}

func (k *recordKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	next := func() (uint64, error) { return k.KeyValue.Update(ctx, key, value, rev) }
	if k.update == nil || !strings.HasSuffix(key, ".record") {
		return next()
	}
	return k.update(next)
}

// callGate holds the first call a hook lets through it until opened.
type callGate struct {
	armed   atomic.Bool
	once    sync.Once
	blocked chan struct{} // closed once a call is held
	open    chan struct{}
	opened  sync.Once
}

func newCallGate(armed bool) *callGate {
	g := &callGate{blocked: make(chan struct{}), open: make(chan struct{})}
	g.armed.Store(armed)
	return g
}

// pass holds the first call once armed until Open.
func (g *callGate) pass() {
	if !g.armed.Load() {
		return
	}
	held := false
	g.once.Do(func() { held = true })
	if held {
		close(g.blocked)
		<-g.open
	}
}

func (g *callGate) Open() { g.opened.Do(func() { close(g.open) }) }

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
	failRead := newCallGate(false) // armed by copy 1: the read of its Fail's modify
	direct := hookLedger(t, env, &recordKV{get: func(next func() (jetstream.KeyValueEntry, error)) (jetstream.KeyValueEntry, error) {
		failRead.pass()
		return next()
	}})
	defer failRead.Open()

	copy2Acting := make(chan struct{})
	finish := make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt == 1 {
			failRead.armed.Store(true)
			return errors.New("wix 503 before any side effect") // transient
		}
		if attempt > 2 {
			return nil // copy 1 again: counted below
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
	copy1 := env.Publish(messages.CmdGenerateReport, `{"id":"race"}`, "Nats-Msg-Id", "copy-1")
	select {
	case <-failRead.blocked: // copy 1's Fail is about to read the record
	case <-time.After(20 * time.Second):
		t.Fatal("copy 1's failure never read the record")
	}
	env.Publish(messages.CmdGenerateReport, `{"id":"race"}`, "Nats-Msg-Id", "copy-2")
	select {
	case <-copy2Acting:
	case <-time.After(20 * time.Second):
		t.Fatal("copy 2 never ran")
	}
	failRead.Open() // copy 1's Fail goes on
	defer close(finish)

	// Copy 1 is nacked once its failure is dealt with; its redelivery
	// finds copy 2 running and is acknowledged.
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "copy 1 failed, redelivered and acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream >= copy1.Sequence
	})
	if n := h.Calls("race"); n != 2 {
		t.Errorf("the handler ran %d times, want 2 (copy 1 once, copy 2 once, still running)", n)
	}
	rec, err := direct.Record(ctx, messages.CmdGenerateReport, "race")
	if err != nil {
		t.Fatal(err)
	}
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

// A valid command failed transiently (before any side effect) and waits for
// its redelivery: its lease is given up, so no live lease protects the
// record. A forged invalid copy with the same id arriving then is counted
// as a failure of the command (Ledger.Fail), marks it dead-lettered and
// announces command_failed for a command that then completes: a hostile
// producer makes a valid command "fail". The record names the message that
// acquired it last (LastSeq): the forged copy's failure is not the command's.
func TestForgedCopyBetweenDeliveriesDoesNotFailAValidCommand(t *testing.T) {
	env := testenv.Start(t)
	waiting := make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt == 1 {
			close(waiting)
			return errors.New("wix 503") // transient: nacked, redelivered later
		}
		return nil
	})
	cfg := fastConfig()
	cfg.NakDelay = func(int) time.Duration { return 4 * time.Second }
	env.StartRuntime(cfg, runtime.Adapt(h))
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"between","top":3}`, "Nats-Msg-Id", "real")
	<-waiting
	ctx := context.Background()
	awaitCond(t, "the real copy's failure recorded, its lease given up", func() bool {
		rec, err := env.Ledger.Record(ctx, messages.CmdGenerateReport, "between")
		return err == nil && rec != nil && rec.Failures == 1 && rec.Owner == ""
	})
	forged := env.Publish(messages.CmdGenerateReport, `{"id":"between","top":-5}`, "Nats-Msg-Id", "forged")
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	done.Next(30*time.Second, testenv.ForCommand("between"))
	// Both acknowledged: the forged copy's dead letter stored, announced or not.
	awaitCond(t, "the forged copy dead-lettered and acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream >= forged.Sequence && len(env.DeadLetters()) == 1
	})
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a valid command that completed: a forged copy made it fail", n)
	}
}

// A valid command's first delivery fails before it acquires the command
// (Acquire's write times out); Ledger.Fail records the failure, creating
// the record, and the message waits for its redelivery. A forged invalid
// copy with the same id arriving then must not mark the command
// dead-lettered nor announce command_failed: the valid message runs and
// completes on its redelivery: the record Ledger.Fail created names the
// message it failed (LastSeq), so the forged copy's failure is not its.
func TestForgedCopyAfterAFailedAcquireDoesNotFailAValidCommand(t *testing.T) {
	env := testenv.Start(t)
	// Acquire's first create (a record naming an owner) fails once, not
	// stored; Ledger.Fail's create (no owner) goes through.
	var failed atomic.Bool
	direct := hookLedger(t, env, &recordKV{create: func(value []byte, next func() (uint64, error)) (uint64, error) {
		if strings.Contains(string(value), `"owner":`) && failed.CompareAndSwap(false, true) {
			return 0, errors.New("injected: acquire's create timed out")
		}
		return next()
	}})
	h := newReportHandler(nil)
	cfg := fastConfig()
	cfg.NakDelay = func(int) time.Duration { return 4 * time.Second }
	env.StartRuntime(cfg, runtime.Adapt(h))
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"preacq","top":3}`, "Nats-Msg-Id", "real")
	ctx := context.Background()
	awaitCond(t, "the real copy's pre-acquire failure recorded", func() bool {
		rec, err := direct.Record(ctx, messages.CmdGenerateReport, "preacq")
		return err == nil && rec != nil && rec.Failures == 1
	})
	publishInvalidCopy(t, env, "preacq", 1) // the real copy stays pending
	rec, err := direct.Record(ctx, messages.CmdGenerateReport, "preacq")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledger.StatusProcessing || rec.Failures != 1 {
		t.Errorf("the forged copy changed the record of a command whose valid message awaits redelivery: status %s, failures %d", rec.Status, rec.Failures)
	}
	done.Next(30*time.Second, testenv.ForCommand("preacq"))
	if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
		t.Errorf("command_failed announced (%d) for a valid command that completed: a forged copy made it fail", n)
	}
}

// The max-deliveries capture follows every consumer of the commands
// stream, the unknown-commands one too (MaxDeliver, not the typed
// consumers' 2*MaxDeliver+5), which sees every command and only
// acknowledges the known ones. Its copy of a known command running on the
// typed consumer (deliveries burnt by crashes or shutdowns while it waited
// for admission) has the same stream sequence as the running message: its
// capture must not mark the command dead-lettered (cutting the running
// lease off) nor announce command_failed for a command that completes.
func TestCaptureOfTheUnknownConsumersCopyLeavesARunningCommandAlone(t *testing.T) {
	env := testenv.Start(t)
	held := startHeldReport(t, env, "both")
	rt, pub := held.rt, held.pub
	ctx := context.Background()
	capture := dlq.NewCapture(env.NC, env.JS, env.Subjects, nil)
	capture.CatchAll = runtime.UnknownCommandsDurable // as the processor sets it up
	e, err := capture.CaptureSeq(ctx, dlq.MaxDeliveriesAdvisory{Stream: env.Subjects.CommandStream(),
		Consumer: runtime.UnknownCommandsDurable, StreamSeq: pub.Sequence, Deliveries: 4})
	if err != nil {
		t.Fatal(err)
	}
	if e != nil {
		t.Errorf("the unknown consumer's copy of a known command was captured: %+v", e)
		rt.AnnounceCaptured(ctx, e)
	}
	held.leftAloneAndCompletes(ctx, "the unknown consumer's capture")
}

// heldReport is a generate_report command whose first attempt runs until
// release is called, on a runtime of its own (startHeldReport).
type heldReport struct {
	t       *testing.T
	env     *testenv.Env
	id      string
	rt      *testenv.Running
	pub     *jetstream.PubAck
	done    *testenv.Watcher
	release func()
}

// startHeldReport publishes generate_report id and returns once its first
// attempt is running (and held).
func startHeldReport(t *testing.T, env *testenv.Env, id string) *heldReport {
	t.Helper()
	running, release := make(chan struct{}), make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt == 1 {
			close(running)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	held := &heldReport{t: t, env: env, id: id, release: sync.OnceFunc(func() { close(release) })}
	held.rt = env.StartRuntime(fastConfig(), runtime.Adapt(h))
	held.done = env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	held.pub = env.Publish(messages.CmdGenerateReport, fmt.Sprintf(`{"id":%q,"top":3}`, id), "Nats-Msg-Id", id)
	select {
	case <-running:
	case <-time.After(20 * time.Second):
		t.Fatal("the command never ran")
	}
	return held
}

// leftAloneAndCompletes fails the test unless the held command's record is
// still processing under an owner (what, e.g. a capture, changed nothing),
// and, once released, the command completes without a command_failed.
func (h *heldReport) leftAloneAndCompletes(ctx context.Context, what string) {
	h.t.Helper()
	rec, err := h.env.Ledger.Record(ctx, messages.CmdGenerateReport, h.id)
	if err != nil {
		h.t.Fatal(err)
	}
	if rec.Status != ledger.StatusProcessing || rec.Owner == "" {
		h.t.Errorf("%s changed the running command's record: %s, owner %q", what, rec.Status, rec.Owner)
	}
	h.release()
	h.done.Next(30*time.Second, testenv.ForCommand(h.id))
	if n := len(h.env.Events(messages.EvtCommandFailed)); n != 0 {
		h.t.Errorf("command_failed announced (%d) for a command that completed", n)
	}
}

// A second copy of a command reaching this instance while the first is
// still acquiring the command waits for it in memory, spending no
// delivery (a nak a second would use its deliveries up during a slow
// ledger, and its capture would announce the command failed): once the
// first holds the lease, the second is acknowledged as a duplicate, and
// the handler runs once.
func TestSecondCopyWaitsWhileTheFirstAcquires(t *testing.T) {
	env := testenv.Start(t)
	acquire := newCallGate(true) // copy 1's first write
	hookLedger(t, env, &recordKV{create: func(_ []byte, next func() (uint64, error)) (uint64, error) {
		acquire.pass()
		return next()
	}})
	defer acquire.Open()          // a failed test must not leave copy 1 held at shutdown
	acks := make(chan string, 64) // the typed consumer's (the unknown-commands one acks every known command)
	sub, err := env.NC.Subscribe("$JS.ACK."+env.Subjects.CommandStream()+".groupflow_generate_report.>", func(m *nats.Msg) { acks <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	done := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"twice","top":3}`, "Nats-Msg-Id", "copy-1")
	select {
	case <-acquire.blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("copy 1 never acquired")
	}
	copy2 := env.Publish(messages.CmdGenerateReport, `{"id":"twice","top":3}`, "Nats-Msg-Id", "copy-2")
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "copy 2 delivered", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream >= copy2.Sequence
	})
	acquire.Open()
	done.Next(30*time.Second, testenv.ForCommand("twice"))
	for range 2 {
		if before := awaitAck(t, acks, "+ACK"); len(before) > 0 {
			t.Fatalf("before an ack: %q (copy 2 given back while copy 1 acquired)", before)
		}
	}
	if n := h.Calls("twice"); n != 1 {
		t.Errorf("the handler ran %d times", n)
	}
}

var _ jetstream.KeyValue = (*recordKV)(nil)

// A delivery whose own Acquire was stored but lost its reply sees its own
// lease in the record (OwnerSeq its message, a LeaseID it never learnt):
// HeldByAnotherDelivery calls it another delivery's, and the message is
// abandoned. It must still come back (after AckWait: its keep-alive
// stopped) and complete, not stay unsettled.
func TestOwnAcquireWithLostReplyIsNotAbandonedForEver(t *testing.T) {
	env := testenv.Start(t)
	var lost atomic.Bool
	lost.Store(true)
	hookLedger(t, env, &recordKV{create: func(_ []byte, next func() (uint64, error)) (uint64, error) {
		n, err := next()
		if err == nil && lost.CompareAndSwap(true, false) {
			return 0, errInjected
		}
		return n, err
	}})
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"own-lost"}`)
	w.Next(20*time.Second, testenv.ForCommand("own-lost"))
	if n := h.Calls("own-lost"); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
}

// A renewal of a running command's lease is stored but its reply is lost
// (a stream leader change): the record still carries the lease's id, so
// the lease is still this delivery's. Its work goes on and completes in
// one attempt: it must not be cancelled as taken over by another instance
// (and the message given back until the lease, its own, expires).
func TestLostRenewalReplyDoesNotStopTheCommand(t *testing.T) {
	env := testenv.Start(t)
	var armed atomic.Bool
	var after atomic.Int32 // record writes stored after the lost one
	renewedTwice := make(chan struct{})
	var once sync.Once
	hookLedger(t, env, &recordKV{update: func(next func() (uint64, error)) (uint64, error) {
		n, err := next()
		if err != nil {
			return n, err
		}
		if armed.CompareAndSwap(true, false) {
			return 0, errInjected // stored, reply lost
		}
		if after.Add(1) >= 3 {
			once.Do(func() { close(renewedTwice) })
		}
		return n, err
	}})
	var cancelled atomic.Bool
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, attempt int) error {
		if attempt > 1 {
			return nil
		}
		after.Store(-1 << 20)
		armed.Store(true) // the keeper's next renewal loses its reply
		for armed.Load() {
			select {
			case <-ctx.Done():
				cancelled.Store(true)
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		after.Store(0)
		select { // the renewals after it
		case <-renewedTwice:
			return nil
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		case <-time.After(20 * time.Second):
			return errors.New("no renewal after the lost one")
		}
	})
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"lost-renewal"}`)
	w.Next(30*time.Second, testenv.ForCommand("lost-renewal"))
	if cancelled.Load() {
		t.Error("the command's work was cancelled after a renewal whose reply was lost (lease taken for lost)")
	}
	if n := h.Calls("lost-renewal"); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}
