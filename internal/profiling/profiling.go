// Package profiling starts the opt-in CPU profiles of groupflow's binaries
// and benchmarks (GROUPFLOW_CPUPROFILE, WIXSIM_CPUPROFILE, BENCH_CPUPROFILE):
// a developer's tool, written to a local file, never served.
package profiling

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// StartCPU writes a CPU profile (go tool pprof) to path until the returned
// stop is called. An empty path profiles nothing; stop is then a no-op. On
// error nothing is profiled and stop is a no-op too.
func StartCPU(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return func() {}, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
