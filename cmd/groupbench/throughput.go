package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/profiling"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// OverheadRow is scenario 2, one row per way of answering Wix.
type OverheadRow struct {
	Command string `json:"command"`
	// Wix says how Wix was answered: by the simulator over HTTP on a
	// loopback socket, or in memory (a canned http.RoundTripper stub, no
	// socket, no simulator; see wixStub).
	Wix         string `json:"wix"`
	N           int    `json:"n"`
	MsgBytes    int    `json:"msgBytes"`
	Concurrency int    `json:"concurrency"`
	// SiteConcurrency is the run's --site-concurrency (its one site's
	// commands at once): Concurrency unless BENCH_OVERHEAD_SITE_CONCURRENCY.
	SiteConcurrency int   `json:"siteConcurrency"`
	WixCallsEach    int64 `json:"wixCallsPerCommand"`
	// WritesEach counts the JetStream writes per command: the appends to
	// every stream and KV bucket (the sum of their last-sequence deltas),
	// the command's own publish aside. WritesByStream splits it.
	WritesEach     float64            `json:"writesPerCommand"`
	WritesByStream map[string]float64 `json:"writesPerCommandByStream"`
	// LedgerWritesEach and EventWritesEach are the ledger's and the events
	// stream's part of WritesEach.
	LedgerWritesEach float64 `json:"ledgerWritesPerCommand"`
	EventWritesEach  float64 `json:"eventWritesPerCommand"`
	// CPU is the CPU use during the processor phase; CPUMicrosEach the
	// bench process's CPU time (processor, embedded broker, simulator,
	// producer) per command, RawCPUMicrosEach the same per raw message.
	CPU              CPUUse  `json:"cpuDuringProcessor"`
	CPUMicrosEach    float64 `json:"cpuMicrosPerCommand"`
	RawCPUMicrosEach float64 `json:"rawCpuMicrosPerMessage"`
	ProcessorS       float64 `json:"processorSeconds"`
	ProcessorPerS    float64 `json:"processorPerSecond"`
	// RawS is the median of rawRuns runs of the raw baseline.
	RawS    float64 `json:"rawSeconds"`
	RawPerS float64 `json:"rawPerSecond"`
	Ratio   float64 `json:"ratio"`
	// Floor is the JetStream floor of the same command (floorRun): its
	// broker operations alone, on the same server, as many in flight.
	// FloorRatio = floor/raw bounds Ratio; OfFloor = processor/floor is
	// how close groupflow runs to that bound.
	FloorS           float64 `json:"floorSeconds"`
	FloorPerS        float64 `json:"floorPerSecond"`
	FloorCPUMicros   float64 `json:"floorCpuMicrosPerCommand"`
	FloorRatio       float64 `json:"floorRatio"`
	ProcessorOfFloor float64 `json:"processorOfFloor"`
}

// Ways of answering Wix in scenario 2.
const (
	wixHTTP     = "simulator over HTTP"
	wixInMemory = "in memory"
)

func provisionBody(site, name, email string) map[string]any {
	return map[string]any{"siteId": site, "group": map[string]any{"name": name}, "people": []messages.Person{{Email: email}}}
}

