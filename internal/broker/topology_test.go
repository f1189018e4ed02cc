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
		env.Subjects.CommandStream(): {64 << 20, jetstream.DiscardNew},
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

// TestProvisionMovesSchedulesOutOfOldCommandStream: a commands stream made
// by the build that kept schedules in it (discard-old, AllowMsgSchedules,
// AllowMsgTTL, the schedule subjects) is updated in place, its messages
// kept: it gives up the schedule subjects to GROUPS_SCHEDULES, which then
// takes schedules. nats-server cannot turn schedules or TTLs off nor use
// discard-new with schedules, so that old stream keeps discarding old
// (StickyDiscardOld says so); a new one discards new and refuses schedules.
func TestProvisionMovesSchedulesOutOfOldCommandStream(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo := broker.Topology{Subjects: env.Subjects}
	schedule := func(subject, target string) error {
		msg := nats.NewMsg(subject)
		msg.Header.Set("Nats-Schedule", "@every 1h")
		msg.Header.Set("Nats-Schedule-Target", target)
		msg.Header.Set("Nats-TTL", "never")
		msg.Data = []byte(`{}`)
		_, err := env.JS.PublishMsg(ctx, msg)
		return err
	}
	if topo.StickyDiscardOld(ctx, env.JS) {
		t.Fatal("a new commands stream reports sticky discard-old")
	}
	if err := schedule(env.Subjects.Command(messages.CmdGenerateReport)+"x", env.Subjects.Command(messages.CmdGenerateReport)); err == nil {
		t.Fatal("a new commands stream took a schedule")
	}
	cmd, err := env.JS.Stream(ctx, env.Subjects.CommandStream())
	if err != nil {
		t.Fatal(err)
	}
	old := cmd.CachedInfo().Config
	for _, name := range []string{env.Subjects.ScheduleStream(), old.Name} {
		if err := env.JS.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	old.Subjects, old.Discard, old.AllowMsgSchedules, old.AllowMsgTTL, old.AllowRollup = []string{env.Subjects.Commands(), env.Subjects.Schedules()}, jetstream.DiscardOld, true, true, true
	if _, err := env.JS.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.Publish(ctx, env.Subjects.Command(messages.CmdGenerateReport), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := topo.Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	cmd, err = env.JS.Stream(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cmd.CachedInfo().Config
	if slices.Contains(cfg.Subjects, env.Subjects.Schedules()) || cmd.CachedInfo().State.Msgs != 1 || !topo.StickyDiscardOld(ctx, env.JS) {
		t.Fatalf("old commands stream after provision: %+v, %d messages", cfg, cmd.CachedInfo().State.Msgs)
	}
	if err := schedule(env.Subjects.Schedule("report.t"), env.Subjects.Fired(messages.CmdGenerateReport, "report.t")); err != nil {
		t.Fatalf("schedule refused by the schedules stream: %v", err)
	}
	sched, err := env.JS.Stream(ctx, env.Subjects.ScheduleStream())
	if err != nil {
		t.Fatal(err)
	}
	if sc := sched.CachedInfo().Config; !sc.AllowMsgSchedules || !sc.AllowMsgTTL || sc.MaxMsgsPerSubject <= 0 {
		t.Errorf("schedules stream: %+v", sc)
	}
}
