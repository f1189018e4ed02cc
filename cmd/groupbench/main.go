// Command groupbench measures how close groupflow runs to its limits (issue
// 7): Wix calls per job against the minimum, processor overhead against raw
// JetStream, rate-limit utilisation, latency, memory, several sites and
// fairness inside one site. Everything runs against the Wix simulator.
//
//	go run ./cmd/groupbench             # full run (< 10 min on 2 cores)
//	BENCH_QUICK=1 go run ./cmd/groupbench  # quick run (< 1 min)
//
// It prints a Markdown report on stdout, progress on stderr, and writes
// bench/results.json and the same report as bench/results.md (quick:
// bench/results-quick.json and .md; BENCH_OUT overrides the JSON path). BENCH_ONLY=1,3 runs only some scenarios;
// BENCH_DEBUG=1 prints per-site call rates every 0.5 s in scenario 6.
// BENCH_CPUPROFILE=file writes a CPU profile of scenario 2's in-memory
// processor phase (go tool pprof file); profiles.go lists scenario 2's other
// opt-in knobs (one row only, --site-concurrency, block, mutex and
// goroutine profiles, a completion timeline).
// Processes it starts (scenario 5) are killed on exit, panic or signal.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"groupflow/internal/version"
)

// Results is bench/results.json.
type Results struct {
	Machine   Machine           `json:"machine"`
	Quick     bool              `json:"quick"`
	Started   time.Time         `json:"started"`
	TookS     float64           `json:"tookSeconds"`
	Calls     []CallsRow        `json:"callsPerJob,omitempty"`
	Overhead  []OverheadRow     `json:"processorOverhead,omitempty"`
	Util      *UtilResult       `json:"rateLimitUtilisation,omitempty"`
	Latency   []LatencyRow      `json:"latency,omitempty"`
	Memory    []MemoryRow       `json:"memory,omitempty"`
	Sites     *SitesResult      `json:"severalSites,omitempty"`
	Fairness  *FairnessResult   `json:"fairness,omitempty"`
	ManySites *ManySitesRun     `json:"manySites,omitempty"`
	BusySite  *ManySitesRun     `json:"busySite,omitempty"`
	Cost      *CostResult       `json:"costPerSite,omitempty"`
	Targets   []Target          `json:"targets"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NProc      int     `json:"nproc"`
	CPUModel   string  `json:"cpuModel"`
	GoVersion  string  `json:"goVersion"`
	Date       string  `json:"date"`
	LoadAvg    string  `json:"loadAverageAtStart"`
	LoadAvgEnd string  `json:"loadAverageAtEnd"`
	Load1      float64 `json:"load1AtStart"`
	OS         string  `json:"os"`
	Hostname   string  `json:"hostname,omitempty"`
}

// Target is one target of the issue, met or missed.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
	Note string `json:"note,omitempty"`
}

func machine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().Format(time.RFC3339), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
			m.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.NProc = n
		}
	}
	m.Hostname, _ = os.Hostname()
	return m
}

// children are the processes started by the bench, killed on exit.
var children struct {
	sync.Mutex
	procs map[int]*os.Process
	dirs  map[string]bool
}

func trackChild(p *os.Process) {
	children.Lock()
	defer children.Unlock()
	if children.procs == nil {
		children.procs = map[int]*os.Process{}
	}
	children.procs[p.Pid] = p
}

func untrackChild(p *os.Process) {
	children.Lock()
	defer children.Unlock()
	delete(children.procs, p.Pid)
}

// killChildren kills the processes still running and removes the
// temporary directories still registered.
func killChildren() {
	children.Lock()
	defer children.Unlock()
	for pid, p := range children.procs {
		_ = p.Kill()
		_, _ = p.Wait()
		delete(children.procs, pid)
	}
	for d := range children.dirs {
		_ = os.RemoveAll(d)
		delete(children.dirs, d)
	}
}

// tempDir creates a temporary directory removed by removeTemp or on exit.
func tempDir(pattern string) (string, error) {
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	children.Lock()
	defer children.Unlock()
	if children.dirs == nil {
		children.dirs = map[string]bool{}
	}
	children.dirs[d] = true
	return d, nil
}

func removeTemp(d string) {
	_ = os.RemoveAll(d)
	children.Lock()
	defer children.Unlock()
	delete(children.dirs, d)
}

// usage is what groupbench prints for -h, --help or any argument: it takes
// none, its knobs are environment variables.
const usage = `usage: groupbench (no arguments; --version prints the version)
Environment: BENCH_QUICK=1 (small sizes), BENCH_OUT=file.json, BENCH_ONLY=1,3
(some scenarios), BENCH_DEBUG=1, BENCH_CPUPROFILE=file; scenario 2's knobs:
BENCH_OVERHEAD_N, BENCH_OVERHEAD_WIX=http|memory, BENCH_OVERHEAD_SITE_CONCURRENCY,
BENCH_BLOCKPROFILE, BENCH_MUTEXPROFILE, BENCH_ALLOCPROFILE, BENCH_GOROUTINES,
BENCH_TIMELINE; BENCH_MANY_ARGS (flags for scenarios 8-10). See go doc ./cmd/groupbench.
`

// answerArgs answers groupbench's arguments: --version, help, or a
// mistake. stop says the run must not start (an argument is never the
// start of a ten-minute run); code is the exit status then.
func answerArgs(args []string, stdout, stderr io.Writer) (code int, stop bool) {
	if version.PrintIfAsked("groupbench", args, stdout) {
		return 0, true
	}
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0, true
	}
	fmt.Fprintf(stderr, "groupbench: unexpected argument %q\n%s", args[0], usage)
	return 2, true
}

func main() {
	if code, stop := answerArgs(os.Args[1:], os.Stdout, os.Stderr); stop {
		os.Exit(code)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "groupbench: %s: stopping children\n", s)
		killChildren()
		os.Exit(130)
	}()
	defer func() {
		if p := recover(); p != nil {
			killChildren()
			panic(p)
		}
	}()
	quick := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join("bench", "results.json")
		if quick { // never overwrite the full run's results
			out = filepath.Join("bench", "results-quick.json")
		}
	}
	var md strings.Builder
	res, err := run(quick, os.Getenv("BENCH_ONLY"), io.MultiWriter(os.Stdout, &md), os.Stderr)
	killChildren()
	if res != nil {
		if werr := writeJSON(out, res); werr != nil {
			fmt.Fprintln(os.Stderr, "groupbench:", werr)
			os.Exit(1)
		}
		mdPath := strings.TrimSuffix(out, ".json") + ".md"
		if werr := os.WriteFile(mdPath, []byte(md.String()), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "groupbench:", werr)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "groupbench: wrote %s and %s\n", out, mdPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "groupbench:", err)
		os.Exit(1)
	}
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// run runs the selected scenarios ("" = all) and prints the report.
func run(quick bool, only string, stdout, stderr io.Writer) (*Results, error) {
	start := time.Now()
	res := &Results{Machine: machine(), Quick: quick, Started: start.UTC(), Errors: map[string]string{}}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, a...)...)
	}
	want := func(n int) bool {
		if only == "" {
			return true
		}
		for _, f := range strings.Split(only, ",") {
			if strings.TrimSpace(f) == strconv.Itoa(n) {
				return true
			}
		}
		return false
	}
	logf("groupbench quick=%v on %d CPUs (%s), load %s", quick, res.Machine.NProc, res.Machine.CPUModel, res.Machine.LoadAvg)
	type step struct {
		n    int
		name string
		f    func() error
	}
	steps := []step{
		{1, "calls per job", func() (err error) { res.Calls, err = scenarioCalls(quick, logf); return }},
		{2, "processor overhead", func() (err error) { res.Overhead, err = scenarioOverhead(quick, logf); return }},
		{3, "rate-limit utilisation", func() (err error) { res.Util, err = scenarioUtil(quick, logf); return }},
		{4, "latency", func() (err error) { res.Latency, err = scenarioLatency(quick, logf); return }},
		{5, "memory", func() (err error) { res.Memory, err = scenarioMemory(quick, logf); return }},
		{6, "several sites", func() (err error) { res.Sites, err = scenarioSites(quick, logf); return }},
		{7, "fairness", func() (err error) { res.Fairness, err = scenarioFairness(quick, logf); return }},
		{8, "many sites", func() (err error) { res.ManySites, err = scenarioManySites(quick, logf); return }},
		{9, "many sites, one busy", func() (err error) { res.BusySite, err = scenarioBusySite(quick, logf); return }},
		{10, "cost per site", func() (err error) { res.Cost, err = scenarioCost(quick, res.ManySites, logf); return }},
	}
	var firstErr error
	for _, s := range steps {
		if !want(s.n) {
			continue
		}
		t0 := time.Now()
		logf("scenario %d: %s", s.n, s.name)
		if err := s.f(); err != nil {
			logf("scenario %d FAILED: %v", s.n, err)
			res.Errors[strconv.Itoa(s.n)] = err.Error()
			if firstErr == nil {
				firstErr = fmt.Errorf("scenario %d (%s): %w", s.n, s.name, err)
			}
		}
		logf("scenario %d done in %s", s.n, time.Since(t0).Round(100*time.Millisecond))
	}
	res.TookS = time.Since(start).Seconds()
	res.Machine.LoadAvgEnd = machine().LoadAvg
	res.Targets = append(targets(res), manyTargets(res)...)
	report(stdout, res)
	reportMany(stdout, res)
	return res, firstErr
}
