package broker

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestEmbeddedBusyPortFailsAtOnce: a port in use is one error line, at once
// (it was a 30 s wait for a readiness that never came).
func TestEmbeddedBusyPortFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	e, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Listen: ln.Addr().String()}, nil)
	if err == nil {
		e.Shutdown()
		t.Fatal("started on a busy port")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s to fail", took)
	}
	if msg := err.Error(); !strings.Contains(msg, "in use") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line naming the busy port", msg)
	}
}
