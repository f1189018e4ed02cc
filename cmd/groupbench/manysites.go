package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"groupflow/internal/ratelimit"
	"groupflow/messages"
)

// Scenarios 8–10 (issue 15): many sites at Wix's real limit, one groupflow
// process with default flags, the simulator in its own process.

// manyLimitPerMin is every site's limit in scenarios 8–10: Wix's.
const manyLimitPerMin = 200

// ManySiteRow is one site of scenario 8 or 9.
type ManySiteRow struct {
	Site        string  `json:"site"`
	Commands    int     `json:"commands"`
	Calls       int64   `json:"calls"`
	Throttled   int64   `json:"throttled429"`
	FirstS      float64 `json:"firstCallSeconds"`
	SpanS       float64 `json:"spanSeconds"`
	Utilisation float64 `json:"utilisation"`
}

// ManySitesRun is one run of scenario 8 or 9.
type ManySitesRun struct {
	Sites           int     `json:"sites"`
	CommandsPerSite int     `json:"commandsPerSite"`
	CallsPerCommand float64 `json:"callsPerCommand"`
	LimitPerMin     float64 `json:"limitPerMinute"`
	Flags           string  `json:"groupflowFlags"`
	PublishS        float64 `json:"publishSeconds"`
	// ElapsedS is the window from the first call the simulator accepted to
	// the last (all sites, the busy one excluded in scenario 9).
	ElapsedS  float64 `json:"elapsedSeconds"`
	Calls     int64   `json:"calls"`
	Throttled int64   `json:"throttled429"`
	// Aggregate = Σ calls ÷ (Σ limits × ElapsedS).
	Aggregate  float64 `json:"aggregateUtilisation"`
	MinSite    float64 `json:"minSiteUtilisation"`
	MinSiteID  string  `json:"minSite"`
	MedianSite float64 `json:"medianSiteUtilisation"`
	// RunS is the measured run: from the first publish until every command
	// (the busy site's: until its window) is done.
	RunS       float64 `json:"runSeconds"`
	PeakRSSMiB float64 `json:"groupflowPeakRssMiB"`
	IdleRSSMiB float64 `json:"groupflowIdleRssMiB"`
	// GroupflowCPUS is the CPU time of the groupflow process during the run.
	GroupflowCPUS float64 `json:"groupflowCpuSeconds"`
	// RateKVWrites counts the writes to the shared rate-limit bucket during
	// the run (its stream's sequence).
	RateKVWrites uint64        `json:"rateKvWrites"`
	CPU          CPUUse        `json:"cpu"`
	Busy         *ManySiteRow  `json:"busySite,omitempty"`
	BusyQueued   int           `json:"busySiteQueued,omitempty"`
	BusyWindowS  float64       `json:"busySiteWindowSeconds,omitempty"`
	Rows         []ManySiteRow `json:"perSite"`
}

// manyEnv is a wixsim process and a groupflow process serving n sites.
type manyEnv struct {
	dir, simURL string
	sites       []string
	sim, gf     *child
	h           *harness
	flags       []string
}

// manyBinDir holds wixsim and groupflow built once per bench run.
var manyBin struct {
	once sync.Once
	dir  string
	err  error
}

func manyBinaries(logf func(string, ...any)) (string, error) {
	manyBin.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			manyBin.err = err
			return
		}
		if manyBin.dir, err = tempDir("groupbench-bin-"); err != nil {
			manyBin.err = err
			return
		}
		t0 := time.Now()
		build := exec.Command("go", "build", "-o", manyBin.dir+string(filepath.Separator), "./cmd/wixsim", "./cmd/groupflow")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			manyBin.err = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		logf("  built wixsim and groupflow in %s", time.Since(t0).Round(100*time.Millisecond))
	})
	return manyBin.dir, manyBin.err
}

func manySiteID(i int) string { return fmt.Sprintf("site-%04d", i) }

