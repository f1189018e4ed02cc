package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestDLQLsIsBounded: dlq ls lists what GET /dlq would (at most --limit
// entries, 1000 by default, and a bounded amount of their text) and says
// when more match, instead of holding the whole DLQ (up to 512 MiB) and
// printing all of it; the purge confirmation counts every match.
func TestDLQLsIsBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	const n = dlq.DefaultListLimit + 1
	for i := range n {
		m := nats.NewMsg(env.Subjects.DLQ(messages.CmdGenerateReport))
		m.Header.Set(messages.HeaderDLQReason, "wix: 400")
		m.Header.Set(messages.HeaderDLQCommandID, fmt.Sprintf("rep-%d", i))
		m.Data = []byte(`{}`)
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := groupctl(t, env, "", "dlq", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(out, "\n") - 1; rows != dlq.DefaultListLimit || !strings.Contains(errOut, "more dead letters match") {
		t.Fatalf("dlq ls of %d entries: %d rows, stderr %q", n, rows, errOut)
	}
	out, errOut, err = groupctl(t, env, "", "dlq", "ls", "--json", "--limit", "3")
	var list []dlq.Entry
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 || !strings.Contains(errOut, "more dead letters match") {
		t.Fatalf("dlq ls --json --limit 3: %v, %d entries, stderr %q", err, len(list), errOut)
	}
	if _, _, err := groupctl(t, env, "", "dlq", "ls", "--limit", "0"); err == nil {
		t.Fatal("--limit 0 accepted")
	}

	var stdout, stderr strings.Builder
	a := newApp(strings.NewReader("n\n"), &stdout, &stderr)
	a.terminal = func(any) bool { return true }
	root := a.rootCmd()
	root.SetArgs([]string{"--nats-url", env.Server.URL, "dlq", "purge", "--reason-contains", "wix"})
	if err := root.ExecuteContext(ctx); err != nil || !strings.Contains(stderr.String(), fmt.Sprintf("Delete %d dead letter(s) for good? [y/N]", n)) {
		t.Fatalf("confirm: %v %s %s", err, stdout.String(), stderr.String())
	}
	a.close()
}
