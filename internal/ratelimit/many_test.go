package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"groupflow/internal/testenv"
	"groupflow/internal/testutil"
)

// BenchmarkSharedLimiterManySites: one instance with 1,000 sites that all
// have a backlog (a caller always in Wait), against a real JetStream bucket.
// It reports the KV operations per active site per minute (the instance
// writes one value per Heartbeat whatever its number of sites), the bytes
// written per active site per minute, and the heap bytes per active site.
// Each iteration runs 3 s: use -benchtime 1x.
func BenchmarkSharedLimiterManySites(b *testing.B) {
	const sites = 1000
	const window = 3 * time.Second
	env := testenv.Start(b, testenv.Quiet())
	var opsPerMin, bytesPerMin, heapPerSite, calls float64
	for it := range b.N {
		_, js := testutil.JetStream(b, env.Server.URL)
		ctx, cancel := context.WithCancel(context.Background())
		g := NewGroup(ctx, js, fmt.Sprintf("bench-%d", it), Options{})
		lims := make([]*Shared, sites)
		for i := range lims {
			s, err := g.Shared(fmt.Sprintf("5f1c3a52-7d1e-4c1b-9a0e-%012d", i), 200)
			if err != nil {
				b.Fatal(err)
			}
			lims[i] = s
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for _, s := range lims {
			if err := s.Wait(ctx); err != nil { // the first token is free
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heapPerSite += float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / sites

		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var mu sync.Mutex
		n := 0
		for _, s := range lims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s.Wait(wctx) == nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Second) // registration: the sites' first list comes back
		o0, t0 := g.KVOps(), time.Now()
		time.Sleep(window)
		d, el := g.KVOps().Sub(o0), time.Since(t0)
		mu.Lock()
		calls += float64(n)
		mu.Unlock()
		stop()
		wg.Wait()
		opsPerMin += float64(d.Total()) / sites / el.Minutes()
		bytesPerMin += float64(d.Bytes) / sites / el.Minutes()
		_ = g.Close()
		cancel()
	}
	b.ReportMetric(opsPerMin/float64(b.N), "kv_ops/site/min")
	b.ReportMetric(bytesPerMin/float64(b.N), "kv_bytes/site/min")
	b.ReportMetric(heapPerSite/float64(b.N), "heap_bytes/site")
	b.ReportMetric(calls/float64(b.N), "waits/op")
}

// BenchmarkSharedWaitParallel: 64 callers of one site's Wait at an
// unlimited rate (1e9 a minute, as make bench's scenario 2 runs), on a
// fake bucket. Only one caller at a time holds a reservation of the site's
// bucket, so this is the cost of that hand-off: ns/op is the time per
// request the limiter lets through with 64 waiting, waits/s its ceiling for
// one site (scenario 2 needs about 4 Wix calls × 5,000 commands a second).
func BenchmarkSharedWaitParallel(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := newDrivenGroup(ctx, newFakeKV(), "bench", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	s, err := g.Shared("site", 1e9)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Wait(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "waits/s")
}
