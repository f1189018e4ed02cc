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

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// reportHandler is a test-only handler on the generate_report subject.
type reportHandler struct {
	mu    sync.Mutex
	calls map[string]int
	fn    func(ctx context.Context, cmd *runtime.Command, attempt int) error
}

func newReportHandler(fn func(ctx context.Context, cmd *runtime.Command, attempt int) error) *reportHandler {
	return &reportHandler{calls: map[string]int{}, fn: fn}
}

func (h *reportHandler) CommandType() string { return messages.CmdGenerateReport }

func (h *reportHandler) Handle(ctx context.Context, cmd *runtime.Command, c *messages.GenerateReport) (messages.Event, error) {
	h.mu.Lock()
	h.calls[cmd.ID]++
	n := h.calls[cmd.ID]
	h.mu.Unlock()
	if h.fn != nil {
		if err := h.fn(ctx, cmd, n); err != nil {
			return nil, err
		}
	}
	return &messages.ReportGenerated{EventMeta: cmd.EventMeta(), TotalGroups: c.Top}, nil
}

func (h *reportHandler) Calls(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

func fastConfig() runtime.Config {
	return runtime.Config{
		AckWait:       2 * time.Second,
		MaxDeliver:    4,
		Retries:       -1,
		RetryInitial:  10 * time.Millisecond,
		RetryMax:      50 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		NakDelay:      func(int) time.Duration { return 200 * time.Millisecond },
	}
}

func TestPlainNATSCommandReachesHandlerAndEventCarriesCloudEvents(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))

	env.Publish(messages.CmdGenerateReport, `{"id":"r-1","top":7,"correlationId":"corr-9"}`,
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	m := w.Next(20*time.Second, testenv.ForCommand("r-1"))

	for _, k := range []string{"ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-subject", "content-type"} {
		if m.Header.Get(k) == "" {
			t.Errorf("event header %s missing; headers %v", k, m.Header)
		}
	}
	if got, want := m.Header.Get("ce-type"), "groupflow.report_generated"; got != want {
		t.Errorf("ce-type = %q, want %q", got, want)
	}
	if m.Header.Get("ce-id") != m.Header.Get(nats.MsgIdHdr) {
		t.Errorf("ce-id %q != Nats-Msg-Id %q", m.Header.Get("ce-id"), m.Header.Get(nats.MsgIdHdr))
	}
	if tp := m.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent %q not in the command's trace", tp)
	}
	ev := testenv.Decode[messages.ReportGenerated](t, m)
	if ev.CommandID != "r-1" || ev.CorrelationID != "corr-9" || ev.TotalGroups != 7 {
		t.Errorf("event = %+v", ev)
	}
	if _, ok := m.Header[strings.ToLower("_watermill_message_uuid")]; ok {
		t.Error("event carries a Watermill-specific header")
	}
}

func TestCommandIDFromHeaderOrGenerated(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))

	env.Publish(messages.CmdGenerateReport, `{}`, nats.MsgIdHdr, "from-header")
	w.Next(20*time.Second, testenv.ForCommand("from-header"))

	ack := env.Publish(messages.CmdGenerateReport, `{}`)
	want := fmt.Sprintf("%s-%d", env.Subjects.CommandStream(), ack.Sequence)
	w.Next(20*time.Second, testenv.ForCommand(want))
}

