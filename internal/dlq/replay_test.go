package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// okHandler handles generate_report commands successfully.
type okHandler struct{}

func (okHandler) CommandType() string { return messages.CmdGenerateReport }

func (okHandler) Handle(_ context.Context, cmd *runtime.Command, _ *messages.GenerateReport) (messages.Event, error) {
	return &messages.ReportGenerated{EventMeta: cmd.EventMeta()}, nil
}

func runtimeConfig() runtime.Config {
	return runtime.Config{
		AckWait: 2 * time.Second, MaxDeliver: 3, Retries: -1,
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		NakDelay:      func(int) time.Duration { return 200 * time.Millisecond },
	}
}

// waitDeadLetters polls until the DLQ holds n entries (or fails the test).
func waitDeadLetters(t *testing.T, env *testenv.Env, n int) []*dlq.Entry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dl := env.DeadLetters()
		if len(dl) == n {
			return dl
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ holds %d entries, want %d: %+v", len(dl), n, dl)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplayedInvalidCommandIsBackInTheDLQEveryTime: replaying a dead letter
// whose cause remains (an invalid command) puts it back in the DLQ, once per
// replay, announced with command_failed each time; nothing loops in the
// commands stream.
func TestReplayedInvalidCommandIsBackInTheDLQEveryTime(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	env.StartRuntime(runtimeConfig(), runtime.Adapt(okHandler{}))
	failed := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	store := dlq.NewStore(env.JS, env.Subjects)

	env.Publish(messages.CmdGenerateReport, `{"id":"bad-replay","top":-1}`, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	failed.Next(20*time.Second, testenv.ForCommand("bad-replay"))
	dl := waitDeadLetters(t, env, 1)
	for round := 1; round <= 3; round++ {
		res, err := store.Replay(ctx, dlq.Filter{Seqs: []uint64{dl[0].Seq}}, dlq.ReplayOptions{})
		if err != nil || res.Replayed != 1 {
			t.Fatalf("round %d: replay %+v, %v", round, res, err)
		}
		f := testenv.Decode[messages.CommandFailed](t, failed.Next(20*time.Second, testenv.ForCommand("bad-replay")))
		if f.Kind != messages.FailureInvalid {
			t.Fatalf("round %d: command_failed %+v", round, f)
		}
		dl = waitDeadLetters(t, env, 1)
		if dl[0].CommandID != "bad-replay" || dl[0].Kind != messages.FailureInvalid ||
			dl[0].Headers["traceparent"] == "" {
			t.Fatalf("round %d: dead letter %+v", round, dl[0])
		}
		for k := range dl[0].Headers {
			if strings.HasPrefix(strings.ToLower(k), "nats-") {
				t.Errorf("round %d: dead letter kept broker header %s", round, k)
			}
		}
	}
	// Nothing loops: every command message was acknowledged (1 + 3 replays).
	cons, err := env.JS.Consumer(ctx, env.Subjects.CommandStream(), "groupflow_"+messages.CmdGenerateReport)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commands still pending or redelivered: %+v", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(env.Events(messages.EvtCommandFailed)); n != 4 {
		t.Errorf("%d command_failed events, want 4", n)
	}
}

// TestDeadLetterOfHugeHeadersIsStored: a command with ~64 KB of custom
// headers is still dead-lettered (the copied headers are bounded, with a note).
func TestDeadLetterOfHugeHeadersIsStored(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	env.StartRuntime(runtimeConfig(), runtime.Adapt(okHandler{}))
	failed := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	hdr := []string{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	// ~64 KB of headers: the command itself is storable (just), a copy with
	// the DLQ's own headers added would not be.
	for i := 0; i < 64; i++ {
		hdr = append(hdr, "X-Custom-"+strings.Repeat("h", 3)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", 995))
	}
	env.Publish(messages.CmdGenerateReport, `{"id":"fat-headers","top":-1}`, hdr...)
	failed.Next(30*time.Second, testenv.ForCommand("fat-headers"))
	dl := waitDeadLetters(t, env, 1)
	if dl[0].CommandID != "fat-headers" || dl[0].Headers["traceparent"] == "" {
		t.Fatalf("dead letter %s: %d headers, traceparent %q", dl[0].CommandID, len(dl[0].Headers), dl[0].Headers["traceparent"])
	}
	if dl[0].HeadersDropped == "" {
		t.Errorf("no note about dropped headers (%d headers kept)", len(dl[0].Headers))
	}
	size := 0
	for k, v := range dl[0].Headers {
		size += len(k) + len(v)
	}
	if size > dlq.MaxCopiedHeaderBytes {
		t.Errorf("copied headers hold %d bytes, over the %d limit", size, dlq.MaxCopiedHeaderBytes)
	}
}

// TestForgedDeadLetterIsNotReplayed: an entry on groups.dlq.<T> replays only
// to groups.cmd.<T> for a command type T; a forged original subject (or an
// event's dead letter) is refused, reported, marked in List, never executed.
func TestForgedDeadLetterIsNotReplayed(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)
	publish := func(subject string, h map[string]string, body string) uint64 {
		m := nats.NewMsg(subject)
		m.Data = []byte(body)
		for k, v := range h {
			m.Header.Set(k, v)
		}
		ack, err := env.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	forged := publish(env.Subjects.DLQ(messages.EvtMemberSelected), map[string]string{
		dlq.HeaderOriginalSubject: env.Subjects.Command(messages.CmdProvisionGroup),
		dlq.HeaderCommandType:     messages.CmdProvisionGroup,
		dlq.HeaderCommandID:       "forged-1",
		dlq.HeaderReason:          "wix: 503",
		dlq.HeaderKind:            messages.FailureExhausted,
	}, `{"id":"forged-1","groupName":"x","membership":"sync","members":[]}`)
	crossType := publish(env.Subjects.DLQ(messages.CmdGenerateReport), map[string]string{
		dlq.HeaderOriginalSubject: env.Subjects.Command(messages.CmdProvisionGroup),
		dlq.HeaderCommandID:       "forged-2",
		dlq.HeaderReason:          "wix: 503",
	}, `{"id":"forged-2"}`)
	mail := publish(env.Subjects.DLQ(messages.EvtMemberSelected), map[string]string{
		dlq.HeaderOriginalSubject: env.Subjects.Event(messages.EvtMemberSelected),
		dlq.HeaderCommandType:     messages.EvtMemberSelected,
		dlq.HeaderCommandID:       "evt-1",
		dlq.HeaderReason:          "smtp: 550",
	}, `{"memberId":"m"}`)
	genuine := deadLetter(t, env, reportEntry(1))

	list, err := store.List(ctx, dlq.Filter{})
	if err != nil || len(list) != 4 {
		t.Fatalf("list: %v %+v", err, list)
	}
	for _, e := range list {
		if (e.Seq == genuine) != (e.Refused == "") {
			t.Errorf("seq %d: refused %q", e.Seq, e.Refused)
		}
	}
	res, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || res.Refused != 3 {
		t.Fatalf("replay result %+v", res)
	}
	refused := map[uint64]bool{}
	for _, re := range res.Errors {
		if re.Refused {
			refused[re.Seq] = true
		}
	}
	if !refused[forged] || !refused[crossType] || !refused[mail] {
		t.Errorf("refusals not reported: %+v", res.Errors)
	}
	cmds := env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())
	if len(cmds) != 1 || cmds[0].Subject != env.Subjects.Command(messages.CmdGenerateReport) {
		t.Fatalf("commands published: %v", cmds)
	}
	if len(env.DeadLetters()) != 3 {
		t.Errorf("refused entries must stay in the DLQ")
	}
}

// TestReplayTargetUsesConfiguredPrefix: the replay target and its headers
// follow the deployment's subject prefix and the runtime's header names.
func TestReplayTargetUsesConfiguredPrefix(t *testing.T) {
	subj := messages.Subjects{Prefix: "acme.prod"}
	store := dlq.NewStore(nil, subj)
	for _, c := range []struct {
		subject, original, want string
	}{
		{"acme.prod.dlq.generate_report", "", "acme.prod.cmd.generate_report"},
		{"acme.prod.dlq.generate_report", "acme.prod.cmd.generate_report", "acme.prod.cmd.generate_report"},
		{"acme.prod.dlq.generate_report", "groups.cmd.generate_report", ""},
		{"groups.dlq.generate_report", "", ""},
		{"acme.prod.dlq.member_selected", "acme.prod.evt.member_selected", ""},
		{"acme.prod.dlq.no_such_type", "acme.prod.cmd.no_such_type", ""},
		{"acme.prod.dlq.unknown", "acme.prod.cmd.unknown", ""},
	} {
		got, err := store.ReplayTarget(&dlq.Entry{Subject: c.subject, OriginalSubject: c.original})
		if got != c.want || (c.want == "") != errors.Is(err, dlq.ErrRefused) {
			t.Errorf("%s (original %q): %q, %v; want %q", c.subject, c.original, got, err, c.want)
		}
	}
	m := store.ReplayMsg(&dlq.Entry{Seq: 9, CommandID: "c-1", Headers: map[string]string{"Nats-Expected-Stream": "X", "traceparent": "00-a-b-01"}},
		"acme.prod.cmd.generate_report")
	if m.Header.Get(messages.HeaderCommandID) != "c-1" || m.Header.Get("Nats-Expected-Stream") != "" || m.Header.Get("traceparent") == "" ||
		!strings.Contains(m.Header.Get(nats.MsgIdHdr), subj.DLQStream()) {
		t.Errorf("replay headers %v", m.Header)
	}
}
