package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/testutil"
)

// TestConnectNamesAuthorizationViolation: a wrong password ends Connect at
// once with one line naming the refusal and the user, never the password;
// the right one connects.
func TestConnectNamesAuthorizationViolation(t *testing.T) {
	addr := testutil.UserNATS(t, "ops", "right")
	done := make(chan struct{})
	var nc *nats.Conn
	var err error
	go func() {
		defer close(done)
		nc, err = Connect(ConnConfig{URL: "nats://ops:wrong-pw@" + addr, Name: "t"}, nil)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Connect with a wrong password did not return")
	}
	if err == nil {
		status := nc.Status()
		nc.Close()
		t.Fatalf("Connect with a wrong password returned a connection (status %s), want the authorization error", status)
	}
	want := "NATS refused the credentials (authorization violation) for user ops"
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %q, want one line containing %q and no password", err, want)
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("err %v does not wrap nats.ErrAuthorization", err)
	}
	good, err := Connect(ConnConfig{URL: "nats://ops:right@" + addr, Name: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good.Close()
}

// TestConnectErrorsHideURLPasswords: an unusable URL's error does not repeat
// its password or token.
func TestConnectErrorsHideURLPasswords(t *testing.T) {
	for _, u := range []string{"nats://ops:s3cret@127.0.0.1:notaport", "nats://tok3n-s3cret@127.0.0.1:bad"} {
		nc, err := Connect(ConnConfig{URL: u}, nil)
		if err == nil {
			nc.Close()
			continue // nothing printed, nothing leaked
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Connect(%s) error leaks the secret: %v", u, err)
		}
	}
}
