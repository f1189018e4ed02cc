package dlq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestCaptureGoesOnWhileAnAnnouncementWaits: announcing a captured entry
// may wait (the processor waits out a live lease before it announces, see
// runtime.AnnounceCaptured), and advisories are core NATS messages the
// client drops once the capture's buffer is full. An announcement that
// waits — here for ever, until the test ends — must not stop the capture
// of the advisories behind it, even a flood of them (2,000 repeats of the
// first, as a forger would send, more than the old 1,024-message buffer
// held): the next command's advisory is still captured and announced, and
// none is dropped.
func TestCaptureGoesOnWhileAnAnnouncementWaits(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	first := env.Publish(messages.CmdGenerateReport, `{"id":"report-waits"}`)
	second := env.Publish(messages.CmdGenerateReport, `{"id":"report-next"}`)
	release := make(chan struct{})
	defer close(release)
	waiting := make(chan struct{})
	announced := make(chan *dlq.Entry, 4)
	capture, _ := startRecordingCapture(t, ctx, env, env.JS, zaptest.NewLogger(t), func(c *dlq.Capture) {
		c.OnCaptured = func(ctx context.Context, e *dlq.Entry) {
			if e.OriginalSeq == first.Sequence {
				close(waiting)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return
			}
			announced <- e
		}
	})
	advise(t, env, first.Sequence)
	select {
	case <-waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the first advisory was never captured and announced")
	}
	for range 2000 {
		advise(t, env, first.Sequence)
	}
	advise(t, env, second.Sequence)
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-announced:
		if e.OriginalSeq != second.Sequence || e.CommandID != "report-next" {
			t.Fatalf("announced %+v, want the second command's entry", e)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the second command's advisory was not captured while the first one's announcement waited (%d advisories dropped)", capture.Dropped())
	}
	if n := capture.Dropped(); n != 0 {
		t.Errorf("%d advisories dropped", n)
	}
	if dls := env.DeadLetters(); len(dls) != 2 {
		t.Errorf("dead letters: %d, want 2 (one per command, whatever the repeats)", len(dls))
	}
}

// TestRepeatedAdvisoryWhileTheDLQIsFullWaitsOnce: an advisory repeated
// while its capture waits for room in the full DLQ (a forger's flood, or
// the same advisory seen twice) is that one capture: Waiting stays 1 — no
// goroutine and no DLQ search per repeat — and once the DLQ has room the
// command is stored and announced once.
func TestRepeatedAdvisoryWhileTheDLQIsFullWaitsOnce(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dlqStream := fillDLQ(t, env)
	log, logs := observedLogger(t, zap.DebugLevel)
	capture, announced := startRecordingCapture(t, ctx, env, env.JS, log, fastFullRetry)
	ack := env.Publish(messages.CmdGenerateReport, `{"id":"report-repeated"}`)
	advise(t, env, ack.Sequence)
	awaitCond(t, 30*time.Second, "the capture never waited for the full DLQ", func() bool { return capture.Waiting() == 1 })
	const repeats = 50
	for range repeats {
		advise(t, env, ack.Sequence)
	}
	awaitCond(t, 30*time.Second, "the repeats were not all seen", func() bool {
		return logs.FilterMessage("max-deliveries advisory repeated while its capture is in progress").Len() == repeats
	})
	if n := capture.Waiting(); n != 1 {
		t.Fatalf("waiting %d after %d repeats of one advisory, want 1", n, repeats)
	}
	if err := dlqStream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 30*time.Second, "capture still waiting after the DLQ was purged", func() bool { return capture.Waiting() == 0 })
	if err := capture.Close(); err != nil {
		t.Fatal(err)
	}
	if dls := env.DeadLetters(); len(dls) != 1 || dls[0].OriginalSeq != ack.Sequence {
		t.Fatalf("dead letters: %+v", dls)
	}
	if a := announced.list(); len(a) != 1 || a[0].OriginalSeq != ack.Sequence {
		t.Fatalf("announced %d: %+v", len(a), a)
	}
}

