package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/app"
	"groupflow/internal/ledger"
	"groupflow/internal/natsname"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

// awaitEvent reads sub until an event matches want, or fails after 60 s.
func awaitEvent(t *testing.T, sub *nats.Subscription, what string, want func(*nats.Msg) bool) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		if want(m) {
			return m
		}
	}
	t.Fatalf("no event: %s", what)
	return nil
}

// eventOf reports whether m is an event of type subject for command id.
func eventOf(subject, id string) func(*nats.Msg) bool {
	return func(m *nats.Msg) bool {
		return m.Subject == subject && m.Header.Get("Groupflow-Command-Id") == id
	}
}

// TestLongUnknownTypeDeadLetteredOnUnknown (review of issue 12, item 1): a
// command on groups.cmd.<4,072 x> used to be dead-lettered on
// groups.dlq.<4,072 x>, a subject whose PUB line the server refuses: the
// publisher connection closed for good. It must be dead-lettered on
// groups.dlq.unknown, with the raw type clipped in the reason, and the
// processor must keep going.
func TestLongUnknownTypeDeadLetteredOnUnknown(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	evts, _ := nc.SubscribeSync("groups.evt.>")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	typ := strings.Repeat("x", 4072)
	if err := nc.Publish("groups.cmd."+typ, []byte(`{"id":"long-type"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil || nc.IsClosed() {
		t.Fatalf("producer publish refused: %v %v", err, nc.LastError())
	}
	m := awaitEvent(t, evts, "command_failed of long-type", eventOf("groups.evt.command_failed", "long-type"))
	var failed messages.CommandFailed
	if err := json.Unmarshal(m.Data, &failed); err != nil {
		t.Fatal(err)
	}
	if failed.DLQSubject != "groups.dlq.unknown" || failed.CommandType != messages.UnknownCommandType || len(failed.Reason) > 1000 {
		t.Errorf("command_failed: dlq %q type %.40q reason %d bytes, want groups.dlq.unknown, unknown, a clipped reason",
			failed.DLQSubject, failed.CommandType, len(failed.Reason))
	}
	if _, err := js.Publish(context.Background(), "groups.cmd.generate_report", []byte(`{"id":"after-long-type","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, evts, "report of after-long-type", eventOf("groups.evt.report_generated", "after-long-type"))
	found := false
	for _, e := range deadLetters(t, js) {
		if e.CommandID == "long-type" {
			found = true
			if e.CommandType != messages.UnknownCommandType || !strings.Contains(e.Reason, "xxxxxxxx") {
				t.Errorf("dead letter of type %.40q, reason %.80q", e.CommandType, e.Reason)
			}
		}
	}
	if !found {
		t.Error("no dead letter for long-type")
	}
	if code, body := get(t, "http://"+a.AdminAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// TestReadyzChecksPublisherConnection (review of issue 12, item 1): /readyz
// checked only the consumer connection and said ready while the publisher
// connection (events, dead letters) was closed.
func TestReadyzChecksPublisherConnection(t *testing.T) {
	a := startApp(t)
	if code, body := get(t, "http://"+a.AdminAddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz before = %d %s", code, body)
	}
	app.ClosePublisherConn(a)
	code, body := awaitNot200(t, "http://"+a.AdminAddr+"/readyz", 10*time.Second)
	if code != 503 || !strings.Contains(body, "CLOSED") {
		t.Fatalf("/readyz with the publisher connection closed = %d %q, want 503 naming it", code, body)
	}
}

// TestLedgerKeyCollisionBothRun (review of issue 12, item 2): the id
// natsname.Token("class.yoga.2026") and the id "class.yoga.2026" used to
// share one ledger record, so the second was answered with the first's
// event and never ran.
func TestLedgerKeyCollisionBothRun(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	evts, _ := nc.SubscribeSync("groups.evt.>")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	victim := "class.yoga.2026"
	forged := natsname.Token(victim)
	for _, id := range []string{forged, victim} {
		if _, err := js.Publish(context.Background(), "groups.cmd.generate_report", []byte(`{"id":"`+id+`","top":1,"idle":1}`)); err != nil {
			t.Fatal(err)
		}
		awaitEvent(t, evts, "report of "+id, eventOf("groups.evt.report_generated", id))
	}
}

// TestForeignLedgerRecordIsACollision (review of issue 12, item 2, defence
// in depth): a completed record under a command's key whose command id is
// another's must not answer the command: it is dead-lettered as a ledger key
// collision, and the record is left as it was.
func TestForeignLedgerRecordIsACollision(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	evts, _ := nc.SubscribeSync("groups.evt.>")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// A real completed record, copied under the key of another id.
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"owner","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, evts, "report of owner", eventOf("groups.evt.report_generated", "owner"))
	kv, err := js.KeyValue(ctx, "GROUPFLOW_LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := kv.Get(ctx, ledger.RecordKey(messages.CmdGenerateReport, "owner"))
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.RecordKey(messages.CmdGenerateReport, "intruded")
	if _, err := kv.Put(ctx, key, orig.Value()); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"intruded","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	m := awaitEvent(t, evts, "an outcome of intruded", func(m *nats.Msg) bool {
		return m.Header.Get("Groupflow-Command-Id") == "intruded" || (m.Subject == "groups.evt.report_generated" && strings.Contains(string(m.Data), `"owner"`))
	})
	if m.Subject != "groups.evt.command_failed" || !strings.Contains(string(m.Data), "ledger key collision") {
		t.Fatalf("intruded answered with %s %.200s, want command_failed (ledger key collision)", m.Subject, m.Data)
	}
	after, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var rec ledger.Record
	if err := json.Unmarshal(after.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.CommandID != "owner" || rec.Status != ledger.StatusCompleted || rec.Failures != 0 || rec.LastError != "" {
		t.Errorf("the foreign record was changed: %+v", rec)
	}
}

// TestDerivedIDRefusedAndCompletedUntouched (review of issue 12, item 3):
// InvalidCommandID("bad id") used to be a valid id: a producer could run a
// command under it, and the dead letter of "bad id" then announced a
// command_failed for that completed command and updated its record. The
// reserved prefix is now refused, so neither command completes under it.
func TestDerivedIDRefusedAndCompletedUntouched(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	evts, _ := nc.SubscribeSync("groups.evt.>")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	derived := messages.InvalidCommandID("bad id")
	if _, err := js.Publish(context.Background(), "groups.cmd.generate_report", []byte(`{"id":"`+derived+`","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	m := awaitEvent(t, evts, "an outcome of "+derived, func(m *nats.Msg) bool { return m.Header.Get("Groupflow-Command-Id") == derived })
	var failed messages.CommandFailed
	if m.Subject != "groups.evt.command_failed" || json.Unmarshal(m.Data, &failed) != nil || failed.Kind != messages.FailureInvalid ||
		len(failed.Fields) == 0 || failed.Fields[0].Field != "id" {
		t.Fatalf("a producer's command under the reserved id %s: %s %.200s, want command_failed invalid (id)", derived, m.Subject, m.Data)
	}
}
