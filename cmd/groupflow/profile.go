package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"

	"go.uber.org/zap"
)

// heapProfileEnv names the diagnostic environment variable that makes
// groupflow write a heap profile and a goroutine profile (pprof format) of
// its highest heap: FILE and FILE.goroutine (and FILE.memstats, the
// runtime's memory statistics and goroutine count, as text), rewritten whenever the heap and
// stacks in use grow a tenth above the last written peak (checked every second), and
// once more at shutdown as FILE.exit and FILE.exit.goroutine. Nothing is
// served over the network. Read them with `go tool pprof FILE`.
const heapProfileEnv = "GROUPFLOW_HEAPPROFILE"

// startHeapProfiles starts the writer when GROUPFLOW_HEAPPROFILE is set;
// the function returned stops it and writes the exit profiles.
func startHeapProfiles(ctx context.Context, getenv func(string) string, log *zap.Logger) (stop func()) {
	path := getenv(heapProfileEnv)
	if path == "" {
		return func() {}
	}
	path = filepath.Clean(path)
	log.Warn("diagnostics: writing heap profiles ("+heapProfileEnv+")", zap.String("file", path))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var written uint64
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			var ms goruntime.MemStats
			goruntime.ReadMemStats(&ms)
			inuse := ms.HeapInuse + ms.StackInuse
			if inuse <= written+written/10 {
				continue
			}
			written = inuse
			if err := writeProfiles(path, &ms); err != nil {
				log.Warn("diagnostics: heap profile", zap.Error(err))
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		if err := writeProfiles(path+".exit", &ms); err != nil {
			log.Warn("diagnostics: heap profile", zap.Error(err))
		}
	}
}

// writeProfiles writes the heap profile to path, the goroutine profile to
// path.goroutine and ms to path.memstats, each through a temporary file
// renamed into place.
func writeProfiles(path string, ms *goruntime.MemStats) error {
	for _, p := range []struct{ name, file string }{{"heap", path}, {"goroutine", path + ".goroutine"}, {"memstats", path + ".memstats"}} {
		tmp := p.file + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if p.name == "memstats" {
			const mib = 1 << 20
			stackStart := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
			metrics.Read(stackStart)
			_, err = fmt.Fprintf(f, "goroutines %d\nstack_starting_size_bytes %d\nheap_inuse_mib %.1f\nheap_alloc_mib %.1f\nheap_idle_mib %.1f\nheap_released_mib %.1f\nstack_inuse_mib %.1f\nsys_mib %.1f\nnext_gc_mib %.1f\nnum_gc %d\n",
				goruntime.NumGoroutine(), stackStart[0].Value.Uint64(), float64(ms.HeapInuse)/mib, float64(ms.HeapAlloc)/mib, float64(ms.HeapIdle)/mib,
				float64(ms.HeapReleased)/mib, float64(ms.StackInuse)/mib, float64(ms.Sys)/mib, float64(ms.NextGC)/mib, ms.NumGC)
		} else {
			err = pprof.Lookup(p.name).WriteTo(f, 0)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, p.file)
		}
		if err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("%s profile: %w", p.name, err)
		}
	}
	return nil
}
