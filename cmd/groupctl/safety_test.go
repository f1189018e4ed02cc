package main

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// hasControl reports a raw control byte (C0 but newline, DEL) or C1 rune.
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return true
		}
	}
	return false
}

// TestDLQOutputEscapesControlBytes: a producer's terminal escape sequences
// (in the body, the reason, the id, the headers) never reach the
// operator's terminal raw; they are shown escaped.
func TestDLQOutputEscapesControlBytes(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	const esc = "\x1b]0;pwned\x07\x1b[2J\u009b31m"
	e := &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: "id-" + esc, Kind: messages.FailureMalformed,
		Reason: "bad body " + esc, OriginalSubject: env.Subjects.Command(messages.CmdGenerateReport), Deliveries: 1,
		FirstFailure: time.Now(), LastFailure: time.Now(),
		Headers: map[string]string{"X-Note": "hi" + esc},
		Body:    []byte("not json " + esc + "\r\nline two")}
	wm := e.Message()
	m := nats.NewMsg(env.Subjects.DLQ(e.CommandType))
	m.Data = e.Body
	for k := range wm.Metadata {
		m.Header.Set(k, wm.Metadata.Get(k))
	}
	ack, err := env.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	seq := ack.Sequence
	// A JSON body may hold raw C1 and DEL characters too.
	m2 := nats.NewMsg(env.Subjects.DLQ(e.CommandType))
	m2.Data = []byte("{\"name\":\"\u009b2J\x7f\"}")
	m2.Header.Set(dlq.HeaderReason, "x")
	ack2, err := env.JS.PublishMsg(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"dlq", "show", itoa(seq)},
		{"dlq", "show", itoa(ack2.Sequence)},
		{"dlq", "ls"},
		{"dlq", "ls", "--wide"},
		{"dlq", "ls", "--json"},
		{"dlq", "show", "--json", itoa(ack2.Sequence)},
		{"status", "id-" + esc},
	} {
		out, errOut, err := groupctl(t, env, "", args...)
		if hasControl(out) || hasControl(errOut) {
			t.Errorf("groupctl %s printed raw control bytes:\nstdout %q\nstderr %q", args[0]+" "+args[1], out, errOut)
		}
		if slices.Contains(args, "--json") {
			if !json.Valid([]byte(out)) {
				t.Errorf("groupctl %v: not JSON: %q", args, out)
			}
		}
		if len(args) == 3 && args[1] == "show" && args[2] == itoa(seq) && (err != nil || !strings.Contains(out, `\x1b]0;pwned\a`) || !strings.Contains(out, "line two")) {
			t.Errorf("show: %v\n%q", err, out)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestDLQLsMarksRefusedEntries: dlq ls marks a forged entry (headers naming
// another command than its DLQ subject) and an event's dead letter, and
// replay --all refuses both and runs nothing.
func TestDLQLsMarksRefusedEntries(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	for _, h := range []map[string]string{
		{dlq.HeaderOriginalSubject: env.Subjects.Command(messages.CmdProvisionGroup), dlq.HeaderCommandID: "forged-1", dlq.HeaderReason: "wix: 503"},
		{dlq.HeaderOriginalSubject: env.Subjects.Event(messages.EvtMemberSelected), dlq.HeaderCommandID: "evt-1", dlq.HeaderReason: "smtp: 550"},
	} {
		m := nats.NewMsg(env.Subjects.DLQ(messages.EvtMemberSelected))
		m.Data = []byte(`{"id":"x"}`)
		for k, v := range h {
			m.Header.Set(k, v)
		}
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	m := nats.NewMsg(env.Subjects.DLQ(messages.CmdGenerateReport))
	m.Data = []byte(`{"id":"forged-2"}`)
	m.Header.Set(dlq.HeaderOriginalSubject, env.Subjects.Command(messages.CmdProvisionGroup))
	m.Header.Set(dlq.HeaderReason, "boom")
	if _, err := env.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	out := mustGroupctl(t, env, "dlq", "ls")
	if strings.Count(out, "REFUSED") != 1 || strings.Count(out, "EVENT (not replayable)") != 2 {
		t.Fatalf("ls:\n%s", out)
	}
	out, errOut, err := groupctl(t, env, "", "dlq", "replay", "--all")
	if err != nil || !strings.HasPrefix(out, "replayed 0, skipped 3") || !strings.Contains(out, "refused 3") || strings.Count(errOut, "REFUSED") != 3 {
		t.Fatalf("replay: %v\n%s\n%s", err, out, errOut)
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 0 {
		t.Fatalf("%d commands published", n)
	}
	show := mustGroupctl(t, env, "dlq", "show", "3")
	if !strings.Contains(show, "REFUSED:") || !strings.Contains(show, "groups.dlq.generate_report") {
		t.Fatalf("show:\n%s", show)
	}
}
