package config

import (
	"io"
	"math"
	"runtime/debug"
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