// scenarioOverhead: N small commands end to end (publish → completion
// event) on a zero-latency unlimited simulator, against raw JetStream
// publish + consume + ack of as many messages of the same size on the same
// embedded server; once with the simulator over HTTP, once answered in
// memory, each on a fresh processor.
func scenarioOverhead(quick bool, logf func(string, ...any)) ([]OverheadRow, error) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("BENCH_OVERHEAD_N")); err == nil && v > 0 {
		n = min(v, maxAsyncPending)
	}
	if quick {
		n = 500
	}
	var rows []OverheadRow
	for _, wix := range overheadWixRows() {
		row, err := overheadRun(n, wix, logf)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", wix, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// overheadRun is one row of scenario 2.
func overheadRun(n int, wix string, logf func(string, ...any)) (OverheadRow, error) {
	const conc = 64
	row := OverheadRow{Command: "provision_group (1 person, new group)", Wix: wix, N: n, Concurrency: conc, SiteConcurrency: overheadSiteConcurrency(conc)}
	// One site: --site-concurrency too, or the admission would run 4 at once.
	h, err := startApp(appOpts{Args: []string{"--concurrency", itoa(conc), "--site-concurrency", itoa(row.SiteConcurrency)}, WixInMemory: wix == wixInMemory})
	if err != nil {
		return row, err
	}
	defer h.Close()
	const site = "overhead"
	st := h.app.Sim.Site(site)
	st.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
	st.AddMember(wixsim.MemberSeed{FirstName: "Ann", LoginEmail: "ann@example.com"})
	// Warm up (consumers, connections, first groups).
	for i := range 20 {
		if _, _, err := h.run(messages.CmdProvisionGroup, fmt.Sprintf("warm-%d", i), provisionBody(site, fmt.Sprintf("warm %d", i), "ann@example.com"), time.Minute); err != nil {
			return row, err
		}
	}
	before := h.wixCalls(site)
	seqsBefore, err := settledSeqs(h.js)
	if err != nil {
		return row, err
	}
	ps := make([]*pending, n)
	stopProfile := profileCPU(wix == wixInMemory || len(overheadWixRows()) == 1, logf)
	stopContention := profileContention(wix, logf)
	stopDump := dumpGoroutinesAtHalf(wix, n, h.awaited, logf)
	cpu, cpu0 := startCPU(), processCPU()
	start := time.Now()
	for i := range n {
		body := provisionBody(site, fmt.Sprintf("ovh %05d", i), "ann@example.com")
		b, _ := json.Marshal(body)
		row.MsgBytes += len(b) + len(`,"id":"ovh-00000"`)
		if ps[i], err = h.send(messages.CmdProvisionGroup, fmt.Sprintf("ovh-%05d", i), body); err != nil {
			return row, err
		}
	}
	if err := h.flushAsync(); err != nil {
		return row, err
	}
	if err := waitAll(ps, 10*time.Minute); err != nil {
		return row, err
	}
	var last time.Time
	for _, p := range ps {
		if p.Done.At.After(last) {
			last = p.Done.At
		}
	}
	row.ProcessorS = last.Sub(start).Seconds()
	logTimeline(ps, start, logf)
	row.CPU, row.CPUMicrosEach = cpu.Stop(), micros(processCPU()-cpu0)/float64(n)
	stopProfile()
	stopContention()
	stopDump()
	row.WixCallsEach = (h.wixCalls(site) - before) / int64(n)
	seqsAfter, err := settledSeqs(h.js)
	if err != nil {
		return row, err
	}
	total, per := writesDelta(seqsBefore, seqsAfter)
	row.WritesEach = float64(total-int64(n)) / float64(n) // the commands' own publishes aside
	delete(per, h.subj.CommandStream())
	row.WritesByStream = perCommand(per, n)
	row.LedgerWritesEach, row.EventWritesEach = row.WritesByStream["KV_"+broker.LedgerBucket], row.WritesByStream[h.subj.EventStream()]
	row.MsgBytes /= n
	row.ProcessorPerS = float64(n) / row.ProcessorS
	logf("  processor (Wix %s): %d provision_group in %.2fs (%.0f/s), %d Wix calls each, %.1f writes/command (%s), %.0f CPU-µs/command; %.2f cores, other processes %.2f",
		wix, n, row.ProcessorS, row.ProcessorPerS, row.WixCallsEach, row.WritesEach, formatPerStream(row.WritesByStream), row.CPUMicrosEach, row.CPU.BenchCores, row.CPU.OtherCores)
	if row.CPU.OtherCores > noisyCores {
		logf("  busy machine: other processes used %.2f cores; this row's msgs/s is not comparable with a quiet run's", row.CPU.OtherCores)
	}

	raw0 := processCPU()
	if row.RawS, err = rawMedian(h, n, row.MsgBytes); err != nil {
		return row, err
	}
	row.RawCPUMicrosEach = micros(processCPU()-raw0) / float64(rawRuns*n)
	row.RawPerS = float64(n) / row.RawS
	row.Ratio = row.ProcessorPerS / row.RawPerS
	logf("  raw JetStream: %d msgs of %d B in %.2fs (median of %d runs; %.0f/s, %.0f CPU-µs/msg); processor/raw %.3f",
		n, row.MsgBytes, row.RawS, rawRuns, row.RawPerS, row.RawCPUMicrosEach, row.Ratio)
	if row.FloorS, row.FloorCPUMicros, err = floorRun(h, n, row.MsgBytes, conc); err != nil {
		return row, err
	}
	row.FloorPerS = float64(n) / row.FloorS
	row.FloorRatio, row.ProcessorOfFloor = row.FloorPerS/row.RawPerS, row.ProcessorPerS/row.FloorPerS
	logf("  JetStream floor of the command (its broker operations only): %.0f/s, %.0f CPU-µs/command; floor/raw %.3f, processor/floor %.2f",
		row.FloorPerS, row.FloorCPUMicros, row.FloorRatio, row.ProcessorOfFloor)
	return row, nil
}

// profileCPU starts a CPU profile into $BENCH_CPUPROFILE when on (the
// in-memory row, or the one row BENCH_OVERHEAD_WIX selects) and the
// variable is set; the returned function stops it.
func profileCPU(on bool, logf func(string, ...any)) (stop func()) {
	path := os.Getenv("BENCH_CPUPROFILE")
	if !on || path == "" {
		return func() {}
	}
	stopCPU, err := profiling.StartCPU(path)
	if err != nil {
		logf("  %v", err)
		return stopCPU
	}
	return func() {
		stopCPU()
		logf("  cpu profile of the processor phase in %s", path)
	}
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// rawRuns is how many times the raw baseline runs: it lasts a few tens of
// milliseconds, so on a shared machine one run can be off several times
// over; the median of a few is steadier.
const rawRuns = 3

// rawMedian returns the median seconds of rawRuns runs of rawJetStream.
func rawMedian(h *harness, n, size int) (float64, error) {
	secs := make([]float64, 0, rawRuns)
	for range rawRuns {
		s, err := rawJetStream(h, n, size)
		if err != nil {
			return 0, err
		}
		secs = append(secs, s)
	}
	slices.Sort(secs)
	return secs[len(secs)/2], nil
}

// rawJetStream publishes n messages of size bytes to a file stream on the
// processor's embedded server while a durable pull consumer consumes and
// acks them; it returns the seconds from the first publish to the last ack.
func rawJetStream(h *harness, n, size int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := h.js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"benchraw.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Duplicates: 2 * time.Minute})
	if err != nil {
		return 0, err
	}
	defer func() { _ = h.js.DeleteStream(context.Background(), "BENCH_RAW") }()
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 128, FilterSubject: "benchraw.>"})
	if err != nil {
		return 0, err
	}
	var acked atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(n) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	start := time.Now()
	for i := range n {
		if _, err := h.js.PublishAsync(fmt.Sprintf("benchraw.m%d", i%8), payload); err != nil {
			return 0, err
		}
	}
	if err := h.flushAsync(); err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, fmt.Errorf("raw: %d of %d acked", acked.Load(), n)
	}
	return time.Since(start).Seconds(), nil
}

