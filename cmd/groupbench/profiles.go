package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"
)

// Opt-in knobs of scenario 2, for profiling (none is set by make bench):
//
//	BENCH_OVERHEAD_SITE_CONCURRENCY=n  --site-concurrency of the run (default 64, as --concurrency)
//	BENCH_OVERHEAD_WIX=http|memory     run only that row
//	BENCH_BLOCKPROFILE=prefix          block profile of each row's processor phase in prefix.<http|memory>
//	BENCH_MUTEXPROFILE=prefix          mutex profile of the same, in prefix.<http|memory>
//	BENCH_ALLOCPROFILE=prefix          allocs profile (since the process started) after the same, in prefix.<http|memory>
//	BENCH_GOROUTINES=prefix            goroutine dump (debug=1) when half the commands have completed
//	BENCH_TIMELINE=ms                  print the completions in each interval of ms milliseconds
//
// The block and mutex profiles record every event (rate 1, fraction 1) and
// so slow the run they profile: compare their rows with each other, not
// with an unprofiled run.

// overheadSiteConcurrency returns the --site-concurrency of scenario 2.
func overheadSiteConcurrency(conc int) int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_OVERHEAD_SITE_CONCURRENCY")); err == nil && v > 0 {
		return v
	}
	return conc
}

// overheadWixRows returns the ways of answering Wix scenario 2 runs.
func overheadWixRows() []string {
	switch os.Getenv("BENCH_OVERHEAD_WIX") {
	case "http":
		return []string{wixHTTP}
	case "memory":
		return []string{wixInMemory}
	}
	return []string{wixHTTP, wixInMemory}
}

// rowSuffix names a row in a profile's file name.
func rowSuffix(wix string) string {
	if wix == wixInMemory {
		return "memory"
	}
	return "http"
}

// profileContention turns on the block and mutex profiles asked for by
// BENCH_BLOCKPROFILE and BENCH_MUTEXPROFILE; the returned function writes
// them (prefix.<row>) and turns them off.
func profileContention(wix string, logf func(string, ...any)) (stop func()) {
	block, mutex, allocs := os.Getenv("BENCH_BLOCKPROFILE"), os.Getenv("BENCH_MUTEXPROFILE"), os.Getenv("BENCH_ALLOCPROFILE")
	if block == "" && mutex == "" && allocs == "" {
		return func() {}
	}
	if block != "" {
		runtime.SetBlockProfileRate(1)
	}
	if mutex != "" {
		runtime.SetMutexProfileFraction(1)
	}
	return func() {
		if block != "" {
			writeProfile("block", block+"."+rowSuffix(wix), 0, logf)
			runtime.SetBlockProfileRate(0)
		}
		if mutex != "" {
			writeProfile("mutex", mutex+"."+rowSuffix(wix), 0, logf)
			runtime.SetMutexProfileFraction(0)
		}
		if allocs != "" {
			writeProfile("allocs", allocs+"."+rowSuffix(wix), 0, logf)
		}
	}
}

// dumpGoroutinesAtHalf writes a goroutine dump into
// $BENCH_GOROUTINES.<row> once at most half of n commands are still
// awaited (left reports how many are); the returned function stops the
// watcher.
func dumpGoroutinesAtHalf(wix string, n int, left func() int, logf func(string, ...any)) (stop func()) {
	prefix := os.Getenv("BENCH_GOROUTINES")
	if prefix == "" {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// A poll, not an event: the dump is a diagnostic, and the harness
		// has no hook on a completion count.
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				if left() <= n/2 {
					writeProfile("goroutine", prefix+"."+rowSuffix(wix), 1, logf)
					return
				}
			}
		}
	}()
	return func() { close(quit); <-done }
}

func writeProfile(name, path string, debug int, logf func(string, ...any)) {
	f, err := os.Create(path)
	if err != nil {
		logf("  %s profile: %v", name, err)
		return
	}
	defer func() { _ = f.Close() }()
	if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
		logf("  %s profile: %v", name, err)
		return
	}
	logf("  %s profile in %s", name, path)
}

// logTimeline prints, when BENCH_TIMELINE is set, how many of ps completed
// in each interval of that many milliseconds from start: stalls show as
// intervals with few or none.
func logTimeline(ps []*pending, start time.Time, logf func(string, ...any)) {
	ms, err := strconv.Atoi(os.Getenv("BENCH_TIMELINE"))
	if err != nil || ms <= 0 {
		return
	}
	step := time.Duration(ms) * time.Millisecond
	var counts []int
	for _, p := range ps {
		i := int(p.Done.At.Sub(start) / step)
		if i < 0 {
			i = 0
		}
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	logf("  completions per %dms: %v", ms, counts)
}

// awaited returns how many commands the harness still awaits.
func (h *harness) awaited() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}
