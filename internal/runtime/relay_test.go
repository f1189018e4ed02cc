package runtime_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/internal/schedule"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestRelayGivesEachFireItsIDOnce: each fire of a schedule (in the
// schedules stream) reaches the commands stream through the relay, body
// unchanged, with Nats-Msg-Id = the fire's id, which is the id the handler
// sees (messages.CommandIDOf); a second relay of the same fire (a
// redelivered relay) is answered as a duplicate by the commands stream.
func TestRelayGivesEachFireItsIDOnce(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	h := newReportHandler(nil)
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := schedule.Create(ctx, env.JS, env.Subjects, schedule.Spec{Kind: "report", Name: "relay", Every: time.Second, Body: []byte(`{"top":3}`)}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for len(ids) < 2 {
		ev := testenv.Decode[messages.ReportGenerated](t, w.Next(20*time.Second, func(*nats.Msg) bool { return true }))
		if !strings.HasPrefix(ev.CommandID, messages.FiredIDPrefix+"relay-") || ev.TotalGroups != 3 {
			t.Fatalf("report %+v", ev)
		}
		ids[ev.CommandID] = true
	}
	if ok, err := schedule.Remove(ctx, env.JS, env.Subjects, "report", "relay"); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}
	cmds := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdGenerateReport))
	if len(cmds) < 2 {
		t.Fatalf("%d relayed commands", len(cmds))
	}
	for _, c := range cmds {
		id := c.Header.Get(messages.HeaderNatsMsgID)
		if !ids[id] && !strings.HasPrefix(id, messages.FiredIDPrefix+"relay-") || string(c.Data) != `{"top":3}` || c.Header.Get(messages.HeaderScheduler) != "" {
			t.Errorf("relayed command %s: headers %v body %s", c.Subject, c.Header, c.Data)
		}
		if got := messages.CommandIDOf(c.Data, c.Header, env.Subjects.CommandStream(), c.Seq); got != id {
			t.Errorf("CommandIDOf = %q, want the fire's id %q", got, id)
		}
	}
	again := nats.NewMsg(cmds[0].Subject)
	again.Data, again.Header = cmds[0].Data, cmds[0].Header
	ack, err := env.JS.PublishMsg(ctx, again)
	if err != nil || !ack.Duplicate {
		t.Fatalf("second relay of a fire: %+v %v, want a duplicate", ack, err)
	}
}

// TestRelayDeadLettersFireOfUnknownType: a schedule stored by hand with a
// fired subject of no known command type fires; the relay dead-letters the
// fire as an unknown command (command_failed names the fired subject)
// instead of relaying it.
func TestRelayDeadLettersFireOfUnknownType(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	env.StartRuntime(fastConfig(), runtime.Adapt(newReportHandler(nil)))
	w := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := nats.NewMsg(env.Subjects.Schedule("report.bogus"))
	m.Data = []byte(`{}`)
	m.Header.Set(schedule.HeaderSchedule, "@at "+time.Now().Add(time.Second).UTC().Format(time.RFC3339))
	m.Header.Set(schedule.HeaderTarget, env.Subjects.Fired("no_such_type", "report.bogus"))
	m.Header.Set(schedule.HeaderTTL, "never")
	if _, err := env.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	ev := testenv.Decode[messages.CommandFailed](t, w.Next(20*time.Second, func(*nats.Msg) bool { return true }))
	if ev.Subject != env.Subjects.Fired("no_such_type", "report.bogus") || ev.Kind != messages.FailureMalformed ||
		!strings.HasPrefix(ev.CommandID, messages.FiredIDPrefix+"bogus-") {
		t.Errorf("command_failed %+v", ev)
	}
	if dead := env.Read(env.Subjects.DLQStream(), env.Subjects.DLQ(messages.UnknownCommandType)); len(dead) != 1 {
		t.Errorf("%d dead letters", len(dead))
	}
	if cmds := env.Read(env.Subjects.CommandStream(), env.Subjects.Commands()); len(cmds) != 0 {
		t.Errorf("%d commands relayed", len(cmds))
	}
}
