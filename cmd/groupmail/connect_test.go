package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestConnectErrorsHideSecrets: groupmail's connection errors name the
// refusal and the user but never the URL's password.
func TestConnectErrorsHideSecrets(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "mailer", Password: "right"}}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	for url, want := range map[string]string{
		"nats://mailer:wrong-pw@" + s.Addr().String(): "NATS refused the credentials (authorization violation) for user mailer",
		"nats://mailer:wrong-pw@127.0.0.1:bad":        "mailer:xxxxx@127.0.0.1:bad",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, []string{"--from", "a@b.example", "--nats-url", url, "--log-level", "error"}, env(nil), io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("groupmail --nats-url %s: err = %v, want containing %q and no password", url, err, want)
		}
	}
}
