// Package chaos_test is groupflow's fault suite (issue 8): real processes on
// loopback — the groupflow processor, the Wix simulator (cmd/wixsim) and
// nats-server — killed, restarted and starved while commands flow, then the
// streams and the simulator are checked for anything lost or done twice.
//
// The short scenarios (processor killed, poison and garbage) run in `make
// test`; the long ones need the `chaos` build tag (`make chaos`).
package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/testutil"
)

// ---------------------------------------------------------------- binaries

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error

	liveMu sync.Mutex
	live   = map[*proc]bool{} // every child still running, killed by TestMain at the end
)

func TestMain(m *testing.M) {
	code := m.Run()
	liveMu.Lock()
	var left []*proc
	for p := range live {
		left = append(left, p)
	}
	liveMu.Unlock()
	for _, p := range left {
		p.kill()
	}
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// repoRoot is the module root (testutil.ModuleRoot); without a go.mod above,
// the parent of chaos/.
func repoRoot() string {
	if root, err := testutil.ModuleRoot(); err == nil {
		return root
	}
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// binaries builds cmd/groupflow and cmd/wixsim once per test binary.
func binaries(t testing.TB) (groupflow, wixsim string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "groupflow-chaos-bin-")
		if buildErr != nil {
			return
		}
		// go test puts its own GOROOT/bin first on the test's PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("find the go command: %w", err)
			return
		}
		cmd := exec.Command(goBin, "build", "-o", buildDir+string(os.PathSeparator), "./cmd/groupflow", "./cmd/wixsim")
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "groupflow"), filepath.Join(buildDir, "wixsim")
}

// ---------------------------------------------------------------- child processes

// proc is a child process that can be killed and started again with the
// same arguments.
type proc struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	starts  int
	exitErr error
	killed  bool // the last exit was ours
}

func newProc(t testing.TB, dir, name, bin string, args, env []string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("CHAOS_LOGS") != "" {
			p.dumpLog(120)
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.starts++
	fmt.Fprintf(lf, "\n===== start #%d %s %s\n", p.starts, time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The child dies with the test binary even if it is killed itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.killed = cmd, done, false
	liveMu.Lock()
	live[p] = true
	liveMu.Unlock()
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		liveMu.Lock()
		delete(live, p)
		liveMu.Unlock()
		close(done)
	}()
}

// startBound starts the process and waits until ready reports true. When
// the process exits at start because a port it was given was taken
// meanwhile (its log since this start says so), it returns an error
// wrapping testutil.ErrAddrInUse, for testutil.WithPorts to retry on new
// ports; any other failure is fatal.
func (p *proc) startBound(timeout time.Duration, ready func() bool) error {
	p.t.Helper()
	from := int64(0)
	if st, err := os.Stat(p.logPath); err == nil {
		from = st.Size()
	}
	p.start()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	output := func() string {
		b, _ := os.ReadFile(p.logPath)
		if int64(len(b)) < from {
			return ""
		}
		return string(b[from:])
	}
	err := testutil.AwaitStart(p.name, timeout, done, output, ready)
	if err != nil && !errors.Is(err, testutil.ErrAddrInUse) {
		p.dumpLog(60)
		p.t.Fatal(err)
	}
	return err
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// crashed reports an exit we did not cause.
func (p *proc) crashed() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return !p.killed, p.exitErr
	default:
		return false, nil
	}
}

// signal sends sig and waits up to wait for the exit; then SIGKILL.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil || done == nil {
		p.mu.Unlock()
		return
	}
	select {
	case <-done:
		p.mu.Unlock()
		return
	default:
	}
	p.killed = true
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	_ = cmd.Process.Kill()
	<-done
}

// kill is kill -9, waiting for the exit.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) dumpLog(n int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if keep := os.Getenv("CHAOS_KEEP_LOGS"); keep != "" {
		_ = os.MkdirAll(keep, 0o755)
		_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("%s-%s.log", strings.ReplaceAll(p.t.Name(), "/", "_"), p.name)), b, 0o644)
	}
	p.t.Logf("---- last %d lines of %s (%s):\n%s", len(lines), p.name, p.logPath, strings.Join(lines, "\n"))
}