// LatencyRow is scenario 4.
type LatencyRow struct {
	WixLatencyMS float64 `json:"wixLatencyMs"`
	InFlight     int     `json:"inFlight"`
	N            int     `json:"n"`
	WixCalls     int     `json:"wixCallsPerCommand"`
	P50          float64 `json:"p50Ms"`
	P95          float64 `json:"p95Ms"`
	P99          float64 `json:"p99Ms"`
	Mean         float64 `json:"meanMs"`
	PerS         float64 `json:"commandsPerSecond"`
	CPU          CPUUse  `json:"cpu"`
}

// scenarioLatency: publish → completion event of a small ProvisionGroup
// (1 person, 4 Wix calls), Wix latency 0 and 50 ms, 1 and 64 in flight.
func scenarioLatency(quick bool, logf func(string, ...any)) ([]LatencyRow, error) {
	h, err := startApp(appOpts{Args: []string{"--concurrency", "64"}})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	const site = "latency"
	st := h.app.Sim.Site(site)
	st.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
	st.AddMember(wixsim.MemberSeed{FirstName: "Ann", LoginEmail: "ann@example.com"})
	type cfg struct {
		lat      time.Duration
		inflight int
		n        int
	}
	cfgs := []cfg{{0, 1, 1000}, {0, 64, 3000}, {50 * time.Millisecond, 1, 50}, {50 * time.Millisecond, 64, 1000}}
	if quick {
		cfgs = []cfg{{0, 1, 200}, {0, 64, 300}, {50 * time.Millisecond, 1, 15}, {50 * time.Millisecond, 64, 200}}
	}
	var rows []LatencyRow
	seq := 0
	for _, c := range cfgs {
		h.app.Sim.SetFaults(wixsim.Faults{Latency: c.lat})
		var mu sync.Mutex
		var lats []time.Duration
		var firstErr error
		warm := min(c.inflight*2, 20)
		jobs := make(chan bool, c.n+warm)
		for i := range c.n + warm {
			jobs <- i >= warm
		}
		close(jobs)
		var nextID atomic.Int64
		nextID.Store(int64(seq))
		cpu := startCPU()
		start := time.Now()
		var wg sync.WaitGroup
		var measuredStart time.Time
		for range c.inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rec := range jobs {
					id := fmt.Sprintf("lat-%d", nextID.Add(1))
					_, d, err := h.run(messages.CmdProvisionGroup, id, provisionBody(site, "lat "+id, "ann@example.com"), 2*time.Minute)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if rec {
						if measuredStart.IsZero() {
							measuredStart = time.Now().Add(-d)
						}
						lats = append(lats, d)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		use := cpu.Stop()
		seq = int(nextID.Load())
		if firstErr != nil {
			return rows, firstErr
		}
		elapsed := time.Since(measuredStart)
		if measuredStart.IsZero() {
			elapsed = time.Since(start)
		}
		var sum time.Duration
		for _, d := range lats {
			sum += d
		}
		r := LatencyRow{CPU: use, WixLatencyMS: ms(c.lat), InFlight: c.inflight, N: len(lats), WixCalls: 4,
			P50: ms(percentile(lats, 50)), P95: ms(percentile(lats, 95)), P99: ms(percentile(lats, 99)),
			Mean: ms(sum / time.Duration(len(lats))), PerS: float64(len(lats)) / elapsed.Seconds()}
		rows = append(rows, r)
		logf("  wix %3.0fms, %2d in flight: p50 %.1fms p95 %.1fms p99 %.1fms (%d, %.0f/s)", r.WixLatencyMS, r.InFlight, r.P50, r.P95, r.P99, r.N, r.PerS)
	}
	h.app.Sim.SetFaults(wixsim.Faults{})
	return rows, nil
}
