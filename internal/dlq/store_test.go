package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// deadLetter stores a dead letter like the runtime does and returns its seq.
func deadLetter(t testing.TB, env *testenv.Env, e *dlq.Entry) uint64 {
	t.Helper()
	if e.OriginalSubject == "" {
		e.OriginalSubject = env.Subjects.Command(e.CommandType)
	}
	if e.Kind == "" {
		e.Kind = messages.FailurePermanent
	}
	if e.FirstFailure.IsZero() {
		e.FirstFailure = time.Now()
		e.LastFailure = e.FirstFailure
	}
	if e.Deliveries == 0 {
		e.Deliveries = 1
	}
	wm := e.Message()
	m := nats.NewMsg(env.Subjects.DLQ(e.CommandType))
	m.Data = e.Body
	for k := range wm.Metadata {
		m.Header.Set(k, wm.Metadata.Get(k))
	}
	m.Header.Set(nats.MsgIdHdr, wm.UUID)
	ack, err := env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func reportEntry(i int) *dlq.Entry {
	id := fmt.Sprintf("rep-%04d", i)
	return &dlq.Entry{
		CommandType: messages.CmdGenerateReport, CommandID: id, OriginalSeq: uint64(i + 1),
		Reason:  fmt.Sprintf("wix: 400 INVALID_ARGUMENT (call %d)", i),
		Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Body:    []byte(`{"top":3}`),
	}
}

func TestListGetFilter(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)

	if got, err := store.List(ctx, dlq.Filter{}); err != nil || len(got) != 0 {
		t.Fatalf("empty DLQ: %v %v", got, err)
	}
	s1 := deadLetter(t, env, reportEntry(1))
	s2 := deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdProvisionGroup, CommandID: "prov-1",
		Reason: "wix: 404 group not found", Body: []byte(`{"id":"prov-1","group":{"name":"Yoga"}}`)})
	s3 := deadLetter(t, env, reportEntry(3))

	all, err := store.List(ctx, dlq.Filter{})
	if err != nil || len(all) != 3 || all[0].Seq != s1 || all[1].Seq != s2 || all[2].Seq != s3 {
		t.Fatalf("list: %v %+v", err, all)
	}
	if all[1].CommandID != "prov-1" || all[1].CommandType != messages.CmdProvisionGroup || all[1].Body != nil {
		t.Fatalf("entry: %+v", all[1])
	}
	if _, ok := all[0].Headers["Nats-Msg-Size"]; ok {
		t.Fatalf("headers-only artefact kept: %v", all[0].Headers)
	}
	for _, tc := range []struct {
		name string
		f    dlq.Filter
		want []uint64
	}{
		{"command", dlq.Filter{CommandType: messages.CmdGenerateReport}, []uint64{s1, s3}},
		{"reason", dlq.Filter{ReasonContains: "NOT FOUND"}, []uint64{s2}},
		{"seqs", dlq.Filter{Seqs: []uint64{s3, s1, 999}}, []uint64{s1, s3}},
		{"seqs+command", dlq.Filter{Seqs: []uint64{s1, s2}, CommandType: messages.CmdProvisionGroup}, []uint64{s2}},
		{"since future", dlq.Filter{Since: time.Now().Add(time.Hour)}, nil},
		{"since past", dlq.Filter{Since: time.Now().Add(-time.Hour)}, []uint64{s1, s2, s3}},
	} {
		got, err := store.List(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var seqs []uint64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, seqs, tc.want)
		}
	}
	e, err := store.Get(ctx, s2)
	if err != nil || string(e.Body) != `{"id":"prov-1","group":{"name":"Yoga"}}` || e.Reason != "wix: 404 group not found" {
		t.Fatalf("get: %v %+v", err, e)
	}
	if _, err := store.Get(ctx, 999); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestPurge(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)
	for i := 0; i < 5; i++ {
		deadLetter(t, env, reportEntry(i))
	}
	s := deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdSendCampaign, CommandID: "c1", Reason: "boom", Body: []byte(`{}`)})

	if _, err := store.Purge(ctx, dlq.Filter{}); !errors.Is(err, dlq.ErrNoSelector) {
		t.Fatalf("purge without selector: %v", err)
	}
	if n, err := store.Purge(ctx, dlq.Filter{ReasonContains: "(call 2)"}); err != nil || n != 1 {
		t.Fatalf("purge reason: %d %v", n, err)
	}
	if n, err := store.Purge(ctx, dlq.Filter{CommandType: messages.CmdGenerateReport}); err != nil || n != 4 {
		t.Fatalf("purge command: %d %v", n, err)
	}
	if n, err := store.Purge(ctx, dlq.Filter{Seqs: []uint64{s, s}}); err != nil || n != 1 {
		t.Fatalf("purge seq: %d %v", n, err)
	}
	deadLetter(t, env, reportEntry(9))
	if n, err := store.Purge(ctx, dlq.Filter{All: true}); err != nil || n != 1 {
		t.Fatalf("purge all: %d %v", n, err)
	}
	if left := env.DeadLetters(); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

// commands returns the command messages stored on the report subject.
func commands(t testing.TB, env *testenv.Env) []testenv.StreamMsg {
	return env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdGenerateReport))
}

