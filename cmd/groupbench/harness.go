package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/events"
	"groupflow/messages"
)

// completionTypes are the events that complete a command.
var completionTypes = []string{messages.EvtGroupProvisioned, messages.EvtCampaignCompleted,
	messages.EvtMembershipQuestionsSet, messages.EvtRulesPropagated, messages.EvtReportGenerated,
	messages.EvtCommandFailed}

// completion is a completion event as received.
type completion struct {
	At   time.Time
	Type string
	Data []byte
}

// WixCalls extracts the event's wixCalls field (0 when absent).
func (c completion) WixCalls() int64 {
	var v struct {
		WixCalls int64 `json:"wixCalls"`
	}
	_ = json.Unmarshal(c.Data, &v)
	return v.WixCalls
}

// maxAsyncPending bounds the producer's unacknowledged async publishes.
const maxAsyncPending = 1 << 16

// harness is a running processor (app.Start, in process) plus a producer
// connection that publishes commands and awaits their completion events.
type harness struct {
	app  *app.App
	stub *wixStub // Wix answered in memory, or nil: the simulator answers
	dir  string
	nc   *nats.Conn
	js   jetstream.JetStream
	subj messages.Subjects

	mu      sync.Mutex
	waiters map[string]chan completion
	failed  int
}

// appOpts configure startApp; Args are extra groupflow flags.
type appOpts struct {
	Args []string
	Env  map[string]string
	// WixInMemory answers the Wix calls in memory with a canned stub (no
	// socket, no simulator; see wixStub).
	WixInMemory bool
}

func benchLogger() *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.ErrorLevel)
	return zap.New(core)
}

// startApp runs the processor with an embedded broker on a fresh data dir.
// Unless overridden, it uses the embedded simulator, empty sites, no rate limit.
func startApp(o appOpts) (*harness, error) {
	dir, err := tempDir("groupbench-")
	if err != nil {
		return nil, err
	}
	args := []string{"--data-dir", dir, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--wix-sim-listen", "127.0.0.1:0", "--wix-sim-members", "-1", "--wix-sim-groups", "-1",
		"--wix-sim-rate-per-minute", "0", "--wix-rate-per-minute", "1e9", "--log-level", "error"}
	args = append(args, o.Args...)
	getenv := func(k string) string { return o.Env[k] }
	cfg, err := config.Parse(args, getenv, io.Discard)
	if err != nil {
		removeTemp(dir)
		return nil, fmt.Errorf("config: %w", err)
	}
	var opts app.Options
	var stub *wixStub
	if o.WixInMemory {
		stub = &wixStub{}
		opts.SimTransport = func(http.Handler) http.RoundTripper { return stub }
	}
	a, err := app.StartWith(context.Background(), cfg, getenv, benchLogger(), opts)
	if err != nil {
		removeTemp(dir)
		return nil, fmt.Errorf("start groupflow: %w", err)
	}
	h := &harness{app: a, stub: stub, dir: dir, subj: messages.Subjects{Prefix: cfg.Prefix}, waiters: map[string]chan completion{}}
	if err := h.connect(a.NATSURL); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// wixCalls returns the Wix calls answered so far for site: by the stub when
// Wix is answered in memory (it serves one site), else by the simulator.
func (h *harness) wixCalls(site string) int64 {
	if h.stub != nil {
		return h.stub.calls.Load()
	}
	return h.app.Sim.TotalCalls(site)
}

func (h *harness) connect(url string) error {
	nc, err := nats.Connect(url, nats.Name("groupbench"))
	if err != nil {
		return err
	}
	h.nc = nc
	// Scenario 2 publishes all its commands, then its raw baseline all its
	// messages, without waiting: at the default 4,000 unacknowledged async
	// publishes a busy server stalls the publisher past its 200 ms grace
	// ("too many outstanding async published messages") from about 16,000
	// messages on; maxAsyncPending covers BENCH_OVERHEAD_N up to that.
	if h.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxAsyncPending)); err != nil {
		return err
	}
	for _, t := range completionTypes {
		t := t
		if _, err := nc.Subscribe(h.subj.Event(t), func(m *nats.Msg) {
			at := time.Now()
			id := m.Header.Get(events.HeaderCommandID)
			h.mu.Lock()
			ch := h.waiters[id]
			delete(h.waiters, id)
			if t == messages.EvtCommandFailed {
				h.failed++
			}
			h.mu.Unlock()
			if ch != nil {
				ch <- completion{At: at, Type: t, Data: m.Data}
			}
		}); err != nil {
			return err
		}
	}
	return nc.Flush()
}

