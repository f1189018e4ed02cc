package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCPUUseOtherCores: the meter counts this machine's CPUs, and what the
// other processes used is never negative.
func TestCPUUseOtherCores(t *testing.T) {
	if _, _, cpus := machineTicks(); cpus < 1 {
		t.Skipf("no per-CPU lines in /proc/stat (%d)", cpus)
	}
	m := startCPU()
	for i := 0; i < 1e6; i++ {
		_ = strings.Repeat("x", i%3)
	}
	if u := m.Stop(); u.OtherCores < 0 || u.BenchCores < 0 || u.MachineBusy < 0 || u.MachineBusy > 1 {
		t.Errorf("%+v", u)
	}
}

// TestOverheadReportFlagsBusyMachine: a scenario 2 row measured while other
// processes took CPU says so under the table, with their cores; a quiet
// one does not; a --site-concurrency unlike the concurrency is shown.
func TestOverheadReportFlagsBusyMachine(t *testing.T) {
	quiet := OverheadRow{Command: "c", Wix: wixHTTP, N: 10, Concurrency: 64, SiteConcurrency: 4, CPU: CPUUse{BenchCores: 1.9, MachineBusy: 0.96, OtherCores: 0.02}}
	busy := OverheadRow{Command: "c", Wix: wixInMemory, N: 10, Concurrency: 64, SiteConcurrency: 64, CPU: CPUUse{BenchCores: 0.73, MachineBusy: 1, OtherCores: 1.27}}
	render := func(rows ...OverheadRow) string {
		var b bytes.Buffer
		report(&b, &Results{Machine: machine(), Overhead: rows})
		return b.String()
	}
	out := render(quiet)
	if strings.Contains(out, "Busy machine") {
		t.Errorf("quiet row flagged:\n%s", out)
	}
	if !strings.Contains(out, "| 64 (site 4) |") || !strings.Contains(out, "| 1.90 / 96% / 0.02 |") {
		t.Errorf("row:\n%s", out)
	}
	if out := render(quiet, busy); !strings.Contains(out, "**Busy machine:**") || !strings.Contains(out, "in memory: 1.27 cores") || strings.Contains(out, "simulator over HTTP: 0.02") {
		t.Errorf("busy row not flagged alone:\n%s", out)
	}
}