// startMany starts the simulator (n sites at 200/min) and groupflow (a
// sites file of the n sites, default flags otherwise).
func startMany(n int, logf func(string, ...any)) (*manyEnv, error) {
	bin, err := manyBinaries(logf)
	if err != nil {
		return nil, err
	}
	e := &manyEnv{}
	if e.dir, err = tempDir("groupbench-many-"); err != nil {
		return nil, err
	}
	var yaml strings.Builder
	yaml.WriteString("sites:\n")
	for i := range n {
		e.sites = append(e.sites, manySiteID(i))
		fmt.Fprintf(&yaml, "  - siteId: %s\n    apiKeyEnv: BENCH_KEY\n    ratePerMinute: %d\n", e.sites[i], manyLimitPerMin)
	}
	sitesFile := filepath.Join(e.dir, "sites.yaml")
	if err := os.WriteFile(sitesFile, []byte(yaml.String()), 0o600); err != nil {
		return nil, err
	}
	simPort, err := freePort()
	if err != nil {
		return nil, err
	}
	e.simURL = fmt.Sprintf("http://127.0.0.1:%d", simPort)
	// The site list goes through the environment (WIXSIM_SITES): 1,000+
	// ids make a long command line.
	e.sim, err = startChild(filepath.Join(e.dir, "wixsim.log"), filepath.Join(bin, "wixsim"),
		[]string{"WIXSIM_SITES=" + strings.Join(e.sites, ",")},
		"--listen", fmt.Sprintf("127.0.0.1:%d", simPort), "--members", "-1", "--groups", "-1",
		"--rate-per-minute", itoa(manyLimitPerMin), "--seed-demo=false")
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(e.simURL+"/_sim/health", e.sim, 60*time.Second); err != nil {
		e.close()
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		e.close()
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		e.close()
		return nil, err
	}
	// Default flags but for where things are; the startup preflight (reads
	// of every site's endpoints) is off so that the run measures commands.
	e.flags = []string{"--wix-sites-file", sitesFile, "--wix-base-url", e.simURL, "--wix-preflight=false"}
	// BENCH_MANY_ARGS adds groupflow flags, for comparisons (the targets
	// are for the default flags).
	e.flags = append(e.flags, strings.Fields(os.Getenv("BENCH_MANY_ARGS"))...)
	args := append([]string{"--data-dir", filepath.Join(e.dir, "data"), "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--http-listen", fmt.Sprintf("127.0.0.1:%d", httpPort), "--log-level", "warn"}, e.flags...)
	e.gf, err = startChild(filepath.Join(e.dir, "groupflow.log"), filepath.Join(bin, "groupflow"), []string{"BENCH_KEY=bench"}, args...)
	if err != nil {
		e.close()
		return nil, err
	}
	if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort), e.gf, 120*time.Second); err != nil {
		e.close()
		return nil, err
	}
	e.h = &harness{subj: messages.Subjects{Prefix: "groups"}, waiters: map[string]chan completion{}}
	if err := e.h.connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort)); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *manyEnv) close() {
	if e.h != nil {
		e.h.Close()
	}
	if e.gf != nil {
		e.gf.stop()
	}
	if e.sim != nil {
		e.sim.stop()
	}
	if e.dir != "" {
		removeTemp(e.dir)
	}
}

// rateKVSeq is the last sequence of the shared rate-limit bucket's stream.
func (e *manyEnv) rateKVSeq() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.h.js.Stream(ctx, "KV_"+ratelimit.DefaultBucket)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

// procCPU is the CPU time of a process, in seconds.
func procCPU(pid int) float64 { return float64(statTicks(fmt.Sprintf("/proc/%d/stat", pid))) / 100 }

// publishMany publishes per site the given number of two-call
// provision_group commands (a new group, nobody to add), round-robin over
// the sites so that every site has work from the start; first, when busy
// is set, the busy site's whole backlog (the worst case: it is ahead of
// everyone in the stream).
func (e *manyEnv) publishMany(run string, perSite int, busy string, busyN int) ([]*pending, error) {
	var ps []*pending
	send := func(site string, k int) error {
		p, err := e.h.send(messages.CmdProvisionGroup, fmt.Sprintf("%s-%s-%d", run, site, k),
			map[string]any{"siteId": site, "group": map[string]any{"name": fmt.Sprintf("%s %s %d", run, site, k)}})
		if err != nil {
			return err
		}
		ps = append(ps, p)
		if len(ps)%2000 == 0 {
			return e.h.flushAsync()
		}
		return nil
	}
	for k := range busyN {
		if err := send(busy, k); err != nil {
			return nil, err
		}
	}
	for k := range perSite {
		for _, s := range e.sites {
			if s == busy {
				continue
			}
			if err := send(s, k); err != nil {
				return nil, err
			}
		}
	}
	return ps, e.h.flushAsync()
}

