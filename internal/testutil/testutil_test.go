package testutil

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
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

func TestClock(t *testing.T) {
	c := NewClock(time.Time{})
	t0 := c.Now()
	c.Advance(time.Minute)
	if d := c.Now().Sub(t0); d != time.Minute {
		t.Fatalf("advanced %v, want 1m", d)
	}
}
