package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// A start that loses the bind race is retried with new ports; the ports
// returned are the successful start's.
func TestWithPortsRetriesALostBind(t *testing.T) {
	var calls [][]int
	got := WithPorts(t, 3, func(ports []int) error {
		calls = append(calls, ports)
		if len(calls) == 1 {
			return fmt.Errorf("child: %w", ErrAddrInUse)
		}
		return nil
	})
	if len(calls) != 2 {
		t.Fatalf("start called %d times, want 2", len(calls))
	}
	if fmt.Sprint(got) != fmt.Sprint(calls[1]) {
		t.Fatalf("returned %v, want the second start's %v", got, calls[1])
	}
	for _, ps := range calls {
		if len(ps) != 3 || ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] {
			t.Fatalf("ports %v: want 3 distinct", ps)
		}
	}
}

// A real nats-server started on a taken port exits; AwaitStart reads its
// log and reports ErrAddrInUse, which is what WithPorts retries on.
func TestAwaitStartSeesNATSBindFailure(t *testing.T) {
	bin := NATSServerBin(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	var mu sync.Mutex
	var out strings.Builder
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	err = AwaitStart("nats-server", time.Minute, exited, func() string { mu.Lock(); defer mu.Unlock(); return out.String() },
		func() bool { return false })
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("AwaitStart = %v, want ErrAddrInUse", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ModuleRoot finds groupflow's go.mod from a package directory two levels
// down; elsewhere the nearest go.mod above wins, and none is an error.
func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Fatalf("ModuleRoot = %s, want %s", root, want)
	}
	if got := MustModuleRoot(t); got != root {
		t.Fatalf("MustModuleRoot = %s, want %s", got, root)
	}

	// outer/go.mod and outer/inner/go.mod: from outer/inner/pkg, inner wins.
	outer := t.TempDir()
	inner := filepath.Join(outer, "inner")
	if err := os.MkdirAll(filepath.Join(inner, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{outer, inner} {
		if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte("module x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(filepath.Join(inner, "pkg"))
	if got, err := ModuleRoot(); err != nil || got != inner {
		t.Fatalf("ModuleRoot = %q, %v; want %s", got, err, inner)
	}

	// No go.mod above: an error, unless the machine has one above the
	// temporary directory.
	if err := os.Remove(filepath.Join(outer, "go.mod")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(outer)
	if got, err := ModuleRoot(); err == nil {
		if strings.HasPrefix(got, outer) {
			t.Fatalf("ModuleRoot = %s, a directory without go.mod", got)
		}
		t.Logf("a go.mod above the temporary directory, at %s: the error case is not checked", got)
	}
}

// NATS keeps the caller's options and fills in a loopback host and a free
// port.
func TestNATS(t *testing.T) {
	s := NATS(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
	host, _, err := net.SplitHostPort(s.Addr().String())
	if err != nil || host != "127.0.0.1" || !s.JetStreamEnabled() {
		t.Fatalf("address %s (%v), JetStream %v: want 127.0.0.1 with JetStream", s.Addr(), err, s.JetStreamEnabled())
	}
	if NATS(t, nil).Addr().String() == s.Addr().String() {
		t.Fatal("two servers on one port")
	}
}

// JetStream returns a live connection with its options applied and
// JetStream on that same connection, closed when the test ends.
func TestJetStream(t *testing.T) {
	addr := UserNATS(t, "u", "pw")
	var nc *nats.Conn
	t.Run("connect", func(t *testing.T) {
		var js interface{ Conn() *nats.Conn }
		nc, js = JetStream(t, "nats://"+addr, nats.UserInfo("u", "pw"), nats.Name("testutil"))
		if !nc.IsConnected() || js.Conn() != nc || nc.Opts.Name != "testutil" {
			t.Fatalf("connected %v, same connection %v, name %q", nc.IsConnected(), js.Conn() == nc, nc.Opts.Name)
		}
	})
	if !nc.IsClosed() {
		t.Fatal("connection open after the test ended")
	}
}

// A failed connect is reported without the URL's password.
func TestRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                 "nats://127.0.0.1:4222",
		"nats://limited:limited-pw@127.0.0.1:1": "nats://limited:xxxxx@127.0.0.1:1",
		"nats://a:pw@h1:1,nats://b:pw@h2:2":     "(the NATS URL)",
	} {
		if got := redactedURL(in); got != want || strings.Contains(got, "pw") {
			t.Errorf("redactedURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClock(t *testing.T) {
	c := NewClock(time.Time{})
	t0 := c.Now()
	c.Advance(time.Minute)
	if d := c.Now().Sub(t0); d != time.Minute {
		t.Fatalf("advanced %v, want 1m", d)
	}
}