func TestMalformedAndInvalidCommandsAreDeadLetteredAndLaterOnesProcessed(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	evts := env.Watch(env.Subjects.Events())

	// A body that is not JSON has no readable id: it gets the generated one.
	badAck := env.Publish(messages.CmdGenerateReport, `{"id":"bad-json",`)
	badID := fmt.Sprintf("%s-%d", env.Subjects.CommandStream(), badAck.Sequence)
	env.Publish(messages.CmdGenerateReport, `{"id":"bad-top","top":-5}`)
	env.Publish(messages.CmdGenerateReport, `{"id":"good","top":3}`)

	seen := map[string]*nats.Msg{}
	for len(seen) < 3 {
		m := evts.Next(20*time.Second, nil)
		seen[m.Header.Get(events.HeaderCommandID)+" "+m.Subject] = m
	}
	if seen["good "+env.Subjects.Event(messages.EvtReportGenerated)] == nil {
		t.Errorf("valid command after bad ones not completed; events %v", seen)
	}
	for _, id := range []string{badID, "bad-top"} {
		m := seen[id+" "+env.Subjects.Event(messages.EvtCommandFailed)]
		if m == nil {
			t.Fatalf("no command_failed for %s; events %v", id, seen)
		}
		f := testenv.Decode[messages.CommandFailed](t, m)
		if f.DLQSubject != env.Subjects.DLQ(messages.CmdGenerateReport) {
			t.Errorf("%s: dlq subject %q", id, f.DLQSubject)
		}
	}

	dl := env.DeadLetters()
	if len(dl) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dl))
	}
	byID := map[string]int{}
	for i, e := range dl {
		byID[e.CommandID] = i
	}
	mal := dl[byID[badID]]
	if mal.Kind != messages.FailureMalformed || mal.Reason == "" || string(mal.Body) != `{"id":"bad-json",` {
		t.Errorf("malformed entry = %+v body %q", mal, mal.Body)
	}
	inv := dl[byID["bad-top"]]
	if inv.Kind != messages.FailureInvalid || len(inv.Fields) == 0 || inv.Fields[0].Field != "top" {
		t.Errorf("invalid entry = %+v", inv)
	}
	for _, e := range dl {
		if e.OriginalSubject != env.Subjects.Command(messages.CmdGenerateReport) || e.Deliveries != 1 ||
			e.Handler == "" || e.FirstFailure.IsZero() || e.LastFailure.IsZero() {
			t.Errorf("entry lacks delivery facts: %+v", e)
		}
	}
	if h.Calls(badID)+h.Calls("bad-top") != 0 {
		t.Error("handler was called for an undecodable command")
	}
}

func TestTransientFailureRetriedWithDelayThenSucceeds(t *testing.T) {
	env := testenv.Start(t)
	var times []time.Time
	var mu sync.Mutex
	h := newReportHandler(func(_ context.Context, cmd *runtime.Command, attempt int) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if attempt <= 3 {
			return fmt.Errorf("wix 503 (attempt %d, delivery %d)", attempt, cmd.Delivery)
		}
		return nil
	})
	cfg := fastConfig()
	cfg.Retries = 1 // two attempts per delivery
	cfg.NakDelay = func(int) time.Duration { return 500 * time.Millisecond }
	env.StartRuntime(cfg, runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"flaky"}`)
	w.Next(30*time.Second, testenv.ForCommand("flaky"))

	if got := h.Calls("flaky"); got != 4 {
		t.Fatalf("attempts = %d, want 4 (2 deliveries x 2 attempts)", got)
	}
	// Between delivery 1's last attempt and delivery 2 the nak delay applies:
	// no hot redelivery loop.
	if gap := times[2].Sub(times[1]); gap < 450*time.Millisecond {
		t.Errorf("redelivery after %s, want >= the 500ms nak delay", gap)
	}
	rec, err := env.Ledger.Record(context.Background(), messages.CmdGenerateReport, "flaky")
	if err != nil || rec == nil || rec.Status != ledger.StatusCompleted || rec.Deliveries != 2 {
		t.Fatalf("ledger record = %+v, %v", rec, err)
	}
	if len(env.DeadLetters()) != 0 {
		t.Error("a command that succeeded was dead-lettered")
	}
}

func TestExhaustedAndPermanentFailuresAreDeadLettered(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(func(_ context.Context, cmd *runtime.Command, _ int) error {
		switch cmd.ID {
		case "always-503":
			return errors.New("wix 503 service unavailable")
		case "perm-404":
			return failure.Permanent(errors.New("wix 404 group not found"))
		case "panics":
			panic("boom")
		}
		return nil
	})
	cfg := fastConfig()
	cfg.MaxDeliver = 3
	env.StartRuntime(cfg, runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	env.Publish(messages.CmdGenerateReport, `{"id":"always-503"}`)
	env.Publish(messages.CmdGenerateReport, `{"id":"perm-404"}`)
	env.Publish(messages.CmdGenerateReport, `{"id":"panics"}`)
	got := map[string]messages.CommandFailed{}
	for range 3 {
		m := w.Next(30*time.Second, nil)
		f := testenv.Decode[messages.CommandFailed](t, m)
		got[f.CommandID] = f
	}
	if f := got["always-503"]; f.Kind != messages.FailureExhausted || f.Deliveries != 3 {
		t.Errorf("always-503: %+v", f)
	}
	if f := got["perm-404"]; f.Kind != messages.FailurePermanent || f.Deliveries != 1 || !strings.Contains(f.Reason, "404") {
		t.Errorf("perm-404: %+v", f)
	}
	if f := got["panics"]; f.Kind != messages.FailurePermanent || !strings.Contains(f.Reason, "boom") {
		t.Errorf("panics: %+v", f)
	}
	if h.Calls("perm-404") != 1 {
		t.Errorf("permanent failure retried: %d calls", h.Calls("perm-404"))
	}
	if n := len(env.DeadLetters()); n != 3 {
		t.Errorf("dead letters = %d, want 3", n)
	}
}

func TestLongHandlerIsKeptAliveNotRedelivered(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(func(ctx context.Context, _ *runtime.Command, _ int) error {
		// Simulated long work: three times the ack wait.
		select {
		case <-time.After(3 * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	cfg := fastConfig()
	cfg.AckWait = time.Second
	env.StartRuntime(cfg, runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"long"}`)
	w.Next(30*time.Second, testenv.ForCommand("long"))
	if n := h.Calls("long"); n != 1 {
		t.Fatalf("long command handled %d times, want 1 (kept alive past AckWait)", n)
	}
}

