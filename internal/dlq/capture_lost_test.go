package dlq_test

import (
	"context"
	"strings"
	"sync"
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
	var mu sync.Mutex
	var announced []*dlq.Entry
	capture := dlq.NewCapture(env.Conn(), js, env.Subjects, zaptest.NewLogger(t))
	capture.OnCaptured = func(_ context.Context, e *dlq.Entry) {
		mu.Lock()
		defer mu.Unlock()
		announced = append(announced, e)
	}
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	defer close(js.release) // before Close: a failing run does not wait out the capture

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
		mu.Lock()
		n := len(announced)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the dead letter was stored (its PubAck lost) it is still not announced: the publish has waited %v for its reply",
				within, time.Since(time.Unix(0, js.heldAt.Load())).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	dls := env.DeadLetters()
	mu.Lock()
	defer mu.Unlock()
	if len(dls) != 1 || len(announced) != 1 || announced[0].Seq != dls[0].Seq || announced[0].CommandID != "report-lost-ack" {
		t.Fatalf("announced %+v; dead letters %+v", announced, dls)
	}
}
