package broker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// Provision gives every stream its size limit, the commands and DLQ streams
// discard-new, and the DLQ no age limit, also on streams made by an older
// version (with an age limit and no size limit): the update takes effect.
func TestProvisionBoundsStreamsAndUpdatesOldOnes(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo := broker.Topology{Subjects: env.Subjects}
	// an older DLQ: trimmed by age, unbounded in size, discard-old
	st, err := env.JS.Stream(ctx, env.Subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	old := st.CachedInfo().Config
	old.MaxAge, old.MaxBytes, old.MaxMsgs, old.Discard = time.Hour, -1, -1, jetstream.DiscardOld
	if _, err := env.JS.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	topo.CommandMaxBytes, topo.EventMaxBytes, topo.DLQMaxBytes, topo.DLQMaxMsgs = 64<<20, 32<<20, 16<<20, 1000
	if err := topo.Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		maxBytes int64
		discard  jetstream.DiscardPolicy
	}{
		// discard-old: nats-server refuses message schedules with discard-new
		env.Subjects.CommandStream(): {64 << 20, jetstream.DiscardOld},
		env.Subjects.EventStream():   {32 << 20, jetstream.DiscardNew},
		env.Subjects.DLQStream():     {16 << 20, jetstream.DiscardNew},
	}
	for name, w := range want {
		s, err := env.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxBytes != w.maxBytes || cfg.Discard != w.discard {
			t.Errorf("%s: max bytes %d discard %v, want %d %v", name, cfg.MaxBytes, cfg.Discard, w.maxBytes, w.discard)
		}
		if name == env.Subjects.DLQStream() && (cfg.MaxAge != 0 || cfg.MaxMsgs != 1000) {
			t.Errorf("DLQ: max age %v max msgs %d, want no age limit and 1000", cfg.MaxAge, cfg.MaxMsgs)
		}
	}
	// defaults: every stream bounded
	if err := (broker.Topology{Subjects: env.Subjects}).Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range (broker.Topology{Subjects: env.Subjects}).StreamConfigs() {
		if cfg.MaxBytes <= 0 {
			t.Errorf("%s: default max bytes %d, want a limit", cfg.Name, cfg.MaxBytes)
		}
	}
}

// TestProvisionEnablesSchedulesInPlace: a commands stream made by a version
// without schedules (discard-new, commands subjects only, no TTLs) is
// updated in place — same stream, its messages kept — to take schedules on
// Schedules() that fire, with a per-message TTL exempting them from MaxAge.
func TestProvisionEnablesSchedulesInPlace(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := env.JS.Stream(ctx, env.Subjects.CommandStream())
	if err != nil {
		t.Fatal(err)
	}
	old := st.CachedInfo().Config
	if err := env.JS.DeleteStream(ctx, old.Name); err != nil {
		t.Fatal(err)
	}
	old.Subjects, old.Discard, old.AllowMsgSchedules, old.AllowMsgTTL, old.AllowRollup = []string{env.Subjects.Commands()}, jetstream.DiscardNew, false, false, false
	if _, err := env.JS.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.Publish(ctx, env.Subjects.Command(messages.CmdGenerateReport), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := (broker.Topology{Subjects: env.Subjects}).Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	st, err = env.JS.Stream(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowMsgSchedules || !cfg.AllowMsgTTL || st.CachedInfo().State.Msgs != 1 || !slices.Contains(cfg.Subjects, env.Subjects.Schedules()) {
		t.Fatalf("after provision: %+v, %d messages", cfg, st.CachedInfo().State.Msgs)
	}
	msg := nats.NewMsg(env.Subjects.Schedule("t.every"))
	msg.Header.Set("Nats-Schedule", "@every 1s")
	msg.Header.Set("Nats-Schedule-Target", env.Subjects.Command(messages.CmdGenerateReport))
	msg.Header.Set("Nats-TTL", "never")
	msg.Data = []byte(`{}`)
	if _, err := env.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("schedule refused: %v", err)
	}
}
