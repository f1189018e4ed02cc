package dlq_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// lostAckJS is the capture's JetStream whose first publish on a DLQ
// subject is stored by the stream but whose PubAck never comes back (a
// reply lost in a stream leader change): the call waits as a real one
// does, until its context ends, or until the test releases it.
type lostAckJS struct {
	jetstream.JetStream
	dlqPrefix string
	lost      atomic.Bool
	held      chan struct{} // closed when the lost publish starts waiting
	release   chan struct{} // closed by the test's end
	heldAt    atomic.Int64
}

func (j *lostAckJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if !strings.HasPrefix(m.Subject, j.dlqPrefix) || !j.lost.CompareAndSwap(false, true) {
		return j.JetStream.PublishMsg(ctx, m, opts...)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := j.JetStream.PublishMsg(sctx, m, opts...) // stored ...
	cancel()
	if err != nil {
		return nil, err
	}
	j.heldAt.Store(time.Now().UnixNano())
	close(j.held)
	select { // ... and its reply lost
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-j.release:
		return nil, context.DeadlineExceeded
	}
}

// TestCaptureWithALostPubAckIsAnnounced: the capture of an exhausted
// command stores its dead letter, but the DLQ's PubAck is lost. The
// advisory is sent once, so the capture must learn of the outcome itself:
// within a bounded wait it retries (the dead letter's Nats-Msg-Id
// deduplicates the retry) and announces the dead letter it stored, once.
// It must neither wait out its whole 2-minute budget on the one reply nor
// take its own stored entry for someone else's and stay silent (whoever
// waits for the command would never hear of it).
func TestCaptureWithALostPubAckIsAnnounced(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	js := &lostAckJS{JetStream: env.JS, dlqPrefix: strings.TrimSuffix(env.Subjects.DLQs(), ">"),
		held: make(chan struct{}), release: make(chan struct{})}
	_, announced := startRecordingCapture(t, ctx, env, js, zaptest.NewLogger(t), nil)
	defer close(js.release) // before the capture's Close (a cleanup): a failing run does not wait it out

	env.Publish(messages.CmdGenerateReport, `{"id":"report-lost-ack"}`)
	exhaust(t, env, ctx, "groupflow_generate_report", messages.CmdGenerateReport)
	select {
	case <-js.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the capture never published the dead letter")
	}

	// Stored once (the lost publish), whatever the retries.
	if dls := env.DeadLetters(); len(dls) != 1 || dls[0].CommandID != "report-lost-ack" {
		t.Fatalf("dead letters: %+v", dls)
	}
	const within = 40 * time.Second // the capture's own budget is 2 minutes
	deadline := time.Now().Add(within)
	for {
		if len(announced.list()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the dead letter was stored (its PubAck lost) it is still not announced: the publish has waited %v for its reply",
				within, time.Since(time.Unix(0, js.heldAt.Load())).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	dls := env.DeadLetters()
	if a := announced.list(); len(dls) != 1 || len(a) != 1 || a[0].Seq != dls[0].Seq || a[0].CommandID != "report-lost-ack" {
		t.Fatalf("announced %+v; dead letters %+v", a, dls)
	}
}

// TestReplayWithALostPubAckGoesOn: an operator replays two dead letters
// under a long deadline (groupctl's --timeout, the console's request); the
// first republish is stored but its PubAck is lost. The replay must not
// wait out the whole deadline on that one reply and then give up on the
// rest: within a bounded wait it retries (ReplayMsgID deduplicates it),
// counts the entry replayed, removes it, and replays the second one, each
// command stored once.
func TestReplayWithALostPubAckGoesOn(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	for _, id := range []string{"replay-lost-1", "replay-lost-2"} {
		deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: id,
			Reason: "wix: 400", Body: []byte(`{"id":"` + id + `"}`)})
	}
	js := &lostAckJS{JetStream: env.JS, dlqPrefix: env.Subjects.Command(messages.CmdGenerateReport),
		held: make(chan struct{}), release: make(chan struct{})}
	defer func() {
		select {
		case <-js.release:
		default:
			close(js.release)
		}
	}()
	store := dlq.NewStore(js, env.Subjects)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type result struct {
		res dlq.ReplayResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{})
		done <- result{res, err}
	}()
	select {
	case <-js.held:
	case r := <-done:
		t.Fatalf("replayed without publishing: %+v %v", r.res, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the replay never republished")
	}
	const within = 40 * time.Second
	var r result
	select {
	case r = <-done:
	case <-time.After(within):
		close(js.release)
		r = <-done
		t.Fatalf("%v after the first republish (its PubAck lost) the replay still waited on its reply (then: %+v %v)", within, r.res, r.err)
	}
	if r.err != nil || r.res.Replayed != 2 || r.res.Failed != 0 {
		t.Fatalf("replay: %+v %v", r.res, r.err)
	}
	if msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdGenerateReport)); len(msgs) != 2 {
		t.Fatalf("commands stream: %d messages, want 2 (each replayed command once)", len(msgs))
	}
	if dls := env.DeadLetters(); len(dls) != 0 {
		t.Fatalf("left in the DLQ: %+v", dls)
	}
}

// lostAcksJS stores each of the first n publishes on a DLQ subject and
// answers it as a reply that never came (at once, as a call whose own
// timeout ran out would).
type lostAcksJS struct {
	jetstream.JetStream
	dlqPrefix string
	n         atomic.Int32
}

func (j *lostAcksJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := j.JetStream.PublishMsg(ctx, m, opts...)
	if err == nil && strings.HasPrefix(m.Subject, j.dlqPrefix) && j.n.Add(-1) >= 0 {
		return nil, context.DeadlineExceeded
	}
	return ack, err
}

// TestCaptureWhoseEveryPublishLostItsReplyIsAnnounced: every publish of the
// capture's first attempt (its bounded retries included) is stored with
// its reply lost, so the attempt fails; the next attempt finds the entry in
// the DLQ. That entry is the capture's own (an earlier attempt may have
// stored it): it is announced, once, not taken for an earlier dead letter.
func TestCaptureWhoseEveryPublishLostItsReplyIsAnnounced(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	js := &lostAcksJS{JetStream: env.JS, dlqPrefix: strings.TrimSuffix(env.Subjects.DLQs(), ">")}
	js.n.Store(3) // the attempt's publish and both retries
	announced := make(chan *dlq.Entry, 2)
	capture := dlq.NewCapture(env.Conn(), js, env.Subjects, zaptest.NewLogger(t))
	capture.OnCaptured = func(_ context.Context, e *dlq.Entry) { announced <- e }
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()

	env.Publish(messages.CmdGenerateReport, `{"id":"report-all-lost"}`)
	exhaust(t, env, ctx, "groupflow_generate_report", messages.CmdGenerateReport)
	var e *dlq.Entry
	select {
	case e = <-announced:
	case <-time.After(60 * time.Second):
		t.Fatalf("the dead letter, stored with every reply lost, was never announced (%d lost replies left)", js.n.Load())
	}
	dls := env.DeadLetters()
	if len(dls) != 1 || e.CommandID != "report-all-lost" || e.Seq != dls[0].Seq {
		t.Fatalf("announced %+v; dead letters %+v", e, dls)
	}
	select {
	case e2 := <-announced:
		t.Fatalf("announced twice: %+v", e2)
	default:
	}
}