// logCount counts log lines containing s.
func (p *proc) logCount(s string) int {
	f, err := os.Open(p.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// waitFor polls cond every interval until it is true or timeout passes.
func waitFor(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func httpOK(url string) bool {
	res, err := httpc.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// ---------------------------------------------------------------- the Wix simulator

const chaosSite = "chaos-site"

type wixSim struct {
	*proc
	url string
}

type simOpts struct {
	members, groups int
	ratePerMinute   float64
}

func startWixSim(t testing.TB, dir string, o simOpts) *wixSim {
	t.Helper()
	_, bin := binaries(t)
	var s *wixSim
	testutil.WithPorts(t, 1, func(ports []int) error {
		args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--members", fmt.Sprint(o.members),
			"--groups", fmt.Sprint(o.groups), "--rate-per-minute", fmt.Sprint(o.ratePerMinute), "--seed-demo=false", "--seed", "8", "--sites", chaosSite}
		s = &wixSim{proc: newProc(t, dir, "wixsim", bin, args, nil), url: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
		return s.startBound(60*time.Second, func() bool { return httpOK(s.url + "/_sim/health") })
	})
	return s
}

func (s *wixSim) do(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Authorization", "chaos-key")
	req.Header.Set("wix-site-id", chaosSite)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("wixsim %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("wixsim %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("wixsim %s %s: %v: %s", method, path, err, b)
		}
	}
}

type simMember struct {
	ID         string `json:"id"`
	ContactID  string `json:"contactId"`
	LoginEmail string `json:"loginEmail"`
}

// members lists the site's members (FULL fieldset), through the API.
func (s *wixSim) members(t testing.TB) []simMember {
	var all []simMember
	for off := 0; ; off += 100 {
		var page struct {
			Members []simMember `json:"members"`
		}
		s.do(t, "GET", fmt.Sprintf("/members/v1/members?paging.limit=100&paging.offset=%d&fieldsets=FULL", off), nil, &page)
		all = append(all, page.Members...)
		if len(page.Members) < 100 {
			return all
		}
	}
}

type simGroup struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MembersCount int    `json:"membersCount"`
}

// groups is the control endpoint's group summary (not rate limited, not counted).
func (s *wixSim) groups(t testing.TB) []simGroup {
	var out struct {
		Groups []simGroup `json:"groups"`
	}
	s.do(t, "GET", "/_sim/sites/"+chaosSite+"/groups", nil, &out)
	return out.Groups
}

// groupOwner returns a group's owner id through the Groups API.
func (s *wixSim) groupOwner(t testing.TB, id string) string {
	var out struct {
		Group struct {
			OwnerID string `json:"ownerId"`
		} `json:"group"`
	}
	s.do(t, "GET", "/social-groups-proxy/groups/v2/groups/"+id, nil, &out)
	return out.Group.OwnerID
}

type simCalls struct {
	Total     int64 `json:"total"`
	Throttled int64 `json:"throttled"`
}

func (s *wixSim) calls(t testing.TB) simCalls {
	var c simCalls
	s.do(t, "GET", "/_sim/calls?site="+chaosSite, nil, &c)
	return c
}

func (s *wixSim) setFaults(t testing.TB, f map[string]any) {
	s.do(t, "PUT", "/_sim/faults", f, nil)
}

func (s *wixSim) clearFaults(t testing.TB) { s.do(t, "DELETE", "/_sim/faults", nil, nil) }

// ---------------------------------------------------------------- nats-server

type natsNode struct {
	*proc
	port int
	url  string
}

// startNATS runs a single JetStream nats-server with a file store in storeDir.
func startNATS(t testing.TB, dir, name, storeDir string) *natsNode {
	t.Helper()
	bin := testutil.NATSServerBin(t)
	var n *natsNode
	testutil.WithPorts(t, 1, func(ports []int) error {
		port := ports[0]
		args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", storeDir, "-n", name}
		n = &natsNode{proc: newProc(t, dir, name, bin, args, nil), port: port, url: fmt.Sprintf("nats://127.0.0.1:%d", port)}
		return n.startBound(60*time.Second, func() bool { return testutil.Dialable(fmt.Sprintf("127.0.0.1:%d", port)) })
	})
	return n
}

func (n *natsNode) awaitUp(t testing.TB, d time.Duration) {
	t.Helper()
	if !waitFor(d, 50*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}) {
		t.Fatalf("%s not listening after %s", n.name, d)
	}
}

// startCluster writes three configs (loopback client and route ports) and
// starts a 3-node JetStream cluster.
func startCluster(t testing.TB, dir string) []*natsNode {
	t.Helper()
	bin := testutil.NATSServerBin(t)
	var nodes []*natsNode
	// Client and route port of each node; a bind race lost to another
	// process restarts all three nodes on new ports.
	testutil.WithPorts(t, 6, func(ports []int) error {
		nodes = nil
		cports, rports := ports[:3], ports[3:]
		var routes []string
		for i := range 3 {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", rports[i]))
		}
		for i := range 3 {
			n, err := startClusterNode(t, dir, bin, i, cports[i], rports[i], routes)
			if err != nil {
				for _, n := range nodes {
					n.kill()
				}
				return err
			}
			nodes = append(nodes, n)
		}
		return nil
	})
	awaitJetStream(t, nodes[0].url+","+nodes[1].url+","+nodes[2].url)
	return nodes
}

// startClusterNode writes node i's config and starts it, waiting until it
// accepts client connections (the cluster forms once all three run).
func startClusterNode(t testing.TB, dir, bin string, i, cport, rport int, routes []string) (*natsNode, error) {
	name := fmt.Sprintf("n%d", i+1)
	conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: chaos
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, cport, filepath.Join(dir, name+"-store"), rport, strings.Join(routes, ", "))
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &natsNode{proc: newProc(t, dir, name, bin, []string{"-c", path}, nil), port: cport,
		url: fmt.Sprintf("nats://127.0.0.1:%d", cport)}
	return n, n.startBound(60*time.Second, func() bool { return testutil.Dialable(fmt.Sprintf("127.0.0.1:%d", cport)) })
}