// simRequest is one request the simulator logged.
type simRequest struct {
	Time   time.Time `json:"time"`
	Status int       `json:"status"`
}

// siteCalls returns the times of the calls the simulator accepted for a
// site (oldest first, at most its log of 1,000) and the 429s.
func (e *manyEnv) siteCalls(site string) ([]time.Time, int64, error) {
	resp, err := http.Get(e.simURL + "/_sim/requests?n=1000&site=" + site)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Requests []simRequest `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, 0, fmt.Errorf("site %s requests: %w", site, err)
	}
	var ok []time.Time
	var throttled int64
	for _, r := range v.Requests {
		switch {
		case r.Status == http.StatusTooManyRequests:
			throttled++
		case r.Status >= 200 && r.Status < 300:
			ok = append(ok, r.Time)
		}
	}
	return ok, throttled, nil
}

// siteRow measures a site from its accepted calls: utilisation = calls ÷
// (limit × span between its first and last call).
func siteRow(site string, calls []time.Time, throttled int64, t0 time.Time) ManySiteRow {
	r := ManySiteRow{Site: site, Calls: int64(len(calls)), Throttled: throttled}
	if len(calls) > 1 {
		r.FirstS = calls[0].Sub(t0).Seconds()
		r.SpanS = calls[len(calls)-1].Sub(calls[0]).Seconds()
		r.Utilisation = float64(len(calls)) / (manyLimitPerMin / 60.0 * r.SpanS)
	}
	return r
}

// rssSampler tracks a process's resident set.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	max  int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			s.max = max(s.max, procStatus(pid, "VmRSS"))
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

// Stop returns the peak RSS in MiB: the kernel's high-water mark.
func (s *rssSampler) Stop() float64 {
	close(s.stop)
	<-s.done
	return float64(max(s.max, procStatus(s.pid, "VmHWM"))) / 1024
}

// manySizes are the sizes of scenarios 8–10.
func manySizes(quick bool) (sites, perSite, busyN int, window time.Duration) {
	if quick {
		return 100, 10, 300, 20 * time.Second
	}
	return 1000, 20, 2000, 60 * time.Second
}

// scenarioManySites (8): n sites × 20 commands published up front.
func scenarioManySites(quick bool, logf func(string, ...any)) (*ManySitesRun, error) {
	n, perSite, _, _ := manySizes(quick)
	return manyRun(n, perSite, 0, 0, logf)
}

// scenarioBusySite (9): the same with one site holding a long backlog,
// published ahead of everyone else's, measured over a fixed window.
func scenarioBusySite(quick bool, logf func(string, ...any)) (*ManySitesRun, error) {
	n, perSite, busyN, window := manySizes(quick)
	return manyRun(n, perSite, busyN, window, logf)
}

// manyRun runs scenario 8 (busyN 0) or 9.
func manyRun(n, perSite, busyN int, window time.Duration, logf func(string, ...any)) (*ManySitesRun, error) {
	e, err := startMany(n, logf)
	if err != nil {
		return nil, err
	}
	defer e.close()
	pid := e.gf.cmd.Process.Pid
	flags := strings.Join(append([]string{"--wix-sites-file SITES.yaml --wix-base-url SIMULATOR"}, e.flags[4:]...), " ")
	res := &ManySitesRun{Sites: n, CommandsPerSite: perSite, LimitPerMin: manyLimitPerMin,
		Flags: flags, IdleRSSMiB: float64(procStatus(pid, "VmRSS")) / 1024}
	busy := ""
	if busyN > 0 {
		busy, res.BusyQueued, res.BusyWindowS = e.sites[0], busyN, window.Seconds()
	}
	logf("  %d sites × %d commands (busy site: %d), groupflow idle RSS %.0f MiB", n, perSite, busyN, res.IdleRSSMiB)
	rss := sampleRSS(pid)
	cpu, cpu0, kv0 := startCPU(), procCPU(pid), e.rateKVSeq()
	t0 := time.Now()
	ps, err := e.publishMany(fmt.Sprintf("m%d", busyN), perSite, busy, busyN)
	if err != nil {
		rss.Stop()
		return nil, err
	}
	res.PublishS = time.Since(t0).Seconds()
	var others []*pending
	for _, p := range ps {
		if p.Site != busy {
			others = append(others, p)
		}
	}
	err = waitAll(others, 10*time.Minute)
	if err == nil && busyN > 0 {
		// The busy site's window starts at its first call.
		time.Sleep(time.Until(t0.Add(window + 5*time.Second)))
	}
	res.RunS = time.Since(t0).Seconds()
	res.GroupflowCPUS = procCPU(pid) - cpu0
	res.RateKVWrites = e.rateKVSeq() - kv0
	res.CPU = cpu.Stop()
	res.PeakRSSMiB = rss.Stop()
	if err != nil {
		return res, err
	}
	if err := res.collect(e, t0, busy, window); err != nil {
		return res, err
	}
	for _, p := range others {
		res.CallsPerCommand += float64(p.Done.WixCalls()) / float64(len(others))
	}
	res.log(logf)
	return res, nil
}

// collect reads every site's calls from the simulator and computes the
// figures.
func (r *ManySitesRun) collect(e *manyEnv, t0 time.Time, busy string, window time.Duration) error {
	var first, last time.Time
	var utils []float64
	r.MinSite = 1e9
	for _, s := range e.sites {
		calls, throttled, err := e.siteCalls(s)
		if err != nil {
			return err
		}
		r.Throttled += throttled
		if s == busy {
			row := siteRow(s, calls, throttled, t0)
			if len(calls) > 0 {
				end := calls[0].Add(window)
				in := 0
				for _, c := range calls {
					if !c.After(end) {
						in++
					}
				}
				row.Calls, row.SpanS = int64(in), window.Seconds()
				row.Utilisation = float64(in) / (manyLimitPerMin / 60.0 * window.Seconds())
			}
			r.Busy = &row
			continue
		}
		row := siteRow(s, calls, throttled, t0)
		row.Commands = r.CommandsPerSite
		r.Rows = append(r.Rows, row)
		r.Calls += row.Calls
		utils = append(utils, row.Utilisation)
		if row.Utilisation < r.MinSite {
			r.MinSite, r.MinSiteID = row.Utilisation, s
		}
		if len(calls) > 0 {
			if first.IsZero() || calls[0].Before(first) {
				first = calls[0]
			}
			if calls[len(calls)-1].After(last) {
				last = calls[len(calls)-1]
			}
		}
	}
	slices.Sort(utils)
	if len(utils) > 0 {
		r.MedianSite = utils[len(utils)/2]
	}
	r.ElapsedS = last.Sub(first).Seconds()
	if r.ElapsedS > 0 {
		r.Aggregate = float64(r.Calls) / (float64(len(r.Rows)) * manyLimitPerMin / 60.0 * r.ElapsedS)
	}
	return nil
}

func (r *ManySitesRun) log(logf func(string, ...any)) {
	logf("  %d sites: %d calls in %.1fs (published in %.1fs): aggregate %.3f, sites min %.3f (%s) median %.3f, %d 429s; groupflow peak RSS %.0f MiB, %.1f CPU-s; rate KV writes %d",
		len(r.Rows), r.Calls, r.ElapsedS, r.PublishS, r.Aggregate, r.MinSite, r.MinSiteID, r.MedianSite, r.Throttled, r.PeakRSSMiB, r.GroupflowCPUS, r.RateKVWrites)
	if r.Busy != nil {
		logf("  busy site %s (%d queued): %d calls in its first %.0fs = %.3f of its limit", r.Busy.Site, r.BusyQueued, r.Busy.Calls, r.BusyWindowS, r.Busy.Utilisation)
	}
}