func TestReplayThousand(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)
	const n = 1000
	for i := 0; i < n; i++ {
		deadLetter(t, env, reportEntry(i))
	}
	// A dead letter whose original subject is not a command subject is skipped.
	bad := reportEntry(n)
	bad.OriginalSubject = "elsewhere.cmd.generate_report"
	badSeq := deadLetter(t, env, bad)

	dry, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{DryRun: true})
	if err != nil || dry.Selected != n+1 || dry.Replayed != n || dry.Skipped != 1 || !dry.DryRun {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if got := len(env.DeadLetters()); got != n+1 {
		t.Fatalf("dry run changed the DLQ: %d", got)
	}

	calls, last := 0, 0
	res, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{Progress: func(done, total int) {
		calls++
		if total != n+1 || done != last+1 {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	}})
	if err != nil || res.Replayed != n || res.Skipped != 1 || res.Failed != 0 || len(res.Errors) != 1 || res.Errors[0].Seq != badSeq {
		t.Fatalf("replay: %v %+v", err, res)
	}
	if calls != n+1 {
		t.Fatalf("progress calls %d", calls)
	}
	left := env.DeadLetters()
	if len(left) != 1 || left[0].Seq != badSeq {
		t.Fatalf("left in DLQ: %v", left)
	}
	cmds := commands(t, env)
	if len(cmds) != n {
		t.Fatalf("%d commands replayed, want %d", len(cmds), n)
	}
	seen := map[string]bool{}
	for i, m := range cmds {
		id := m.Header.Get(dlq.HeaderReplayCommandID)
		if id != fmt.Sprintf("rep-%04d", i) || string(m.Data) != `{"top":3}` {
			t.Fatalf("command %d: id %q body %s", i, id, m.Data)
		}
		if m.Header.Get("traceparent") == "" || m.Header.Get(dlq.HeaderReplayOf) == "" {
			t.Fatalf("headers not kept: %v", m.Header)
		}
		for k := range m.Header {
			if strings.HasPrefix(k, "Groupflow-Dlq-") {
				t.Fatalf("DLQ header %s replayed", k)
			}
		}
		msgID := m.Header.Get(nats.MsgIdHdr)
		if seen[msgID] || msgID == id {
			t.Fatalf("Nats-Msg-Id %q reused", msgID)
		}
		seen[msgID] = true
	}
}

func TestReplayInterruptedLosesNothing(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	const n = 1000
	for i := 0; i < n; i++ {
		deadLetter(t, env, reportEntry(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := store.Replay(ctx, dlq.Filter{CommandType: messages.CmdGenerateReport}, dlq.ReplayOptions{Progress: func(done, _ int) {
		if done == n/2 {
			cancel() // the operator hits Ctrl-C half-way
		}
	}})
	if !errors.Is(err, context.Canceled) || res.Replayed != n/2 {
		t.Fatalf("interrupted replay: %v %+v", err, res)
	}
	inDLQ := map[string]bool{}
	for _, e := range env.DeadLetters() {
		inDLQ[e.CommandID] = true
	}
	replayed := map[string]bool{}
	for _, m := range commands(t, env) {
		replayed[m.Header.Get(dlq.HeaderReplayCommandID)] = true
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rep-%04d", i)
		if !inDLQ[id] && !replayed[id] {
			t.Fatalf("%s lost: neither in the DLQ nor replayed", id)
		}
	}
	if len(inDLQ)+len(replayed) != n {
		t.Fatalf("in DLQ %d + replayed %d != %d", len(inDLQ), len(replayed), n)
	}

	// Running it again finishes the job.
	res, err = store.Replay(context.Background(), dlq.Filter{All: true}, dlq.ReplayOptions{})
	if err != nil || res.Replayed != n/2 {
		t.Fatalf("second replay: %v %+v", err, res)
	}
	if len(env.DeadLetters()) != 0 || len(commands(t, env)) != n {
		t.Fatal("second replay incomplete")
	}
}

// TestReplayTwiceDeduplicated: a dead letter republished but not deleted
// (process killed between the PubAck and the delete) and replayed again
// within the duplicate window is stored once.
func TestReplayTwiceDeduplicated(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)
	seq := deadLetter(t, env, reportEntry(1))
	e, err := store.Get(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	// The "killed" first run: published, not deleted.
	if _, err := env.JS.PublishMsg(ctx, store.ReplayMsg(e, e.OriginalSubject)); err != nil {
		t.Fatal(err)
	}
	res, err := store.Replay(ctx, dlq.Filter{Seqs: []uint64{seq}}, dlq.ReplayOptions{})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay: %v %+v", err, res)
	}
	if got := len(commands(t, env)); got != 1 {
		t.Fatalf("%d commands stored, want 1", got)
	}
	if len(env.DeadLetters()) != 0 {
		t.Fatal("dead letter not removed")
	}
	if _, err := store.Replay(ctx, dlq.Filter{}, dlq.ReplayOptions{}); !errors.Is(err, dlq.ErrNoSelector) {
		t.Fatalf("replay without selector: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-11-25T10:00:00Z": time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	} {
		got, err := dlq.ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "yesterday", "-5h"} {
		if _, err := dlq.ParseSince(in, now); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestParseSinceOverflow: a day count whose duration overflows wrapped to an
// arbitrary time (maybe later than now, or long before: then a purge "since"
// it took every entry); it is refused.
func TestParseSinceOverflow(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{"106752d", "200000d", "9223372036854775807d"} {
		if got, err := dlq.ParseSince(in, now); err == nil {
			t.Errorf("%q = %v, accepted", in, got)
		}
	}
	if got, err := dlq.ParseSince("36500d", now); err != nil || !got.Before(now) {
		t.Errorf("36500d = %v, %v", got, err)
	}
}
