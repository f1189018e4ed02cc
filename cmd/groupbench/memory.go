package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"groupflow/internal/wix"
	"groupflow/messages"
)

// MemoryRow is scenario 5.
type MemoryRow struct {
	Job          string  `json:"job"`
	Broker       string  `json:"broker"`
	PeakRSSMiB   float64 `json:"peakRssMiB"`
	IdleRSSMiB   float64 `json:"idleRssMiB"`
	SampledMaxMi float64 `json:"sampledMaxRssMiB"`
	TookS        float64 `json:"tookSeconds"`
	WixCalls     int64   `json:"wixCalls"`
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func freePort() (int, error) {
	ln, err := listen()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// moduleRoot is the directory of go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(out))
	if p == "" || p == os.DevNull {
		return "", errors.New("not inside the groupflow module")
	}
	return filepath.Dir(p), nil
}

// child is a process started by the bench.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startChild(logFile, name string, env []string, args ...string) (*child, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	trackChild(cmd.Process)
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(c.done) }()
	return c, nil
}

// stop sends SIGTERM, then SIGKILL after 20 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	untrackChild(c.cmd.Process)
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// procStatus returns a /proc/<pid>/status field in KiB.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func waitHTTP(url string, c *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("%s exited", filepath.Base(c.cmd.Path))
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", url, timeout)
}

