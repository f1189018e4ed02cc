package runtime_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"groupflow/internal/dlq"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
)

// TestForgedAdvisoryOfARunningCommandLeavesItAlone: max-deliveries
// advisories are core NATS messages anyone allowed on their subject can
// publish. One naming the typed consumer and the stream sequence of a
// command that is running (its first delivery, far from MaxDeliver) is
// forged: the processor's capture must neither mark the running command
// dead-lettered (cutting its lease) nor announce command_failed for a
// command that completes.
func TestForgedAdvisoryOfARunningCommandLeavesItAlone(t *testing.T) {
	env := testenv.Start(t)
	held := startHeldReport(t, env, "forged-adv")
	rt, pub := held.rt, held.pub
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	capture := dlq.NewCapture(env.NC, env.JS, env.Subjects, nil)
	capture.CatchAll = runtime.UnknownCommandsDurable // as the processor sets it up
	captured := make(chan *dlq.Entry, 1)
	capture.OnCaptured = func(ctx context.Context, e *dlq.Entry) {
		rt.AnnounceCaptured(ctx, e) // as the processor sets it up
		captured <- e
	}
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	b, _ := json.Marshal(dlq.MaxDeliveriesAdvisory{Type: "io.nats.jetstream.advisory.v1.max_deliver",
		Stream: env.Subjects.CommandStream(), Consumer: "groupflow_generate_report", StreamSeq: pub.Sequence, Deliveries: 5, Timestamp: time.Now()})
	if err := env.NC.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+env.Subjects.CommandStream()+".groupflow_generate_report", b); err != nil {
		t.Fatal(err)
	}
	// The capture stores the message (it cannot tell a forged advisory from
	// a genuine one) and hands it to AnnounceCaptured, which returns once
	// it has decided: after the running command's lease was renewed.
	select {
	case <-captured:
	case <-time.After(30 * time.Second):
		t.Fatal("the advisory was never captured and decided on")
	}
	held.leftAloneAndCompletes(ctx, "a forged advisory")
}