func TestResentCommandAnsweredFromLedger(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"again","top":2}`)
	first := w.Next(20*time.Second, testenv.ForCommand("again"))
	env.Publish(messages.CmdGenerateReport, `{"id":"again","top":2}`, nats.MsgIdHdr, "resend-2")
	second := w.Next(20*time.Second, testenv.ForCommand("again"))
	if h.Calls("again") != 1 {
		t.Fatalf("handler ran %d times for a re-sent command", h.Calls("again"))
	}
	if first.Header.Get("ce-id") != second.Header.Get("ce-id") || string(first.Data) != string(second.Data) {
		t.Errorf("re-sent command got a different outcome:\n%s\n%s", first.Data, second.Data)
	}
	if n := len(env.Events(messages.EvtReportGenerated)); n != 1 {
		t.Errorf("stored events = %d, want 1", n)
	}
}

func TestEventPublishedTwiceIsStoredOnce(t *testing.T) {
	env := testenv.Start(t)
	pub, _ := env.EventPublisher()
	ev := &messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: "dup-1"}, TotalGroups: 1}
	for range 2 {
		if err := pub.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(env.Events(messages.EvtReportGenerated)); n != 1 {
		t.Fatalf("stored %d copies of one event id", n)
	}
}

func TestShutdownUnderLoadLosesNothingAndDuplicatesNoEvent(t *testing.T) {
	env := testenv.Start(t)
	var handled atomic.Int64
	h := newReportHandler(func(ctx context.Context, _ *runtime.Command, _ int) error {
		handled.Add(1)
		select {
		case <-time.After(5 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	const n = 300
	first := env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	go func() {
		for i := range n {
			env.Publish(messages.CmdGenerateReport, fmt.Sprintf(`{"id":"load-%d"}`, i))
		}
	}()
	// Stop the first processor once it is mid-stream.
	for range n / 4 {
		w.Next(30*time.Second, nil)
	}
	if err := first.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	env.StartRuntime(fastConfig(), runtime.Adapt(h))

	deadline := time.Now().Add(60 * time.Second)
	for {
		stored := env.Events(messages.EvtReportGenerated)
		if len(stored) >= n {
			seen := map[string]bool{}
			for _, m := range stored {
				id := m.Header.Get("ce-id")
				if seen[id] {
					t.Fatalf("event %s stored twice", id)
				}
				seen[id] = true
			}
			if len(stored) != n {
				t.Fatalf("stored %d events for %d commands", len(stored), n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d commands completed after restart", len(stored), n)
		}
		w.Next(30*time.Second, nil) // await progress, not a sleep
	}
	if len(env.DeadLetters()) != 0 {
		t.Error("shutdown dead-lettered commands")
	}
}

func TestShutdownCancelsBlockedHandlerAfterGraceAndWorkResumes(t *testing.T) {
	env := testenv.Start(t)
	started := make(chan struct{}, 1)
	blocking := newReportHandler(func(ctx context.Context, cmd *runtime.Command, _ int) error {
		started <- struct{}{}
		<-ctx.Done() // stuck until shutdown cancels it
		return ctx.Err()
	})
	cfg := fastConfig()
	cfg.ShutdownGrace = 500 * time.Millisecond
	first := env.StartRuntime(cfg, runtime.Adapt(blocking))
	env.Publish(messages.CmdGenerateReport, `{"id":"stuck"}`)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never started")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- first.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop hangs while a handler is blocked")
	}
	if len(env.DeadLetters()) != 0 {
		t.Fatal("a command interrupted by shutdown was dead-lettered")
	}
	// The interrupted command is redelivered to the next processor.
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	next := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(next))
	w.Next(30*time.Second, testenv.ForCommand("stuck"))
	rec, err := env.Ledger.Record(context.Background(), messages.CmdGenerateReport, "stuck")
	if err != nil || rec == nil || rec.Deliveries > 2 {
		t.Fatalf("record %+v (%v): shutdown burned deliveries", rec, err)
	}
}

func TestCapturedDeadLetterIsAnnounced(t *testing.T) {
	env := testenv.Start(t)
	rt := env.StartRuntime(fastConfig(), runtime.Adapt(newReportHandler(nil)))
	w := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	rt.AnnounceCaptured(context.Background(), &dlq.Entry{
		CommandType: messages.CmdGenerateReport, CommandID: "lost-1", Kind: messages.FailureExhausted,
		Reason: "max deliveries reached without dead-lettering", OriginalSubject: env.Subjects.Command(messages.CmdGenerateReport),
		OriginalSeq: 7, Deliveries: 4, Body: []byte(`{"id":"lost-1","correlationId":"c-9"}`),
	})
	f := testenv.Decode[messages.CommandFailed](t, w.Next(10*time.Second, testenv.ForCommand("lost-1")))
	if f.Kind != messages.FailureExhausted || f.CorrelationID != "c-9" || f.Deliveries != 4 {
		t.Errorf("command_failed = %+v", f)
	}
	rec, err := env.Ledger.Record(context.Background(), messages.CmdGenerateReport, "lost-1")
	if err != nil || rec == nil || rec.Status != ledger.StatusDeadLettered {
		t.Errorf("ledger record = %+v, %v", rec, err)
	}
}

func TestUnknownCommandTypeIsDeadLettered(t *testing.T) {
	env := testenv.Start(t)
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Events())
	env.Publish("no_such_command", `{"id":"odd-1"}`)
	env.Publish(messages.CmdGenerateReport, `{"id":"normal-1"}`)
	got := map[string]string{}
	for len(got) < 2 {
		m := w.Next(20*time.Second, nil)
		got[m.Header.Get(events.HeaderCommandID)] = m.Subject
	}
	if got["odd-1"] != env.Subjects.Event(messages.EvtCommandFailed) || got["normal-1"] != env.Subjects.Event(messages.EvtReportGenerated) {
		t.Fatalf("events = %v", got)
	}
	dl := env.DeadLetters()
	if len(dl) != 1 || dl[0].CommandID != "odd-1" || !strings.Contains(dl[0].Reason, "unknown command type") ||
		dl[0].OriginalSubject != "groups.cmd.no_such_command" {
		t.Fatalf("dead letters = %+v", dl)
	}
	if h.Calls("normal-1") != 1 {
		t.Errorf("known command handled %d times", h.Calls("normal-1"))
	}
}

func TestReplayAfterExhaustionGetsItsRetriesBack(t *testing.T) {
	env := testenv.Start(t)
	var healthy atomic.Bool
	h := newReportHandler(func(_ context.Context, cmd *runtime.Command, attempt int) error {
		if !healthy.Load() || attempt%2 == 1 { // after recovery: fails once more, then succeeds
			return errors.New("wix 503")
		}
		return nil
	})
	cfg := fastConfig()
	cfg.MaxDeliver = 2
	env.StartRuntime(cfg, runtime.Adapt(h))
	w := env.Watch(env.Subjects.Events())
	env.Publish(messages.CmdGenerateReport, `{"id":"flaky-replay"}`)
	f := testenv.Decode[messages.CommandFailed](t, w.Next(30*time.Second, testenv.ForCommand("flaky-replay")))
	if f.Kind != messages.FailureExhausted {
		t.Fatalf("first run: %+v", f)
	}
	healthy.Store(true)
	// A replay (what groupctl dlq replay publishes): same command, new message.
	env.Publish(messages.CmdGenerateReport, `{"id":"flaky-replay"}`, "Nats-Msg-Id", "replay:1")
	m := w.Next(30*time.Second, testenv.ForCommand("flaky-replay"))
	if m.Subject != env.Subjects.Event(messages.EvtReportGenerated) {
		t.Fatalf("replay ended with %s: %s (its failure count was not reset)", m.Subject, m.Data)
	}
}

// TestOneCommandRunsOnOneInstanceAtATime: the same command id arriving
// twice (re-sent after the commands stream's duplicate window) while the
// first copy still runs is held off by the first one's lease and
// acknowledged: the work happens once, the running copy's event answers
// both.
func TestOneCommandRunsOnOneInstanceAtATime(t *testing.T) {
	env := testenv.Start(t)
	release := make(chan struct{})
	var running, maxRunning atomic.Int32
	work := func(ctx context.Context, _ *runtime.Command, _ int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a, b := newReportHandler(work), newReportHandler(work)
	cfg := fastConfig()
	cfg.AckWait = 3 * time.Second // the lease is renewed every second while the work lasts
	env.StartRuntime(cfg, runtime.Adapt(a))
	env.StartRuntime(cfg, runtime.Adapt(b))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"twice"}`, "Nats-Msg-Id", "copy-1")
	for a.Calls("twice")+b.Calls("twice") == 0 {
		runtimeGosched()
	}
	env.Publish(messages.CmdGenerateReport, `{"id":"twice"}`, "Nats-Msg-Id", "copy-2")
	// Longer than the lease: the holder must keep renewing it.
	time.Sleep(2 * cfg.AckWait)
	close(release)
	w.Next(30*time.Second, testenv.ForCommand("twice"))
	// The second copy was acknowledged, not left to be redelivered forever.
	cons, err := env.JS.Consumer(context.Background(), env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := cons.Info(context.Background())
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies still pending: %+v", info)
		}
	}
	if got := a.Calls("twice") + b.Calls("twice"); got != 1 {
		t.Fatalf("handler ran %d times for one command", got)
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("%d copies ran at once", maxRunning.Load())
	}
	if n := len(env.Events(messages.EvtReportGenerated)); n != 1 {
		t.Fatalf("stored %d events", n)
	}
}

