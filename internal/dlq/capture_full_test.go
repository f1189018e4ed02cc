package dlq_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// announcements records the entries a capture announced (its OnCaptured).
type announcements struct {
	mu sync.Mutex
	es []*dlq.Entry
}

func (a *announcements) record(_ context.Context, e *dlq.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.es = append(a.es, e)
}

// list returns what was announced so far.
func (a *announcements) list() []*dlq.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.es)
}

// startRecordingCapture starts a capture on js, logging to log, recording
// what it announces, after configure (nil: none) has set its options (it
// may replace OnCaptured); it is closed when the test ends.
func startRecordingCapture(t *testing.T, ctx context.Context, env *testenv.Env, js jetstream.JetStream,
	log *zap.Logger, configure func(*dlq.Capture)) (*dlq.Capture, *announcements) {
	t.Helper()
	var announced announcements
	capture := dlq.NewCapture(env.Conn(), js, env.Subjects, log)
	capture.OnCaptured = announced.record
	if configure != nil {
		configure(capture)
	}
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = capture.Close() })
	return capture, &announced
}

// fastFullRetry retries a capture refused by a full DLQ every 50 ms.
func fastFullRetry(c *dlq.Capture) { c.FullRetry = 50 * time.Millisecond }

// awaitCond polls cond until it holds or within elapses, then fails with what.
func awaitCond(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
	}
}

// fillDLQ makes the DLQ hold one dead letter and holds one (a filler):
// the next store is refused as full.
func fillDLQ(t *testing.T, env *testenv.Env) jetstream.Stream {
	t.Helper()
	st := limitDLQ(t, env, 1)
	deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdProvisionGroup, CommandID: "filler",
		Reason: "wix: 400", Body: []byte(`{"id":"filler"}`)})
	return st
}

// observedLogger logs to the test and records what is logged at level or
// above, for the test to look for.
func observedLogger(t *testing.T, level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	obs, logs := observer.New(level)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs)), logs
}

// limitDLQ makes the DLQ hold at most maxMsgs dead letters, refusing new ones
// (discard new) as an operator's --dlq-max-msgs does.
func limitDLQ(t *testing.T, env *testenv.Env, maxMsgs int64) jetstream.Stream {
	t.Helper()
	ctx := context.Background()
	st, err := env.JS.Stream(ctx, env.Subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = maxMsgs, jetstream.DiscardNew
	if st, err = env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return st
}

// exhaust makes the server give up on the message at the head of a fresh
// consumer with MaxDeliver 2 (two naks), which sends the max-deliveries
// advisory.
func exhaust(t *testing.T, env *testenv.Env, ctx context.Context, durable, commandType string) {
	t.Helper()
	cons, err := env.JS.CreateOrUpdateConsumer(ctx, env.Subjects.CommandStream(), jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: env.Subjects.Command(commandType),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Second,
		MaxDeliver:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	// The server advises when it would redeliver: a worker still pulling.
	if m, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
		t.Fatalf("delivered a third time: %s", m.Data())
	}
}

// TestCaptureWaitsWhileDLQFull: a command exhausts its deliveries while the
// DLQ (max 1 message, discard new) is full → it is not stored and not given
// up: Waiting reports it; once the DLQ is purged it is stored exactly once and
// announced once, and Waiting drops to 0.
func TestCaptureWaitsWhileDLQFull(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dlqStream := fillDLQ(t, env)

	capture, announced := startRecordingCapture(t, ctx, env, env.JS, zaptest.NewLogger(t), fastFullRetry)

	ack := env.Publish(messages.CmdGenerateReport, `{"id":"report-full"}`)
	exhaust(t, env, ctx, "groupflow_generate_report", messages.CmdGenerateReport)

	// Refused by the full DLQ: waiting, not stored, not announced.
	awaitCond(t, 60*time.Second, "capture never reported waiting for the full DLQ", func() bool { return capture.Waiting() == 1 })
	if dls := env.DeadLetters(); len(dls) != 1 || dls[0].CommandID != "filler" {
		t.Fatalf("while full, dead letters: %+v", dls)
	}
	if a := announced.list(); len(a) != 0 {
		t.Fatalf("announced while the DLQ was full: %+v", a)
	}
	// Not lost meanwhile: the command is still in its stream.
	if msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdGenerateReport)); len(msgs) != 1 || msgs[0].Seq != ack.Sequence {
		t.Fatalf("commands stream while waiting: %v", msgs)
	}

	// Room: the operator purges the DLQ.
	if err := dlqStream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 30*time.Second, "capture still waiting after the DLQ was purged", func() bool { return capture.Waiting() == 0 })
	// Waiting drops only after the holder stored, announced and returned;
	// Close waits for any other goroutine of the capture.
	if err := capture.Close(); err != nil {
		t.Fatal(err)
	}

	dls := env.DeadLetters()
	if len(dls) != 1 {
		t.Fatalf("after purge, dead letters: %+v", dls)
	}
	e := dls[0]
	if e.Kind != messages.FailureExhausted || e.Reason != dlq.ReasonExhausted || e.CommandID != "report-full" ||
		e.CommandType != messages.CmdGenerateReport || e.OriginalSeq != ack.Sequence || e.Deliveries != 2 ||
		e.Handler != "groupflow_generate_report" || string(e.Body) != `{"id":"report-full"}` {
		t.Fatalf("entry: %+v", e)
	}
	if a := announced.list(); len(a) != 1 || a[0].Seq != e.Seq || a[0].CommandID != "report-full" {
		t.Fatalf("announced %d: %+v (stored seq %d)", len(a), a, e.Seq)
	}
}

