package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"groupflow/internal/ops"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// workingReport is a generate_report handler that works for a while,
// moving its progress every tick, or (stuck) never moving it until ctx ends.
type workingReport struct {
	ticks int
	every time.Duration
	stuck chan struct{}
}

func (h *workingReport) CommandType() string { return messages.CmdGenerateReport }

func (h *workingReport) Handle(ctx context.Context, cmd *runtime.Command, _ *messages.GenerateReport) (messages.Event, error) {
	p := runtime.ProgressFrom(ctx)
	if h.stuck != nil {
		select {
		case <-h.stuck:
			return nil, errors.New("test over")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.Total(runtime.ProgressGroupsDone, int64(h.ticks))
	t := time.NewTicker(h.every)
	defer t.Stop()
	for i := 1; i <= h.ticks; i++ {
		<-t.C // simulated work: one group done per tick
		p.Set(runtime.ProgressGroupsDone, int64(i))
	}
	return &messages.ReportGenerated{EventMeta: cmd.EventMeta(), TotalGroups: h.ticks}, nil
}

func serveOps(t *testing.T, env *testenv.Env, r *testenv.Running) {
	t.Helper()
	stop, err := (&ops.Server{Progress: r.Progress(), Subjects: env.Subjects, Instance: "test"}).Serve(context.Background(), env.Conn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// TestWaitFollowsProgressPastIdleTimeout: a command that takes longer than
// --idle-timeout but keeps progressing is waited for; its progress is shown.
func TestWaitFollowsProgressPastIdleTimeout(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	serveOps(t, env, env.StartRuntime(runtime.Config{}, runtime.Adapt(&workingReport{ticks: 8, every: 500 * time.Millisecond})))
	out, errOut, err := groupctl(t, env, "", "send", "report", "--id", "rep-slow", "--wait", "--idle-timeout", "2s")
	if err != nil || !strings.Contains(out, "report_generated") {
		t.Fatalf("--wait: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if !strings.Contains(errOut, "progress: groupsDone=") || !strings.Contains(errOut, "gives up after 2s without progress") {
		t.Fatalf("no progress line:\n%s", errOut)
	}
}

// TestWaitGivesUpWithoutProgress: a command whose progress does not move
// for --idle-timeout ends the wait with the reason.
func TestWaitGivesUpWithoutProgress(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	stuck := make(chan struct{})
	defer close(stuck)
	serveOps(t, env, env.StartRuntime(runtime.Config{}, runtime.Adapt(&workingReport{stuck: stuck})))
	start := time.Now()
	_, errOut, err := groupctl(t, env, "", "send", "report", "--id", "rep-stuck", "--wait", "--idle-timeout", "2s")
	if err == nil || !strings.Contains(err.Error(), "no progress of rep-stuck for") {
		t.Fatalf("--wait on a stuck command: %v\n%s", err, errOut)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("gave up after %s", took)
	}
}

func TestPrintEventsCountsByType(t *testing.T) {
	var a app
	var b strings.Builder
	a.stdout = &b
	at := time.Now()
	evts := []foundEvent{{Type: "member_selected", Time: at}, {Type: "member_selected", Time: at}, {Type: "campaign_completed", Time: at}}
	a.printEvents(evts)
	if got := b.String(); got != "events:   member_selected ×2, campaign_completed ×1 (--events lists them)\n" {
		t.Fatalf("summary %q", got)
	}
}

// TestWaitShowsABarOnATerminal: on a terminal the progress is a live bar.
func TestWaitShowsABarOnATerminal(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	serveOps(t, env, env.StartRuntime(runtime.Config{}, runtime.Adapt(&workingReport{ticks: 6, every: 500 * time.Millisecond})))
	var stdout, stderr bytes.Buffer
	a := newApp(strings.NewReader(""), &stdout, &stderr)
	a.terminal = func(any) bool { return true }
	defer a.close()
	root := a.rootCmd()
	root.SetArgs([]string{"--nats-url", env.Server.URL, "send", "report", "--id", "rep-bar", "--wait"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil || !strings.Contains(stdout.String(), "report_generated") {
		t.Fatalf("--wait: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "rep-bar groupsDone=") || strings.Contains(stderr.String(), "progress: ") {
		t.Fatalf("no bar (or plain lines) on a terminal:\n%q", stderr.String())
	}
}

// TestStatusShowsProgressOfARunningCommand: status of a command in work
// carries the progress the running instance reports.
func TestStatusShowsProgressOfARunningCommand(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	stuck := make(chan struct{})
	defer close(stuck)
	serveOps(t, env, env.StartRuntime(runtime.Config{}, runtime.Adapt(&workingReport{stuck: stuck})))
	mustGroupctl(t, env, "send", "report", "--id", "rep-running")
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := mustGroupctl(t, env, "status", "rep-running")
		if strings.Contains(st, "status:   processing") {
			if !strings.Contains(st, "progress: wixCalls=0 running") {
				t.Fatalf("status of a running command:\n%s", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never processing:\n%s", st)
		}
	}
}