// scenarioMemory: the simulator and groupflow as separate processes (built
// from ./cmd); groupflow talks to the simulator as to a real site; peak RSS
// (VmHWM) of the groupflow process during a campaign and a roster.
func scenarioMemory(quick bool, logf func(string, ...any)) ([]MemoryRow, error) {
	m, n := 100000, 10000
	if quick {
		m, n = 10000, 2000
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("groupbench-mem-")
	if err != nil {
		return nil, err
	}
	defer removeTemp(dir)
	t0 := time.Now()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/wixsim", "./cmd/groupflow")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v: %s", err, out)
	}
	logf("  built wixsim and groupflow in %s", time.Since(t0).Round(100*time.Millisecond))

	simPort, err := freePort()
	if err != nil {
		return nil, err
	}
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	sim, err := startChild(filepath.Join(dir, "wixsim.log"), filepath.Join(dir, "wixsim"), nil,
		"--listen", fmt.Sprintf("127.0.0.1:%d", simPort), "--members", itoa(m), "--groups", "-1",
		"--rate-per-minute", "0", "--seed-demo=false", "--sites", benchSite)
	if err != nil {
		return nil, err
	}
	defer sim.stop()
	if err := waitHTTP(simURL+"/_sim/health", sim, 30*time.Second); err != nil {
		return nil, err
	}

	// Seed through the Wix REST API itself: list the members, create the
	// big group and add everyone to it (100 a call).
	const site = benchSite
	t0 = time.Now()
	cl := wix.New(wix.Config{BaseURL: simURL, RequestsPerMinute: 1e9, Burst: 1000})
	if err := cl.AddSite(site, wix.Credentials{APIKey: "bench"}); err != nil {
		return nil, err
	}
	ws, err := cl.Site(site)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	var ids, emails []string
	for page, err := range ws.MemberPages(ctx, wix.MembersQuery{Fieldsets: []string{wix.FieldsetFull}}) {
		if err != nil {
			return nil, fmt.Errorf("seed: list members: %w", err)
		}
		for _, mb := range page.Members {
			ids = append(ids, mb.ID)
			if mb.LoginEmail != "" {
				emails = append(emails, mb.LoginEmail)
			}
		}
	}
	if len(ids) < m || len(emails) < n {
		return nil, fmt.Errorf("seed: %d members, %d emails", len(ids), len(emails))
	}
	g, err := ws.CreateGroup(ctx, wix.Group{Name: "Big"}, ids[0])
	if err != nil {
		return nil, fmt.Errorf("seed: create group: %w", err)
	}
	chunks := wix.Chunk(ids[1:], wix.MaxMemberIDsPerAdd)
	work := make(chan []string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var seedErr error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if _, err := ws.AddGroupMembers(ctx, g.ID, c); err != nil {
					mu.Lock()
					seedErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	if seedErr != nil {
		return nil, fmt.Errorf("seed: add members: %w", seedErr)
	}
	logf("  seeded a %d-member group through the API in %s", len(ids), time.Since(t0).Round(100*time.Millisecond))

	people := make([]messages.Person, n)
	for i := range people {
		people[i] = messages.Person{Email: emails[i]}
	}
	jobs := []struct {
		name, cmdType string
		body          map[string]any
	}{
		{fmt.Sprintf("SendCampaign all, %d members", m), messages.CmdSendCampaign,
			map[string]any{"campaignId": "mem-campaign", "groupIds": []string{g.ID}}},
		{fmt.Sprintf("ProvisionGroup, %d-person roster", n), messages.CmdProvisionGroup,
			map[string]any{"people": people}},
	}
	natsServer := filepath.Join(root, "bin", "nats-server")
	var rows []MemoryRow
	for _, j := range jobs {
		for _, external := range []bool{false, true} {
			if external {
				if _, err := os.Stat(natsServer); err != nil || quick {
					continue // quick: embedded broker only
				}
			}
			row, err := memoryRun(dir, simURL, site, j.name, j.cmdType, j.body, external, natsServer)
			if err != nil {
				return rows, err
			}
			rows = append(rows, *row)
			logf("  %-36s %-22s peak RSS %6.1f MiB (idle %5.1f MiB), %d calls, %.1fs", row.Job, row.Broker, row.PeakRSSMiB, row.IdleRSSMiB, row.WixCalls, row.TookS)
		}
	}
	return rows, nil
}

var memRun int

// benchSite is the one site the memory bench's simulator serves.
const benchSite = "bench-site"

func memoryRun(dir, simURL, site, job, cmdType string, body map[string]any, external bool, natsServer string) (*MemoryRow, error) {
	memRun++
	run := filepath.Join(dir, fmt.Sprintf("run%d", memRun))
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--wix-base-url", simURL, "--data-dir", run, "--http-listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--wix-rate-per-minute", "1e9", "--log-level", "warn", "--log-format", "json"}
	broker := "embedded (in process)"
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	if external {
		broker = "external nats-server"
		conf := filepath.Join(dir, fmt.Sprintf("nats%d.conf", memRun))
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: \"127.0.0.1:%d\"\nmax_payload: 8MB\njetstream { store_dir: %q }\n",
			natsPort, filepath.Join(run, "ns"))), 0o600); err != nil {
			return nil, err
		}
		ns, err := startChild(filepath.Join(dir, fmt.Sprintf("nats%d.log", memRun)), natsServer, nil, "-c", conf)
		if err != nil {
			return nil, err
		}
		defer ns.stop()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", natsPort))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) || ns.exited() {
				return nil, fmt.Errorf("nats-server not listening")
			}
			time.Sleep(50 * time.Millisecond)
		}
		args = append(args, "--nats-url", natsURL, "--replicas", "1")
	} else {
		args = append(args, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort))
	}
	gf, err := startChild(filepath.Join(dir, fmt.Sprintf("groupflow%d.log", memRun)), filepath.Join(dir, "groupflow"),
		[]string{"WIX_API_KEY=bench", "WIX_SITE_ID=" + site, "GROUPFLOW_ADMIN_TOKEN="}, args...)
	if err != nil {
		return nil, err
	}
	defer gf.stop()
	if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort), gf, 60*time.Second); err != nil {
		return nil, fmt.Errorf("groupflow: %w (log %s)", err, tail(filepath.Join(dir, fmt.Sprintf("groupflow%d.log", memRun))))
	}
	pid := gf.cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	idle := procStatus(pid, "VmHWM")
	h := &harness{subj: messages.Subjects{}, waiters: map[string]chan completion{}}
	if err := h.connect(natsURL); err != nil {
		return nil, err
	}
	defer h.nc.Close()
	var maxRSS int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if v := procStatus(pid, "VmRSS"); v > maxRSS {
				maxRSS = v
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	b := map[string]any{}
	for k, v := range body {
		b[k] = v
	}
	if cmdType == messages.CmdProvisionGroup { // a new group each run
		b["group"] = map[string]any{"name": fmt.Sprintf("Roster %d", memRun)}
	}
	c, took, err := h.run(cmdType, fmt.Sprintf("mem-%d", memRun), b, 20*time.Minute)
	peak := procStatus(pid, "VmHWM")
	close(stop)
	<-sampled
	if err != nil {
		return nil, err
	}
	return &MemoryRow{Job: job, Broker: broker, PeakRSSMiB: float64(peak) / 1024, IdleRSSMiB: float64(idle) / 1024,
		SampledMaxMi: float64(maxRSS) / 1024, TookS: took.Seconds(), WixCalls: c.WixCalls()}, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}