// TestCaptureFullThenTransientErrorKeepsWaiting: the full DLQ refuses a
// capture, then storing fails for another (transient) reason — here the DLQ
// stream briefly stops listening on its subjects → the command is still held,
// not given up after the advisory's few retries: Waiting reports it, and once
// the DLQ is back and purged it is stored and announced exactly once.
func TestCaptureFullThenTransientErrorKeepsWaiting(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dlqStream := fillDLQ(t, env)
	// An attempt to store the capture is a publish on this subject.
	attempts, err := env.NC.SubscribeSync(env.Subjects.DLQ(messages.CmdGenerateReport))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}

	log, logs := observedLogger(t, zap.WarnLevel)
	capture, announced := startRecordingCapture(t, ctx, env, env.JS, log, fastFullRetry)

	ack := env.Publish(messages.CmdGenerateReport, `{"id":"report-blip"}`)
	exhaust(t, env, ctx, "groupflow_generate_report", messages.CmdGenerateReport)

	// The first attempt meets the full DLQ; then the DLQ becomes unreachable.
	if _, err := attempts.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("no capture attempt: %v", err)
	}
	// (Unsubscribed first: a listener would answer nothing and stall the
	// publish instead of letting it fail with no responders.)
	if err := attempts.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	cfg := dlqStream.CachedInfo().Config
	parked := cfg
	parked.Subjects = []string{"groupflow-test.parked-dlq"}
	if _, err := env.JS.UpdateStream(ctx, parked); err != nil {
		t.Fatal(err)
	}

	awaitCond(t, 30*time.Second, "capture gave up instead of waiting", func() bool { return capture.Waiting() == 1 })
	// A retry met the unreachable DLQ and the capture is still held.
	awaitCond(t, 30*time.Second, "no retry met the unreachable DLQ", func() bool {
		return logs.FilterMessage("capture while the DLQ was full failed; retrying").Len() > 0
	})
	if n := capture.Waiting(); n != 1 {
		t.Fatalf("waiting %d after a failed retry, want 1", n)
	}
	// The DLQ is back (still full), then purged.
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := dlqStream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 30*time.Second, "capture still waiting after the DLQ was purged", func() bool { return capture.Waiting() == 0 })
	if err := capture.Close(); err != nil {
		t.Fatal(err)
	}

	dls := env.DeadLetters()
	if len(dls) != 1 || dls[0].CommandID != "report-blip" || dls[0].OriginalSeq != ack.Sequence || dls[0].Kind != messages.FailureExhausted {
		t.Fatalf("dead letters: %+v", dls)
	}
	if a := announced.list(); len(a) != 1 || a[0].Seq != dls[0].Seq {
		t.Fatalf("announced %d: %+v (stored seq %d)", len(a), a, dls[0].Seq)
	}
}
