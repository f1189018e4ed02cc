package config

import (
	"io"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBoundsFlags(t *testing.T) {
	env := map[string]string{"GROUPFLOW_MEMORY_LIMIT": "512MiB", "GROUPFLOW_DLQ_MAX_BYTES": "1GiB"}
	c, err := Parse([]string{"--commands-max-bytes", "2GiB", "--in-flight-bytes", "1048576", "--wix-sim-sites", "a, b"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemoryLimit != 512<<20 || c.DLQMaxBytes != 1<<30 || c.CommandsMaxBytes != 2<<30 || c.InFlightBytes != 1<<20 ||
		c.EventsMaxBytes != 1<<30 || len(c.WixSimSites) != 2 || c.WixSimSites[1] != "b" {
		t.Fatalf("bounds %+v", c)
	}
	for _, bad := range []string{"-1", "12XB", "MiB", "99999999999TiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	if got := ApplyMemoryLimit(64 << 20); got != 64<<20 || debug.SetMemoryLimit(-1) != 64<<20 {
		t.Fatalf("memory limit %d", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := ApplyMemoryLimit(0); got != math.MaxInt64 {
		t.Fatalf("no limit: %d", got)
	}
}

// TestSizesBounded: a size or count that would silently mean something else
// is refused, naming the flag: 0 in-flight or stream bytes (silently the
// defaults), a negative DLQ message limit (silently none), a memory limit
// so small the collector runs without end, and simulator seeds that fill
// memory at the first site.
func TestSizesBounded(t *testing.T) {
	for _, tt := range []struct {
		flag, v string
		ok      bool
	}{
		{"--in-flight-bytes", "1MiB", true}, {"--in-flight-bytes", "0", false},
		{"--commands-max-bytes", "0", false}, {"--events-max-bytes", "0", false}, {"--dlq-max-bytes", "0", false},
		{"--dlq-max-msgs", "0", true}, {"--dlq-max-msgs", "10", true}, {"--dlq-max-msgs", "-5", false},
		{"--memory-limit", "0", true}, {"--memory-limit", "32MiB", true}, {"--memory-limit", "1", false}, {"--memory-limit", "1MiB", false},
		{"--wix-sim-members", "-1", true}, {"--wix-sim-members", "1000000", true}, {"--wix-sim-members", "1000001", false},
		{"--wix-sim-groups", "-1", true}, {"--wix-sim-groups", "100000", true}, {"--wix-sim-groups", "100001", false},
	} {
		_, err := Parse([]string{tt.flag, tt.v}, func(string) string { return "" }, io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("%s %s: err = %v, want ok %v", tt.flag, tt.v, err, tt.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.flag+" ") {
			t.Errorf("%s %s: err %q does not name the flag", tt.flag, tt.v, err)
		}
	}
}
