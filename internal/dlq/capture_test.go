package dlq_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestCaptureMaxDeliveries: a consumer with MaxDeliver 2 whose message is
// nak'ed twice without dead-lettering → the max-deliveries advisory is
// captured into the DLQ, once.
func TestCaptureMaxDeliveries(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	capture := dlq.NewCapture(env.Conn(), env.JS, env.Subjects, zaptest.NewLogger(t))
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()

	cons, err := env.JS.CreateOrUpdateConsumer(ctx, env.Subjects.CommandStream(), jetstream.ConsumerConfig{
		Durable:       "groupflow_generate_report",
		FilterSubject: env.Subjects.Command(messages.CmdGenerateReport),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Second,
		MaxDeliver:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	ack := env.Publish(messages.CmdGenerateReport, `{"top":5}`, "Nats-Msg-Id", "report-77", "X-Api-Token", "secret", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

	for i := 0; i < 2; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}

	// The server gives up (and advises) when it would redeliver: a worker
	// still pulling.
	if m, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
		t.Fatalf("delivered a third time: %s", m.Data())
	}

	store := dlq.NewStore(env.JS, env.Subjects)
	var entries []*dlq.Entry
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries, err = store.List(ctx, dlq.Filter{}); err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			break
		}
	}
	if len(entries) != 1 {
		t.Fatalf("entries: %+v", entries)
	}
	e, err := store.Get(ctx, entries[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != messages.FailureExhausted || e.Reason != dlq.ReasonExhausted || e.CommandID != "report-77" ||
		e.CommandType != messages.CmdGenerateReport || e.OriginalSeq != ack.Sequence || e.Deliveries != 2 ||
		e.OriginalSubject != env.Subjects.Command(messages.CmdGenerateReport) || string(e.Body) != `{"top":5}` ||
		e.Handler != "groupflow_generate_report" {
		t.Fatalf("entry: %+v", e)
	}
	if e.Headers["traceparent"] == "" || e.Headers["X-Api-Token"] != "" {
		t.Fatalf("headers: %v", e.Headers)
	}

	// A second advisory for the same message (or one the runtime already
	// dead-lettered) is not stored again.
	got, err := capture.CaptureSeq(ctx, dlq.MaxDeliveriesAdvisory{Stream: env.Subjects.CommandStream(), StreamSeq: ack.Sequence, Deliveries: 2})
	if err != nil || got != nil {
		t.Fatalf("second capture: %+v %v", got, err)
	}
	if n := len(env.DeadLetters()); n != 1 {
		t.Fatalf("%d dead letters", n)
	}

	// And it is replayable like any dead letter.
	res, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay: %v %+v", err, res)
	}
	msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdGenerateReport))
	if len(msgs) != 2 || msgs[1].Header.Get(dlq.HeaderReplayCommandID) != "report-77" {
		t.Fatalf("replayed: %v", msgs)
	}
}

// TestCaptureSkipsRuntimeDeadLetter: the runtime dead-lettered the message on
// its last delivery; the advisory adds nothing.
func TestCaptureSkipsRuntimeDeadLetter(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	ack := env.Publish(messages.CmdGenerateReport, `{"id":"r-1"}`)
	deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: "r-1", OriginalSeq: ack.Sequence,
		Reason: "wix: 400", Body: []byte(`{"id":"r-1"}`)})
	c := dlq.NewCapture(env.NC, env.JS, env.Subjects, nil)
	got, err := c.CaptureSeq(ctx, dlq.MaxDeliveriesAdvisory{Stream: env.Subjects.CommandStream(), StreamSeq: ack.Sequence, Deliveries: 10})
	if err != nil || got != nil {
		t.Fatalf("capture: %+v %v", got, err)
	}
	if n := len(env.DeadLetters()); n != 1 {
		t.Fatalf("%d dead letters", n)
	}
}

// The catch-all consumer's exhaustion is ignored only for known command
// types: an unknown type's copy has no other consumer, so it is captured.
func TestCaptureOfTheCatchAllKeepsUnknownTypes(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	capture := dlq.NewCapture(env.Conn(), env.JS, env.Subjects, zaptest.NewLogger(t))
	capture.CatchAll = "groupflow_unknown_commands"
	ack := env.Publish("bogus_type", `{"id":"u-1"}`)
	e, err := capture.CaptureSeq(ctx, dlq.MaxDeliveriesAdvisory{Stream: env.Subjects.CommandStream(),
		Consumer: capture.CatchAll, StreamSeq: ack.Sequence, Deliveries: 10})
	if err != nil {
		t.Fatal(err)
	}
	if e == nil || e.CommandType != messages.UnknownCommandType {
		t.Fatalf("an unknown command whose catch-all deliveries ran out was not captured: %+v", e)
	}
}