// advise publishes a max-deliveries advisory of the report consumer for
// the commands stream's message seq, as the server (or a forger) would.
func advise(t *testing.T, env *testenv.Env, seq uint64) {
	t.Helper()
	b, _ := json.Marshal(dlq.MaxDeliveriesAdvisory{Type: "io.nats.jetstream.advisory.v1.max_deliver",
		Stream: env.Subjects.CommandStream(), Consumer: "groupflow_generate_report", StreamSeq: seq, Deliveries: 25, Timestamp: time.Now()})
	if err := env.NC.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+env.Subjects.CommandStream()+".groupflow_generate_report", b); err != nil {
		t.Fatal(err)
	}
}

// TestHeldCapturesAreBounded: while the DLQ is full, each exhausted command
// waits for room (held, retried); how many may wait is bounded (one per
// commands-stream message otherwise: a forger naming every message would
// hold them all). Past the bound an advisory is dropped with an error line,
// and its claim released: the same advisory sent again once there is room
// is captured.
func TestHeldCapturesAreBounded(t *testing.T) {
	t.Cleanup(dlq.SetMaxHeld(2)) // restored after the capture closes (cleanups run last first)
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dlqStream := fillDLQ(t, env)
	log, logs := observedLogger(t, zap.ErrorLevel)
	capture, announced := startRecordingCapture(t, ctx, env, env.JS, log, fastFullRetry)
	var seqs []uint64
	for _, id := range []string{"held-1", "held-2", "held-3"} {
		seqs = append(seqs, env.Publish(messages.CmdGenerateReport, `{"id":"`+id+`"}`).Sequence)
	}
	advise(t, env, seqs[0])
	advise(t, env, seqs[1])
	awaitCond(t, 30*time.Second, "the first two never waited for the full DLQ", func() bool { return capture.Waiting() == 2 })
	advise(t, env, seqs[2])
	awaitCond(t, 30*time.Second, "the third was not dropped past the bound", func() bool {
		return logs.FilterMessageSnippet("too many exhausted commands already wait").Len() == 1
	})
	if n := capture.Waiting(); n != 2 {
		t.Fatalf("waiting %d, want the bound (2)", n)
	}
	limitDLQ(t, env, 10)
	if err := dlqStream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 30*time.Second, "held captures not stored once the DLQ had room", func() bool { return capture.Waiting() == 0 })
	advise(t, env, seqs[2])
	awaitCond(t, 30*time.Second, "the dropped advisory, sent again, was not captured", func() bool { return len(announced.list()) == 3 })
	got := map[uint64]bool{}
	for _, e := range announced.list() {
		got[e.OriginalSeq] = true
	}
	if len(got) != 3 {
		t.Fatalf("announced %+v, want each of %v once", announced.list(), seqs)
	}
}

// stuckJS never answers a stream lookup until release is closed: every
// capture slot stays busy, so the advisory loop stops reading.
type stuckJS struct {
	jetstream.JetStream
	release chan struct{}
}

func (j *stuckJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	select {
	case <-j.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return j.JetStream.Stream(ctx, name)
}

// TestDroppedAdvisoriesAreCountedAndStayCounted: when every capture is
// stuck (the broker does not answer) and a burst fills the buffer, the
// client drops advisories: Dropped counts them (the metric
// groupflow_dlq_advisories_dropped_total reads it), an error line says
// so, and the count does not fall back to 0 once the capture closes (a
// counter never goes down).
func TestDroppedAdvisoriesAreCountedAndStayCounted(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	js := &stuckJS{JetStream: env.JS, release: make(chan struct{})}
	log, logs := observedLogger(t, zap.ErrorLevel)
	capture, _ := startRecordingCapture(t, ctx, env, js, log, nil)
	const burst = 6000 // past 8 stuck captures and the 4,096 waiting
	for i := range burst {
		advise(t, env, uint64(i+1))
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 30*time.Second, "no advisory counted as dropped", func() bool { return capture.Dropped() > 0 })
	close(js.release)
	awaitCond(t, 60*time.Second, "no error line for the dropped advisories", func() bool {
		return logs.FilterMessageSnippet("max-deliveries advisories dropped").Len() > 0
	})
	n := capture.Dropped()
	if err := capture.Close(); err != nil {
		t.Fatal(err)
	}
	if after := capture.Dropped(); after < n {
		t.Fatalf("dropped %d before Close, %d after: the count went down", n, after)
	}
}
