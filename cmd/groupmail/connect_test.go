package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

// TestConnectErrorsHideSecrets: groupmail's connection errors name the
// refusal and the user but never the URL's password.
func TestConnectErrorsHideSecrets(t *testing.T) {
	addr := testutil.UserNATS(t, "mailer", "right")
	for url, want := range map[string]string{
		"nats://mailer:wrong-pw@" + addr:       "NATS refused the credentials (authorization violation) for user mailer",
		"nats://mailer:wrong-pw@127.0.0.1:bad": "mailer:xxxxx@127.0.0.1:bad",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, []string{"--from", "a@b.example", "--nats-url", url, "--log-level", "error"}, env(nil), io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("groupmail --nats-url %s: err = %v, want containing %q and no password", url, err, want)
		}
	}
}