// awaitJetStream waits until JetStream answers (a cluster has elected its
// meta leader).
func awaitJetStream(t testing.TB, url string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if !waitFor(90*time.Second, 250*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	}) {
		t.Fatal("JetStream not available after 90s")
	}
}

// ---------------------------------------------------------------- groupflow

type groupflow struct {
	*proc
	httpURL string
	natsURL string // where tests connect (the embedded server's listener, or the external URL)
}

type gfOpts struct {
	natsURL     string // empty: embedded broker in dataDir
	dataDir     string
	replicas    int
	concurrency int
	ackWait     time.Duration
	maxDeliver  int
	ratePerMin  float64
	// maxPayloadMB sets the embedded broker's payload limit.
	maxPayloadMB int
	// env is added to (and overrides) the processor's environment.
	env []string
}

func newGroupflow(t testing.TB, dir string, sim *wixSim, o gfOpts) *groupflow {
	t.Helper()
	bin, _ := binaries(t)
	// Ports are picked again by the first startReady (see setPorts).
	ports := testutil.FreePorts(t, 2)
	args := []string{"--http-listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--wix-base-url", sim.url,
		"--log-level", "info", "--shutdown-grace", "5s"}
	g := &groupflow{httpURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	if o.natsURL == "" {
		if o.dataDir == "" {
			o.dataDir = filepath.Join(dir, "groupflow-data")
		}
		args = append(args, "--data-dir", o.dataDir, "--nats-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]))
		g.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", ports[1])
	} else {
		args = append(args, "--nats-url", o.natsURL)
		g.natsURL = o.natsURL
	}
	if o.replicas > 0 {
		args = append(args, "--replicas", fmt.Sprint(o.replicas))
	}
	if o.concurrency > 0 {
		args = append(args, "--concurrency", fmt.Sprint(o.concurrency))
	}
	if o.ackWait > 0 {
		args = append(args, "--ack-wait", o.ackWait.String())
	}
	if o.maxDeliver > 0 {
		args = append(args, "--max-deliver", fmt.Sprint(o.maxDeliver))
	}
	if o.ratePerMin > 0 {
		args = append(args, "--wix-rate-per-minute", fmt.Sprint(o.ratePerMin))
	}
	if o.maxPayloadMB > 0 {
		args = append(args, "--max-payload-mb", fmt.Sprint(o.maxPayloadMB))
	}
	env := append([]string{"WIX_API_KEY=chaos-key", "WIX_SITE_ID=" + chaosSite}, o.env...)
	g.proc = newProc(t, dir, "groupflow", bin, args, env)
	return g
}

// startReady starts the processor and waits for /readyz. Its first start
// takes new ports through testutil.WithPorts (a bind race lost to another
// process retries on others); a restart after a kill keeps them, as the
// tests' clients expect.
func (g *groupflow) startReady(t testing.TB) {
	t.Helper()
	ready := func() bool { return httpOK(g.httpURL + "/readyz") }
	g.mu.Lock()
	first := g.starts == 0
	g.mu.Unlock()
	if !first {
		if err := g.startBound(90*time.Second, ready); err != nil {
			t.Fatal(err)
		}
		return
	}
	testutil.WithPorts(t, 2, func(ports []int) error {
		g.setPorts(ports[0], ports[1])
		return g.startBound(90*time.Second, ready)
	})
}

// setPorts points the admin HTTP, and the embedded broker if there is one,
// at the given loopback ports.
func (g *groupflow) setPorts(httpPort, natsPort int) {
	for i := 0; i+1 < len(g.args); i++ {
		switch g.args[i] {
		case "--http-listen":
			g.args[i+1] = fmt.Sprintf("127.0.0.1:%d", httpPort)
			g.httpURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		case "--nats-listen":
			g.args[i+1] = fmt.Sprintf("127.0.0.1:%d", natsPort)
			g.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
		}
	}
}

// ---------------------------------------------------------------- NATS client side

func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return testutil.JetStream(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Name("chaos-test"), nats.NoCallbacksAfterClientClose())
}

// publish publishes a command, retrying (with the same Nats-Msg-Id, so the
// commands stream stores it once) until the broker acks it or ctx ends.
func publish(ctx context.Context, js jetstream.JetStream, subject, msgID string, body []byte) error {
	for {
		m := nats.NewMsg(subject)
		m.Data = body
		if msgID != "" {
			m.Header.Set(nats.MsgIdHdr, msgID)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s %s: %w (last error %v)", subject, msgID, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type smsg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

// readStream returns every message of stream on subjects matching filter.
func readStream(t testing.TB, js jetstream.JetStream, stream, filter string) []smsg {
	t.Helper()
	var out []smsg
	var lastErr error
	ok := waitFor(90*time.Second, 500*time.Millisecond, func() bool {
		out, lastErr = tryReadStream(js, stream, filter)
		return lastErr == nil
	})
	if !ok {
		t.Fatalf("read %s %s: %v", stream, filter, lastErr)
	}
	return out
}

func tryReadStream(js jetstream.JetStream, stream, filter string) ([]smsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	out := make([]smsg, 0, total)
	for uint64(len(out)) < total {
		batch, err := c.Fetch(int(min(500, total-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			out = append(out, smsg{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("stalled at %d of %d", len(out), total)
		}
	}
	return out, nil
}

// streamCount is the number of messages of stream on subjects matching filter.
func streamCount(js jetstream.JetStream, stream, filter string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	return total, nil
}

// ---------------------------------------------------------------- figures

// figures are what each scenario reports.
type figures struct {
	scenario   string
	commands   int
	garbage    int
	kills      int
	restarts   int
	faults     string
	completed  int
	deadLetter int
	lost       int
	duplicated int
	extra      string
	took       time.Duration
}

func (f figures) String() string {
	s := fmt.Sprintf("CHAOS %-22s commands=%d", f.scenario, f.commands)
	if f.garbage > 0 {
		s += fmt.Sprintf(" garbage=%d", f.garbage)
	}
	s += fmt.Sprintf(" kills=%d restarts=%d faults=[%s] completed=%d dead-lettered=%d lost=%d duplicated=%d",
		f.kills, f.restarts, f.faults, f.completed, f.deadLetter, f.lost, f.duplicated)
	if f.extra != "" {
		s += " " + f.extra
	}
	return s + fmt.Sprintf(" took=%s", f.took.Round(100*time.Millisecond))
}

// report logs the figures, prints the summary line on stdout and fails on
// any loss or duplicate.
func report(t testing.TB, f figures) {
	t.Helper()
	t.Logf("figures: %s", f)
	fmt.Println(f.String())
	if f.lost > 0 || f.duplicated > 0 {
		t.Errorf("%s: %d lost, %d duplicated", f.scenario, f.lost, f.duplicated)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// metrics scrapes a Prometheus text endpoint into name{labels} -> value.
func metrics(url string) map[string]float64 {
	res, err := httpc.Get(url)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sumMetric adds the values of a metric whose labels contain every one of labels.
func sumMetric(m map[string]float64, name string, labels ...string) float64 {
	var s float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(k, l) {
				ok = false
				break
			}
		}
		if ok {
			s += v
		}
	}
	return s
}