// Close stops the processor and removes its data.
func (h *harness) Close() {
	if h.nc != nil {
		h.nc.Close()
	}
	if h.app != nil {
		_ = h.app.Stop()
	}
	if h.dir != "" {
		removeTemp(h.dir)
	}
}

// expect registers interest in the completion of command id.
func (h *harness) expect(id string) <-chan completion {
	ch := make(chan completion, 1)
	h.mu.Lock()
	h.waiters[id] = ch
	h.mu.Unlock()
	return ch
}

// publish sends a command (synchronously, awaiting the stream's ack).
func (h *harness) publish(cmdType string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.js.Publish(ctx, h.subj.Command(cmdType), body)
	return err
}

// publishAsync sends a command without waiting for its ack.
func (h *harness) publishAsync(cmdType string, body []byte) error {
	_, err := h.js.PublishAsync(h.subj.Command(cmdType), body)
	return err
}

func (h *harness) flushAsync() error {
	select {
	case <-h.js.PublishAsyncComplete():
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("publish acks not received after 60s")
	}
}

// run publishes one command and waits for its completion event.
func (h *harness) run(cmdType, id string, body map[string]any, timeout time.Duration) (completion, time.Duration, error) {
	body["id"] = id
	b, err := json.Marshal(body)
	if err != nil {
		return completion{}, 0, err
	}
	ch := h.expect(id)
	start := time.Now()
	if err := h.publish(cmdType, b); err != nil {
		return completion{}, 0, err
	}
	select {
	case c := <-ch:
		if c.Type == messages.EvtCommandFailed {
			return c, c.At.Sub(start), fmt.Errorf("%s %s failed: %s", cmdType, id, c.Data)
		}
		return c, c.At.Sub(start), nil
	case <-time.After(timeout):
		return completion{}, 0, fmt.Errorf("%s %s: no completion within %s", cmdType, id, timeout)
	}
}

// pending is a published command awaiting completion.
type pending struct {
	ID, Type, Site string
	Sent           time.Time
	ch             <-chan completion
	Done           completion
}

// send publishes asynchronously and returns the pending command.
func (h *harness) send(cmdType, id string, body map[string]any) (*pending, error) {
	body["id"] = id
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	p := &pending{ID: id, Type: cmdType, ch: h.expect(id)}
	if s, ok := body["siteId"].(string); ok {
		p.Site = s
	}
	p.Sent = time.Now()
	return p, h.publishAsync(cmdType, b)
}

