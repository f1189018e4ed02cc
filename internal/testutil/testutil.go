// Package testutil holds test helpers that import nothing of groupflow, so
// that every package's tests can use them without an import cycle: a loopback
// port for a child process with a retry on a lost bind race, the module root,
// the nats-server binary for such a process, an in-process nats-server (one
// that knows a single user, too), a JetStream client connection, and a manual
// clock. (internal/testenv, which starts a broker
// and a runtime, builds on the packages under test and cannot be imported by
// them.)
package testutil

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrAddrInUse marks a start that failed because a port it was given was
// taken meanwhile; WithPorts retries such a start with new ports.
var ErrAddrInUse = errors.New("address already in use")

// BindFailed reports whether a process's output says that it could not bind
// its listen address: nats-server, groupflow and wixsim all log the
// operating system's "address already in use".
func BindFailed(output string) bool {
	return strings.Contains(strings.ToLower(output), "address already in use")
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. Another process may take one before the caller binds it, so it is
// only for a child process that needs its port on the command line, and
// only through WithPorts, which retries when that race is lost. In-process
// servers listen on 127.0.0.1:0 instead and report their address.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var open []net.Listener
	defer func() {
		for _, l := range open {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		open = append(open, l) // held until all are picked: n distinct ports
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// BindAttempts is how often WithPorts tries a start.
const BindAttempts = 5

// WithPorts picks n free loopback ports and calls start with them. When
// start fails with an error wrapping ErrAddrInUse (another process took a
// port between the pick and the child's bind), start must have stopped
// what it started; WithPorts picks new ports and calls it again, up to
// BindAttempts times. Any other error fails the test. It returns the ports
// of the start that succeeded.
func WithPorts(t testing.TB, n int, start func(ports []int) error) []int {
	t.Helper()
	var err error
	for attempt := 1; attempt <= BindAttempts; attempt++ {
		ports := FreePorts(t, n)
		if err = start(ports); err == nil {
			return ports
		}
		if !errors.Is(err, ErrAddrInUse) {
			t.Fatal(err)
		}
		t.Logf("attempt %d: ports %v: %v; retrying with new ports", attempt, ports, err)
	}
	t.Fatalf("no start in %d attempts: %v", BindAttempts, err)
	return nil
}

// AwaitStart waits until ready reports true (the child is serving) or
// exited is closed (the child stopped). An exit whose output (read by
// output) shows a failed bind is ErrAddrInUse; another exit, or no
// readiness within timeout, is an error naming what.
func AwaitStart(name string, timeout time.Duration, exited <-chan struct{}, output func() string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			if out := output(); BindFailed(out) {
				return fmt.Errorf("%s: %w", name, ErrAddrInUse)
			}
			return fmt.Errorf("%s exited at start:\n%s", name, output())
		default:
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Dialable reports whether something accepts TCP connections on addr.
func Dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// ModuleRoot returns the module root: the nearest directory at or above the
// working directory that holds a go.mod file (for a test, whose working
// directory is its package's, groupflow's root). It is an error when the
// working directory is unknown or no such directory exists.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("module root: no go.mod at or above %s", wd)
		}
	}
}

// MustModuleRoot is ModuleRoot for a test that cannot go on without the
// module root: the error fails the test.
func MustModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// isFile reports whether p names something that is not a directory.
func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && !fi.IsDir() }

// NATSServerBin finds the nats-server binary: $NATS_SERVER_BIN when it names
// a file, else bin/nats-server at the module root (ModuleRoot; `make tools`
// installs it there), else nats-server on PATH. Missing, it fails the test
// under CI ($CI set) and skips it elsewhere.
func NATSServerBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" && isFile(p) {
		return p
	}
	if root, err := ModuleRoot(); err == nil {
		if p := filepath.Join(root, "bin", "nats-server"); isFile(p) {
			return p
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	const msg = "nats-server not found (set NATS_SERVER_BIN or run `make tools`)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// NATS starts an in-process nats-server with opts (nil: none) and returns it
// ready for connections; it shuts down when the test ends. It sets opts'
// NoLog and NoSigs, and an unset Host and Port to 127.0.0.1 and a free port;
// the rest (users, JetStream and its StoreDir) is the caller's.
func NATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	opts.NoLog, opts.NoSigs = true, true
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s
}

// UserNATS starts an in-process nats-server (NATS) that knows one user,
// user with password, and returns its host:port.
func UserNATS(t testing.TB, user, password string) string {
	t.Helper()
	return NATS(t, &server.Options{Users: []*server.User{{Username: user, Password: password}}}).Addr().String()
}

// JetStream connects to the NATS server at natsURL with opts and opens
// JetStream on that connection; either failing fails the test (naming the
// URL without its password). The connection closes when the test ends.
func JetStream(t testing.TB, natsURL string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", redactedURL(natsURL), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// redactedURL is s with any password replaced by "xxxxx"; a string that is
// not one URL (a comma-separated list) is not shown at all.
func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil && !strings.Contains(s, ",") {
		return u.Redacted()
	}
	return "(the NATS URL)"
}

// Clock is a manually advanced clock, safe for concurrent use; its Now
// fits every Now func() time.Time option.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at start (the zero time: 2026-11-26 12:00 UTC).
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	}
	return &Clock{t: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