func runtimeGosched() { time.Sleep(time.Millisecond) }

// holdPublisher holds the handler that published the first event on topic
// until a second one is published there (or 15 s pass).
type holdPublisher struct {
	message.Publisher
	topic  string
	first  atomic.Bool
	once   sync.Once
	second chan struct{}
}

func (p *holdPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if topic != p.topic {
		return err
	}
	if p.first.CompareAndSwap(false, true) {
		select {
		case <-p.second:
		case <-time.After(15 * time.Second):
		}
	} else {
		p.once.Do(func() { close(p.second) })
	}
	return err
}

// TestResentRightAfterTheEventIsAnswered: a copy of a command sent once its
// event is out, while the first copy's handler is still returning, is
// answered from the ledger (it used to be taken for a second copy running
// beside the first, and acknowledged without an answer).
func TestResentRightAfterTheEventIsAnswered(t *testing.T) {
	env := testenv.Start(t)
	_, pub := env.EventPublisher()
	hold := &holdPublisher{Publisher: pub, topic: env.Subjects.Event(messages.EvtReportGenerated), second: make(chan struct{})}
	cfg := fastConfig()
	cfg.Subjects = env.Subjects
	rt := runtime.New(cfg, runtime.Deps{JS: env.JS, Publisher: pub, Events: events.NewPublisher(hold, env.Subjects, "groupflow-test"), Ledger: env.Ledger, Logger: env.Log})
	h := newReportHandler(nil)
	runtime.Register[*messages.GenerateReport](rt, h, 4)
	if err := rt.Prepare(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-rt.Running()
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"quick","top":2}`)
	first := w.Next(20*time.Second, testenv.ForCommand("quick"))
	env.Publish(messages.CmdGenerateReport, `{"id":"quick","top":2}`, nats.MsgIdHdr, "quick-2")
	second := w.Next(10*time.Second, testenv.ForCommand("quick"))
	if h.Calls("quick") != 1 || first.Header.Get("ce-id") != second.Header.Get("ce-id") {
		t.Fatalf("handled %d times; events %s / %s", h.Calls("quick"), first.Header.Get("ce-id"), second.Header.Get("ce-id"))
	}
}