// wait awaits the completion of p.
func (p *pending) wait(timeout time.Duration) error {
	select {
	case c := <-p.ch:
		p.Done = c
		if c.Type == messages.EvtCommandFailed {
			return fmt.Errorf("%s %s failed: %s", p.Type, p.ID, c.Data)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s %s: no completion within %s", p.Type, p.ID, timeout)
	}
}

func (p *pending) latency() time.Duration { return p.Done.At.Sub(p.Sent) }

// waitAll awaits every pending command with one overall deadline.
func waitAll(ps []*pending, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, p := range ps {
		if err := p.wait(max(time.Until(deadline), time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// ---- statistics ----

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(p/100*float64(len(s))+0.5) - 1
	idx = min(max(idx, 0), len(s)-1)
	return s[idx]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ceilDiv(a, b int) int64 { return int64((a + b - 1) / b) }

func itoa(i int) string { return strconv.Itoa(i) }

// sampler records a counter over time.
type sampler struct {
	mu   sync.Mutex
	t0   time.Time
	pts  []sample
	stop chan struct{}
	done chan struct{}
}

type sample struct {
	T      time.Duration
	Values []int64
}

func startSampler(every time.Duration, read func() []int64) *sampler {
	s := &sampler{t0: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	s.pts = append(s.pts, sample{0, read()})
	go func() {
		defer close(s.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				s.mu.Lock()
				s.pts = append(s.pts, sample{time.Since(s.t0), read()})
				s.mu.Unlock()
				return
			case <-tk.C:
				v := read()
				s.mu.Lock()
				s.pts = append(s.pts, sample{time.Since(s.t0), v})
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *sampler) Stop() { close(s.stop); <-s.done }

// at returns the values at the last sample at or before t.
func (s *sampler) at(t time.Duration) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.pts[0].Values
	for _, p := range s.pts {
		if p.T > t {
			break
		}
		v = p.Values
	}
	return v
}

// window returns the exact sample times bracketing [from, to] and the
// values there.
func (s *sampler) window(from, to time.Duration) (time.Duration, time.Duration, []int64, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.pts[0], s.pts[0]
	for _, p := range s.pts {
		if p.T <= from {
			a = p
		}
		if p.T <= to {
			b = p
		}
	}
	return a.T, b.T, a.Values, b.Values
}

// cpuMeter measures the CPU used by this process and by the whole machine
// (other engineers' builds and tests included) over an interval.
type cpuMeter struct {
	t0         time.Time
	proc0      int64
	busy0, tot int64
}

// CPUUse is what a cpuMeter measured.
type CPUUse struct {
	// BenchCores is the CPU time of this process (processor, broker and
	// simulator when in process) per second of wall time.
	BenchCores float64 `json:"benchProcessCores"`
	// MachineBusy is the fraction of all CPUs busy (any process).
	MachineBusy float64 `json:"machineBusyFraction"`
	// OtherCores is the CPU the other processes of the machine used, in
	// cores (MachineBusy × CPUs − BenchCores, at least 0): on a shared
	// machine, a run that got less than its cores because others took them
	// shows here, and its throughput is not comparable with a quiet run's.
	OtherCores float64 `json:"otherProcessesCores"`
}

// noisyCores is the OtherCores above which a measurement is flagged as
// taken on a busy machine.
const noisyCores = 0.25

func procTicks() int64 { return statTicks("/proc/self/stat") }

// statTicks reads user + system CPU ticks from a /proc/<pid>/stat file.
func statTicks(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// machineTicks returns the busy and total ticks of all CPUs, and the number
// of CPUs, from /proc/stat.
func machineTicks() (busy, total int64, cpus int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, rest, _ := strings.Cut(string(b), "\n")
	for _, l := range strings.Split(rest, "\n") {
		if len(l) > 3 && strings.HasPrefix(l, "cpu") && l[3] >= '0' && l[3] <= '9' {
			cpus++
		}
	}
	f := strings.Fields(line)
	for i, x := range f[1:] {
		v, _ := strconv.ParseInt(x, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, cpus
}

func startCPU() *cpuMeter {
	m := &cpuMeter{t0: time.Now(), proc0: procTicks()}
	m.busy0, m.tot, _ = machineTicks()
	return m
}

func (m *cpuMeter) Stop() CPUUse {
	wall := time.Since(m.t0).Seconds()
	busy, tot, cpus := machineTicks()
	u := CPUUse{BenchCores: float64(procTicks()-m.proc0) / 100 / wall}
	if tot > m.tot {
		u.MachineBusy = float64(busy-m.busy0) / float64(tot-m.tot)
		u.OtherCores = max(0, u.MachineBusy*float64(cpus)-u.BenchCores)
	}
	return u
}
