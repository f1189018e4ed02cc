package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

// runCLI runs groupctl with exactly args and returns its error line (as
// main prints it), stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, args, strings.NewReader(""), &out, &errOut)
	if err == nil {
		t.Fatalf("groupctl %v succeeded", args)
	}
	return "groupctl: " + err.Error(), out.String() + errOut.String()
}

// TestConnectErrorHidesPassword is the reproduction of issue 12 item 9:
// `groupctl --nats-url nats://ops:pw@127.0.0.1:1 dlq ls` must not print pw.
func TestConnectErrorHidesPassword(t *testing.T) {
	for _, url := range []string{"nats://ops:pw@127.0.0.1:1", "nats://ops:pw@127.0.0.1:1,nats://ops:pw@127.0.0.1:2",
		"nats://s3cr3t-token@127.0.0.1:1", "nats://ops:pw@127.0.0.1:bad"} {
		msg, output := runCLI(t, "--nats-url", url, "dlq", "ls")
		for _, secret := range []string{":pw@", "pw", "s3cr3t"} {
			if strings.Contains(msg+output, secret) {
				t.Errorf("groupctl --nats-url %s dlq ls prints %q: %s %s", url, secret, msg, output)
			}
		}
		if !strings.Contains(msg, "127.0.0.1") {
			t.Errorf("error %q does not say which server", msg)
		}
	}
}

// TestConnectNamesAuthorizationViolation: a wrong password fails at once with
// the server's reason and the user, against a real server with user ops.
func TestConnectNamesAuthorizationViolation(t *testing.T) {
	addr := testutil.UserNATS(t, "ops", "right")
	msg, output := runCLI(t, "--nats-url", "nats://ops:wrong-pw@"+addr, "dlq", "ls")
	want := "NATS refused the credentials (authorization violation) for user ops"
	if !strings.Contains(msg, want) || strings.Contains(msg+output, "wrong-pw") || strings.Count(msg, "\n") > 0 {
		t.Errorf("error %q, want one line containing %q without the password", msg, want)
	}
}
