package runtime_test

import (
	"context"
	"testing"
	"time"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestActiveListsCommandsInWork: a command is listed while its handler runs
// and no longer once its handling returned.
func TestActiveListsCommandsInWork(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	started, release := make(chan struct{}, 1), make(chan struct{})
	h := newReportHandler(func(ctx context.Context, cmd *runtime.Command, _ int) error {
		started <- struct{}{}
		<-release
		return nil
	})
	rt := env.StartRuntime(fastConfig(), runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	ack := env.Publish(messages.CmdGenerateReport, `{"id":"in-work"}`)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never started")
	}
	if got := rt.Active(); len(got) != 1 || got[0] != (runtime.Active{CommandType: messages.CmdGenerateReport, CommandID: "in-work", StreamSeq: ack.Sequence}) {
		t.Fatalf("active while working = %+v", got)
	}
	close(release)
	w.Next(20*time.Second, testenv.ForCommand("in-work"))
	// The entry goes when the handling returns, just after the event is
	// out: Stop awaits every handling.
	if err := rt.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := rt.Active(); len(got) != 0 {
		t.Fatalf("active after completion = %+v", got)
	}
}
