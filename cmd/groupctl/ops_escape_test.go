package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/ops"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// answerOps answers the discovery subject name with body, as a forged
// processor (anyone who may subscribe there) or a processor relaying Wix's
// text would.
func answerOps(t *testing.T, env *testenv.Env, name, body string) {
	t.Helper()
	sub, err := env.NC.QueueSubscribe(env.Subjects.Ops(name), ops.QueueGroup, func(m *nats.Msg) { _ = m.Respond([]byte(body)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestOpsAnswersAreEscaped: what a processor answers on groups.ops.* (a
// group's name from Wix, an error text, possibly forged) never reaches the
// operator's terminal raw: neither the error groupctl exits with nor the
// --json output.
func TestOpsAnswersAreEscaped(t *testing.T) {
	jsonEsc := `\u001b]0;pwned\u0007\u001b[2J` + "\u009b31m\x7f\u202e"

	t.Run("error", func(t *testing.T) {
		env := testenv.Start(t, testenv.Quiet())
		answerOps(t, env, messages.OpsGroupsList, `{"error":"wix: 403 `+jsonEsc+strings.Repeat("x", 100_000)+`"}`)
		out, errOut, err := groupctl(t, env, "", "groups", "ls")
		if err == nil {
			t.Fatalf("groups ls of an error answer succeeded: %q", out)
		}
		var printed bytes.Buffer
		printError(&printed, err)
		if hasControl(printed.String()) || hasControl(out) || hasControl(errOut) {
			t.Errorf("raw control bytes printed:\nerror %.300q\nstdout %.300q\nstderr %.300q", printed.String(), out, errOut)
		}
		if !strings.HasPrefix(printed.String(), "groupctl: ") || !strings.Contains(printed.String(), `wix: 403 \x1b]0;pwned\a`) {
			t.Errorf("error printed as %.200q", printed.String())
		}
		if printed.Len() > 4096 {
			t.Errorf("error of %d bytes printed", printed.Len())
		}
	})

	t.Run("json", func(t *testing.T) {
		env := testenv.Start(t, testenv.Quiet())
		answerOps(t, env, messages.OpsGroupsList, `{"siteId":"s","groups":[{"id":"g1","name":"`+jsonEsc+`"}]}`)
		answerOps(t, env, messages.OpsGroupsShow, `{"siteId":"s","group":{"id":"g1","name":"`+jsonEsc+`","questionList":[],"ruleList":[]}}`)
		for _, args := range [][]string{{"groups", "ls", "--json"}, {"groups", "show", "g1", "--json"}, {"groups", "ls"}, {"groups", "show", "g1"}} {
			out, errOut, err := groupctl(t, env, "", args...)
			if err != nil {
				t.Fatalf("groupctl %v: %v", args, err)
			}
			if hasControl(out) || hasControl(errOut) || strings.ContainsRune(out, '\u202e') {
				t.Errorf("groupctl %v printed raw control bytes:\nstdout %q\nstderr %q", args, out, errOut)
			}
		}
	})
}
