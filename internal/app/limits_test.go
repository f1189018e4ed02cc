package app_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/app"
	"groupflow/internal/dlq"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

// deadLetters reads every stored dead letter of the app's DLQ stream.
func deadLetters(t *testing.T, js jetstream.JetStream) []*dlq.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "GROUPS_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*dlq.Entry
	for uint64(len(out)) < info.State.Msgs {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read dlq: %v", err)
		}
		md, _ := m.Metadata()
		out = append(out, dlq.Parse(md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data()))
	}
	return out
}

// TestOversizedIDAndSiteDeadLetteredProcessorSurvives reproduces issue 12
// item 1 end to end: a generate_report whose id is 3,100 characters and one
// whose siteId is 5,000 characters used to make NATS subjects longer than
// the server's control line, which closed the processor's connection for
// good. Each must be dead-lettered as invalid, naming the field and its
// limit, and a valid command published after them must still complete.
func TestOversizedIDAndSiteDeadLetteredProcessorSurvives(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	evts, err := nc.SubscribeSync("groups.evt.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	longID := strings.Repeat("i", 3100)
	longSite := strings.Repeat("s", 5000)
	for _, body := range []string{
		`{"id":"` + longID + `","top":1,"idle":1}`,
		`{"id":"long-site","siteId":"` + longSite + `","top":1,"idle":1}`,
	} {
		if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"after-the-bad-ones","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := evts.NextMsg(60 * time.Second)
		if err != nil {
			t.Fatalf("the valid command after the oversized ones never completed: %v", err)
		}
		if m.Subject == "groups.evt.report_generated" && strings.Contains(string(m.Data), "after-the-bad-ones") {
			break
		}
	}

	var byField = map[string]*dlq.Entry{}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(byField) < 2; time.Sleep(100 * time.Millisecond) {
		byField = map[string]*dlq.Entry{}
		for _, e := range deadLetters(t, js) {
			for _, f := range e.Fields {
				byField[f.Field] = e
			}
		}
	}
	for field, limit := range map[string]int{"id": messages.MaxIDLen, "siteId": messages.MaxSiteIDLen} {
		e := byField[field]
		if e == nil {
			t.Errorf("no dead letter naming %s; have %v", field, byField)
			continue
		}
		if e.Kind != messages.FailureInvalid {
			t.Errorf("%s: kind %q, want invalid", field, e.Kind)
		}
		if msg, _ := (&messages.ValidationError{Fields: e.Fields}).Field(field); !strings.Contains(msg, "at most") || !strings.Contains(msg, strconv.Itoa(limit)) {
			t.Errorf("%s: message %q does not state the limit %d", field, msg, limit)
		}
	}
}

// TestHugeIDAndCorrelationDeadLetteredAndAnnounced (issue 12 item 4): a
// provision_group whose id is 70,000 characters used to create the group in
// Wix and then lose its event, dead letter and advisory capture (headers
// over 64k); a 70k correlationId was dead-lettered but never announced.
// Each must now end as exactly one dead letter (kind invalid, the field
// named) and one command_failed event, with no Wix call at all, and the
// processor must go on with a valid command. An id over the limit in the
// Nats-Msg-Id header (no id in the body) is held to the same limit.
func TestHugeIDAndCorrelationDeadLetteredAndAnnounced(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	failed, err := nc.SubscribeSync("groups.evt.command_failed")
	if err != nil {
		t.Fatal(err)
	}
	done, err := nc.SubscribeSync("groups.evt.report_generated")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	callsBefore := a.Sim.TotalCalls("demo-site")

	hugeID := strings.Repeat("i", 70000)
	headerID := strings.Repeat("h", 300)
	cases := []struct {
		subject, body, msgID string
		field, commandID     string
	}{
		{"groups.cmd.provision_group", `{"id":"` + hugeID + `","group":{"name":"Huge id"},"people":[{"email":"ann@example.com"}]}`, "", "id", messages.InvalidCommandID(hugeID)},
		{"groups.cmd.generate_report", `{"id":"huge-corr","correlationId":"` + strings.Repeat("c", 70000) + `","top":1,"idle":1}`, "", "correlationId", "huge-corr"},
		{"groups.cmd.generate_report", `{"top":1,"idle":1}`, headerID, "id", messages.InvalidCommandID(headerID)},
	}
	for _, c := range cases {
		m := nats.NewMsg(c.subject)
		m.Data = []byte(c.body)
		if c.msgID != "" {
			m.Header.Set(nats.MsgIdHdr, c.msgID)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"valid-after-huge","top":1,"idle":1}`)); err != nil {
		t.Fatal(err)
	}
	var report messages.ReportGenerated
	for report.CommandID != "valid-after-huge" {
		m, err := done.NextMsg(60 * time.Second)
		if err != nil {
			t.Fatalf("valid command after the huge ones: %v", err)
		}
		if err := json.Unmarshal(m.Data, &report); err != nil {
			t.Fatal(err)
		}
		if report.CommandID != "valid-after-huge" {
			t.Errorf("an invalid command completed: report_generated for %.80s…", report.CommandID)
		}
	}

	// One command_failed per case, each with a usable id and correlation id.
	announced := map[string]messages.CommandFailed{}
	for len(announced) < len(cases) {
		m, err := failed.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("command_failed events: have %d of %d: %v", len(announced), len(cases), err)
		}
		var ev messages.CommandFailed
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if _, dup := announced[ev.CommandID]; dup {
			t.Errorf("second command_failed for %s", ev.CommandID)
		}
		announced[ev.CommandID] = ev
	}
	for _, c := range cases {
		ev, ok := announced[c.commandID]
		if !ok {
			t.Errorf("%s (%s): no command_failed under id %q; have %v", c.subject, c.field, c.commandID, announced)
			continue
		}
		if ev.Kind != messages.FailureInvalid || len(ev.CorrelationID) > messages.MaxCorrelationIDLen {
			t.Errorf("%s: command_failed kind %q correlation %d chars", c.commandID, ev.Kind, len(ev.CorrelationID))
		}
		if msg, _ := (&messages.ValidationError{Fields: ev.Fields}).Field(c.field); !strings.Contains(msg, "at most") {
			t.Errorf("%s: command_failed fields %v do not name %s and its limit", c.commandID, ev.Fields, c.field)
		}
	}
	var entries []*dlq.Entry
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries = deadLetters(t, js); len(entries) >= len(cases) {
			break
		}
	}
	perID := map[string]int{}
	for _, e := range entries {
		perID[e.CommandID]++
		if e.Kind != messages.FailureInvalid {
			t.Errorf("dead letter %s: kind %q", e.CommandID, e.Kind)
		}
	}
	for _, c := range cases {
		if perID[c.commandID] != 1 {
			t.Errorf("%s: %d dead letters, want 1 (have %v)", c.commandID, perID[c.commandID], perID)
		}
	}
	if len(entries) != len(cases) {
		t.Errorf("%d dead letters, want %d", len(entries), len(cases))
	}
	// Every Wix call since the start is the valid report's: the invalid
	// commands made none (the huge provision_group would have searched for
	// and created its group).
	if got := a.Sim.TotalCalls("demo-site") - callsBefore; got != int64(report.WixCalls) {
		t.Errorf("%d Wix calls, the valid report made %d: the invalid commands called Wix (%v)", got, report.WixCalls, a.Sim.Calls("demo-site"))
	}
}

// TestClosedConnectionFailsHealthAndRun (issue 12 item 1): a connection
// closed for good used to leave /healthz "ok" while /readyz said CLOSED, so
// a liveness probe never restarted the processor. /healthz must now fail
// with the reason, and Run must return an error (the exit path to a
// non-zero status).
func TestClosedConnectionFailsHealthAndRun(t *testing.T) {
	a := startApp(t)
	if code, body := get(t, "http://"+a.AdminAddr+"/healthz"); code != 200 {
		t.Fatalf("/healthz before = %d %s", code, body)
	}
	app.CloseConsumerConn(a)
	code, body := awaitNot200(t, "http://"+a.AdminAddr+"/healthz", 10*time.Second)
	if code != 503 || !strings.Contains(body, "closed for good") {
		t.Fatalf("/healthz after the connection closed = %d %q, want 503 with the reason", code, body)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "closed for good") {
			t.Fatalf("Run = %v, want the closed connection", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after the connection closed for good")
	}
}

// awaitNot200 polls url until it answers something other than 200, or
// timeout; it returns the last answer.
func awaitNot200(t *testing.T, url string, timeout time.Duration) (int, string) {
	t.Helper()
	var code int
	var body string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, body = get(t, url); code != 200 {
			break
		}
	}
	return code, body
}
