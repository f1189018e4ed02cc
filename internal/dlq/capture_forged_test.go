package dlq_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestCaptureRefusesAnAdvisoryNamingAnotherStream: a max-deliveries
// advisory is a core NATS message whose payload anyone who may publish on
// its subject writes. The capture follows only the commands stream's
// advisory subject but reads the message from the stream the payload names:
// a forged advisory naming the ledger's KV stream (or any other) copied
// that stream's message — here a ledger record holding a secret — into the
// DLQ, where the API, the console and groupctl show it, and announced it as
// a failed command. Only the commands stream may be captured from.
func TestCaptureRefusesAnAdvisoryNamingAnotherStream(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := env.JS.KeyValue(ctx, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "forged-target", []byte(`{"refreshToken":"SECRET-MEMBER-TOKEN"}`))
	if err != nil {
		t.Fatal(err)
	}
	capture := dlq.NewCapture(env.Conn(), env.JS, env.Subjects, zaptest.NewLogger(t))
	captured := make(chan *dlq.Entry, 4)
	capture.OnCaptured = func(_ context.Context, e *dlq.Entry) { captured <- e }
	if err := capture.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	forged := dlq.MaxDeliveriesAdvisory{
		Type: "io.nats.jetstream.advisory.v1.max_deliver", Stream: "KV_" + broker.LedgerBucket,
		Consumer: "groupflow_provision_group", StreamSeq: rev, Deliveries: 5, Timestamp: time.Now(),
	}
	// A genuine command whose advisory follows the forged one: the capture
	// handles advisories in order, so once it is captured the forged one
	// was handled.
	ack := env.Publish(messages.CmdGenerateReport, `{"id":"report-after","top":5}`)
	genuine := dlq.MaxDeliveriesAdvisory{Type: forged.Type, Stream: env.Subjects.CommandStream(),
		Consumer: "groupflow_generate_report", StreamSeq: ack.Sequence, Deliveries: 5, Timestamp: time.Now()}
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + env.Subjects.CommandStream() + ".groupflow_provision_group"
	for _, adv := range []dlq.MaxDeliveriesAdvisory{forged, genuine} {
		b, _ := json.Marshal(adv)
		if err := env.Conn().Publish(subject, b); err != nil {
			t.Fatal(err)
		}
	}
	var stored *dlq.Entry
	for done := false; !done; {
		select {
		case e := <-captured:
			if e.OriginalSeq == ack.Sequence && e.OriginalSubject == env.Subjects.Command(messages.CmdGenerateReport) {
				done = true
			} else {
				stored = e
			}
		case <-ctx.Done():
			t.Fatal("the genuine advisory was not captured")
		}
	}
	entries, lerr := dlq.NewStore(env.JS, env.Subjects).List(ctx, dlq.Filter{})
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, e := range entries {
		if e.OriginalSeq == ack.Sequence && e.OriginalSubject == env.Subjects.Command(messages.CmdGenerateReport) {
			continue
		}
		full, _ := dlq.NewStore(env.JS, env.Subjects).Get(ctx, e.Seq)
		b, _ := json.Marshal(full.WithBody())
		t.Errorf("the DLQ holds dead letter #%d from %s: %s", e.Seq, e.OriginalSubject, b)
		if strings.Contains(string(b), "SECRET-MEMBER-TOKEN") {
			t.Errorf("the ledger record's secret is in the DLQ")
		}
	}
	if stored != nil {
		t.Errorf("a forged advisory naming stream %s was captured and announced (OnCaptured: command %s)", forged.Stream, stored.CommandID)
	}
}
