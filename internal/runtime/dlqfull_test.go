package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"groupflow/internal/runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"groupflow/internal/broker"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// A full DLQ (discard new) drops nothing: the dead letters that do not fit
// stay unacknowledged in the commands stream, consumption of their type
// pauses, readiness and the groupflow_dlq_full gauge say why; once the DLQ
// is purged the rest are dead-lettered and readiness recovers.
func TestFullDLQPausesTheTypeAndLosesNothing(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := (broker.Topology{Subjects: env.Subjects, DLQMaxMsgs: 2}).Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.DLQPollInterval = 50 * time.Millisecond
	rt := env.StartRuntime(cfg, runtime.Adapt(newReportHandler(nil)))
	for i := range 5 {
		env.Publish(messages.CmdGenerateReport, fmt.Sprintf(`{"id":"bad-%d","top":-5}`, i))
	}
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_generate_report")
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() float64 {
		var m dto.Metric
		if err := rt.DLQFullGauge().WithLabelValues(messages.CmdGenerateReport).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	waitUntil(t, 20*time.Second, "DLQ full and reported", func() bool {
		err := rt.DLQReady(ctx)
		return len(env.DeadLetters()) == 2 && err != nil && gauge() == 1
	})
	reason := rt.DLQReady(ctx).Error()
	for _, want := range []string{"DLQ full", "generate_report paused", "purge or replay dead letters"} {
		if !strings.Contains(reason, want) {
			t.Errorf("readiness reason %q lacks %q", reason, want)
		}
	}
	// The two dead-lettered commands are acknowledged after their dead
	// letters are stored (and announced): await those acks; the other three
	// stay unacknowledged (none dropped).
	var info *jetstream.ConsumerInfo
	waitUntil(t, 20*time.Second, "3 commands left unacknowledged in the stream (none dropped)", func() bool {
		info, err = cons.Info(ctx)
		return err == nil && info.NumAckPending+int(info.NumPending) == 3
	})
	if info.NumRedelivered > 0 && info.NumAckPending == 0 {
		t.Fatalf("paused commands were redelivered: %+v", info)
	}

	st, err := env.JS.Stream(ctx, env.Subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	// the DLQ holds two again: the rest wait for the next purge
	waitUntil(t, 20*time.Second, "two more dead-lettered", func() bool { return len(env.DeadLetters()) == 2 })
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "all dead-lettered and ready", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && len(env.DeadLetters()) == 1 &&
			rt.DLQReady(ctx) == nil && gauge() == 0
	})
	ids := map[string]bool{}
	for _, m := range env.Events(messages.EvtCommandFailed) {
		var f messages.CommandFailed
		if err := json.Unmarshal(m.Data, &f); err != nil {
			t.Fatal(err)
		}
		ids[f.CommandID] = true
	}
	if len(ids) != 5 {
		t.Fatalf("command_failed for %d commands, want all 5: %v", len(ids), ids)
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
	}
}
