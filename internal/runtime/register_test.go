package runtime_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/failure"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// reportOn is a generate_report handler registered on another command type,
// so that the runtime decodes a payload it does not take.
type reportOn struct {
	typ   string
	calls atomic.Int32
}

func (h *reportOn) CommandType() string { return h.typ }

func (h *reportOn) Handle(_ context.Context, cmd *runtime.Command, c *messages.GenerateReport) (messages.Event, error) {
	h.calls.Add(1)
	return &messages.ReportGenerated{EventMeta: cmd.EventMeta(), TotalGroups: c.Top}, nil
}

func TestAdaptHandsTheTypedPayloadAndRefusesAnotherPermanently(t *testing.T) {
	h := &reportOn{typ: messages.CmdGenerateReport}
	a := runtime.Adapt(h)
	if a.CommandType() != messages.CmdGenerateReport {
		t.Fatalf("command type %q", a.CommandType())
	}
	evt, err := a.Handle(context.Background(), &runtime.Command{ID: "ok", Payload: &messages.GenerateReport{Top: 7}})
	if err != nil || evt.(*messages.ReportGenerated).TotalGroups != 7 || h.calls.Load() != 1 {
		t.Fatalf("typed payload: %+v, %v, %d calls", evt, err, h.calls.Load())
	}
	for _, p := range []messages.Command{&messages.ProvisionGroup{}, nil} {
		_, err = a.Handle(context.Background(), &runtime.Command{ID: "bad", Payload: p})
		if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "*messages.GenerateReport") {
			t.Errorf("payload %T: err %v, want a permanent mismatch", p, err)
		}
	}
	if h.calls.Load() != 1 {
		t.Errorf("handler called with a mismatched payload (%d calls)", h.calls.Load())
	}
}

// A handler whose command type decodes to another payload dead-letters the
// command on its first delivery, without running the handler.
func TestMismatchedPayloadIsDeadLetteredOnce(t *testing.T) {
	env := testenv.Start(t)
	h := &reportOn{typ: messages.CmdPropagateRules}
	env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	env.Publish(messages.CmdPropagateRules, `{"id":"mismatch","sourceGroupId":"g-1","targets":{"all":true}}`)
	f := testenv.Decode[messages.CommandFailed](t, w.Next(30*time.Second, testenv.ForCommand("mismatch")))
	if f.Kind != messages.FailurePermanent || f.Deliveries != 1 || !strings.Contains(f.Reason, "payload is") {
		t.Errorf("failure %+v", f)
	}
	if h.calls.Load() != 0 {
		t.Errorf("handler ran %d times", h.calls.Load())
	}
}
