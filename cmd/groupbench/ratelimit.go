package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// cmdSpec is a command to publish.
type cmdSpec struct {
	Type, ID string
	Body     map[string]any
}

// mixedCycle returns one cycle of mixed commands on a seeded simulator site:
// a 100-person roster (new group), a campaign over the largest group, a
// report, rules to 10 groups and questions on 5 groups.
func mixedCycle(st *wixsim.Site, site, prefix string, k int) []cmdSpec {
	groups := st.Groups()
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].MembersCount > groups[j].MembersCount })
	var emails []string
	for _, m := range st.Members() {
		if m.LoginEmail != "" {
			emails = append(emails, m.LoginEmail)
		}
	}
	people := make([]messages.Person, 100)
	for i := range people {
		people[i] = messages.Person{Email: emails[(k*100+i)%len(emails)]}
	}
	ids := func(gs []wixsim.Group) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	id := func(kind string) string { return fmt.Sprintf("%s-%s-%d", prefix, kind, k) }
	// The rules source needs rules: an empty source is refused without
	// allowEmpty (it would clear the targets).
	if len(st.Rules(groups[1].ID)) == 0 {
		st.SetRules(groups[1].ID, []wixsim.Rule{{Title: "Be kind", Description: "Always."}, {Title: "No spam"}})
	}
	return []cmdSpec{
		{messages.CmdSendCampaign, id("camp"), map[string]any{"siteId": site, "campaignId": id("camp"), "groupIds": []string{groups[0].ID}}},
		{messages.CmdProvisionGroup, id("prov"), map[string]any{"siteId": site, "group": map[string]any{"name": id("prov")}, "people": people}},
		{messages.CmdGenerateReport, id("report"), map[string]any{"siteId": site}},
		{messages.CmdPropagateRules, id("rules"), map[string]any{"siteId": site, "sourceGroupId": groups[1].ID,
			"targets": map[string]any{"groupIds": ids(groups[2:12])}}},
		{messages.CmdSetMembershipQuestions, id("questions"), map[string]any{"siteId": site, "groupIds": ids(groups[12:17]),
			"questions": []messages.Question{{Text: fmt.Sprintf("Why join (%d)?", k)}}}},
	}
}

// UtilResult is scenario 3.
type UtilResult struct {
	LimitPerS     float64 `json:"limitPerSecond"`
	SimBurst      int     `json:"simulatorBurst"`
	ClientPerS    float64 `json:"clientPerSecond"`
	Concurrency   int     `json:"concurrency"`
	Commands      int     `json:"commands"`
	Calls         int64   `json:"calls"`
	TotalS        float64 `json:"totalSeconds"`
	WindowFromS   float64 `json:"windowFromSeconds"`
	WindowToS     float64 `json:"windowToSeconds"`
	AchievedPerS  float64 `json:"achievedPerSecond"`
	Utilisation   float64 `json:"utilisation"`
	Throttled     int64   `json:"throttled429"`
	ThrottledWarm int64   `json:"throttled429AfterWarmup"`
	WarmupS       float64 `json:"warmupSeconds"`
	CPU           CPUUse  `json:"cpu"`
}

const warmup = time.Second

// scenarioUtil: the simulator limits at 200 requests per second (Wix's 200
// a minute, 60× faster; burst 200 = one minute of Wix budget scaled) and
// the client is configured with the same limit; a backlog of mixed commands.
func scenarioUtil(quick bool, logf func(string, ...any)) (*UtilResult, error) {
	const perMin = 12000
	h, err := startApp(appOpts{Args: []string{"--wix-sim-rate-per-minute", itoa(perMin), "--wix-rate-per-minute", itoa(perMin),
		"--wix-sim-members", "1200", "--wix-sim-groups", "20"}})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	sim := h.app.Sim
	sim.SetRateLimit(perMin, perMin/60)
	const site = "util"
	st := sim.Site(site)
	cycles := 80
	if quick {
		cycles = 18
	}
	var cmds []cmdSpec
	for k := range cycles {
		cmds = append(cmds, mixedCycle(st, site, "util", k)...)
	}
	sim.ResetCalls()
	cpu := startCPU()
	smp := startSampler(20*time.Millisecond, func() []int64 { return []int64{sim.TotalCalls(site), sim.Throttled(site)} })
	ps, err := sendAll(h, cmds)
	if err != nil {
		smp.Stop()
		return nil, err
	}
	err = waitAll(ps, 10*time.Minute)
	smp.Stop()
	use := cpu.Stop()
	if err != nil {
		return nil, err
	}
	end := lastDone(ps).Sub(smp.t0)
	from, to, a, b := smp.window(warmup, end-250*time.Millisecond)
	r := &UtilResult{CPU: use, LimitPerS: perMin / 60, SimBurst: perMin / 60, ClientPerS: perMin / 60, Concurrency: 4, Commands: len(ps),
		Calls: sim.TotalCalls(site), TotalS: end.Seconds(), WindowFromS: from.Seconds(), WindowToS: to.Seconds(),
		Throttled: sim.Throttled(site), WarmupS: warmup.Seconds()}
	r.AchievedPerS = float64(b[0]-a[0]) / (to - from).Seconds()
	r.Utilisation = r.AchievedPerS / r.LimitPerS
	r.ThrottledWarm = r.Throttled - smp.at(warmup)[1]
	logf("  %d commands, %d calls in %.1fs; steady %.1f calls/s of %.0f = %.3f; 429: %d (%d after warm-up)",
		r.Commands, r.Calls, r.TotalS, r.AchievedPerS, r.LimitPerS, r.Utilisation, r.Throttled, r.ThrottledWarm)
	return r, nil
}

func sendAll(h *harness, cmds []cmdSpec) ([]*pending, error) {
	ps := make([]*pending, 0, len(cmds))
	for _, c := range cmds {
		p, err := h.send(c.Type, c.ID, c.Body)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, h.flushAsync()
}

func lastDone(ps []*pending) time.Time {
	var last time.Time
	for _, p := range ps {
		if p.Done.At.After(last) {
			last = p.Done.At
		}
	}
	return last
}

// SiteRow is one site of scenario 6.
type SiteRow struct {
	Site         string  `json:"site"`
	LimitPerS    float64 `json:"limitPerSecond"`
	Fault        string  `json:"fault,omitempty"`
	Commands     int     `json:"commands"`
	Calls        int64   `json:"calls"`
	LastDoneS    float64 `json:"lastCompletionSeconds"`
	AchievedPerS float64 `json:"achievedPerSecond"`
	Utilisation  float64 `json:"utilisation"`
	Throttled    int64   `json:"throttled429"`
}

// SitesRun is scenario 6 at one concurrency.
type SitesRun struct {
	// Faults: site-0 slow and site-1 throttled; false is the control run.
	Faults bool `json:"faults"`
	// Conns counts the TCP connections groupflow opened to Wix (the proxy).
	Conns       int64     `json:"tcpConnectionsToWix"`
	CPU         CPUUse    `json:"cpu"`
	Concurrency int       `json:"concurrency"`
	TotalS      float64   `json:"totalSeconds"`
	Sites       []SiteRow `json:"sites"`
	// MinHealthyUtil is the lowest utilisation among the sites without a fault.
	MinHealthyUtil float64 `json:"minHealthyUtilisation"`
}

// SitesResult is scenario 6.
type SitesResult struct {
	SlowLatencyMS float64    `json:"slowSiteLatencyMs"`
	Runs          []SitesRun `json:"runs"`
}

// scenarioSites: 10 sites with their own limits (a sites file, one client
// limiter each), a backlog on each; one site answers 100 ms slower (a proxy
// in front of the simulator), one has a very low limit.
func scenarioSites(quick bool, logf func(string, ...any)) (*SitesResult, error) {
	res := &SitesResult{SlowLatencyMS: 100}
	type variant struct {
		conc   int
		faults bool
	}
	vs := []variant{{0, true}, {0, false}, {64, true}, {64, false}} // 0: the default flags (no --concurrency)
	if quick {
		vs = vs[:1]
	}
	for _, v := range vs {
		run, err := sitesRun(quick, v.conc, v.faults, logf)
		if err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, *run)
	}
	return res, nil
}

func sitesRun(quick bool, conc int, faults bool, logf func(string, ...any)) (*SitesRun, error) {
	sim := wixsim.New(wixsim.Options{Members: 1200, Groups: 20, RatePerMinute: 12000, Burst: 200})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	const slow = "site-0"
	target, _ := url.Parse(simURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 1024}
	var conns atomic.Int64
	proxy := &http.Server{ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if faults && r.Header.Get("wix-site-id") == slow {
			time.Sleep(100 * time.Millisecond)
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	go func() { _ = proxy.Serve(ln) }()
	defer proxy.Close()

	type siteDef struct {
		id    string
		limit float64
		fault string
	}
	var defs []siteDef
	var yaml strings.Builder
	yaml.WriteString("sites:\n")
	for i := range 10 {
		d := siteDef{id: fmt.Sprintf("site-%d", i), limit: float64(10 + 3*i)}
		switch {
		case i == 0 && faults:
			d.limit, d.fault = 30, "+100 ms per call"
		case i == 1 && faults:
			d.limit, d.fault = 5, "limit 5/s"
		case i == 0:
			d.limit = 30
		case i == 1:
			d.limit = 13
		}
		defs = append(defs, d)
		sim.AddSite(d.id) // the simulator serves only the sites it is told about
		fmt.Fprintf(&yaml, "  - siteId: %s\n    apiKeyEnv: BENCH_KEY\n    ratePerMinute: %g\n", d.id, d.limit*60)
	}
	dir, err := tempDir("groupbench-sites-")
	if err != nil {
		return nil, err
	}
	defer removeTemp(dir)
	sitesFile := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(sitesFile, []byte(yaml.String()), 0o600); err != nil {
		return nil, err
	}
	args := []string{"--wix-sites-file", sitesFile, "--wix-base-url", "http://" + ln.Addr().String()}
	if conc > 0 {
		args = append(args, "--concurrency", itoa(conc))
	}
	h, err := startApp(appOpts{Args: args, Env: map[string]string{"BENCH_KEY": "bench"}})
	if err != nil {
		return nil, err
	}
	defer h.Close()

	secs := 8.0
	if quick {
		secs = 3
	}
	perSite := map[string][]cmdSpec{}
	maxCycles := 0
	for _, d := range defs {
		st := sim.Site(d.id)
		n := max(1, int(secs*d.limit/37+0.5))
		for k := range n {
			perSite[d.id] = append(perSite[d.id], mixedCycle(st, d.id, fmt.Sprintf("c%d-%s", conc, d.id), k)...)
		}
		maxCycles = max(maxCycles, len(perSite[d.id]))
	}
	var cmds []cmdSpec // round robin across sites
	for i := range maxCycles {
		for _, d := range defs {
			if i < len(perSite[d.id]) {
				cmds = append(cmds, perSite[d.id][i])
			}
		}
	}
	sim.ResetCalls()
	cpu := startCPU()
	smp := startSampler(20*time.Millisecond, func() []int64 {
		v := make([]int64, len(defs))
		for i, d := range defs {
			v[i] = sim.TotalCalls(d.id)
		}
		return v
	})
	ps, err := sendAll(h, cmds)
	if err != nil {
		smp.Stop()
		return nil, err
	}
	err = waitAll(ps, 10*time.Minute)
	smp.Stop()
	use := cpu.Stop()
	if err != nil {
		return nil, err
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		for sec := time.Duration(0); sec < lastDone(ps).Sub(smp.t0); sec += 500 * time.Millisecond {
			a, b := smp.at(sec), smp.at(sec+500*time.Millisecond)
			var parts []string
			for i := range defs {
				parts = append(parts, fmt.Sprintf("%4.0f", float64(b[i]-a[i])*2))
			}
			logf("  t=%4.1fs calls/s per site: %s", sec.Seconds(), strings.Join(parts, " "))
		}
	}
	var calls int64
	for _, d := range defs {
		calls += sim.TotalCalls(d.id)
	}
	logf("  groupflow opened %d TCP connections for %d Wix calls", conns.Load(), calls)
	run := &SitesRun{Conns: conns.Load(), Faults: faults, CPU: use, Concurrency: conc, TotalS: lastDone(ps).Sub(smp.t0).Seconds(), MinHealthyUtil: 1e9}
	for i, d := range defs {
		var mine []*pending
		for _, p := range ps {
			if p.Site == d.id {
				mine = append(mine, p)
			}
		}
		end := lastDone(mine).Sub(smp.t0)
		from, to, a, b := smp.window(warmup, end-250*time.Millisecond)
		row := SiteRow{Site: d.id, LimitPerS: d.limit, Fault: d.fault, Commands: len(mine), Calls: sim.TotalCalls(d.id),
			LastDoneS: end.Seconds(), Throttled: sim.Throttled(d.id)}
		if to > from {
			row.AchievedPerS = float64(b[i]-a[i]) / (to - from).Seconds()
		}
		row.Utilisation = row.AchievedPerS / d.limit
		if d.fault == "" && (faults || i > 1) {
			run.MinHealthyUtil = min(run.MinHealthyUtil, row.Utilisation)
		}
		run.Sites = append(run.Sites, row)
		logf("  concurrency %2d %s limit %4.0f/s %-17s: %3d cmds %5d calls, done %5.1fs, %5.1f/s = %.3f, 429 %d",
			conc, d.id, d.limit, d.fault, row.Commands, row.Calls, row.LastDoneS, row.AchievedPerS, row.Utilisation, row.Throttled)
	}
	return run, nil
}

// FairnessResult is scenario 7.
type FairnessResult struct {
	Members          int       `json:"campaignMembers"`
	LimitPerS        float64   `json:"limitPerSecond"`
	CampaignCalls    int64     `json:"campaignCalls"`
	CampaignS        float64   `json:"campaignSeconds"`
	RostersAtS       float64   `json:"rostersPublishedAtSeconds"`
	Rosters          int       `json:"rosters"`
	RosterPeople     int       `json:"rosterPeople"`
	RosterP50S       float64   `json:"rosterP50Seconds"`
	RosterMaxS       float64   `json:"rosterMaxSeconds"`
	RostersDoneAtS   float64   `json:"rostersDoneAtSeconds"`
	BeforeCampaign   bool      `json:"rostersDoneBeforeCampaign"`
	RosterLatenciesS []float64 `json:"rosterLatenciesSeconds"`
}

// scenarioFairness: a big campaign is running on a rate-limited site when
// 20 small rosters for the same site arrive.
func scenarioFairness(quick bool, logf func(string, ...any)) (*FairnessResult, error) {
	m, perMin := 100000, 12000
	if quick {
		m, perMin = 10000, 3600
	}
	h, err := startApp(appOpts{Args: []string{"--wix-sim-rate-per-minute", itoa(perMin), "--wix-rate-per-minute", itoa(perMin)}})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	sim := h.app.Sim
	sim.SetRateLimit(float64(perMin), perMin/60)
	const site = "fair"
	st := sim.Site(site)
	st.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
	ids, emails := seedMembers(st, "f", m)
	g := st.AddGroup("Big campaign group", "", ids...)
	e := 0
	for _, x := range emails {
		if x != "" {
			e++
		}
	}
	expected := 2*ceilDiv(m, 100) + ceilDiv(e, 100)
	sim.ResetCalls()
	t0 := time.Now()
	camp, err := h.send(messages.CmdSendCampaign, "fair-campaign", map[string]any{"siteId": site, "campaignId": "fair", "groupIds": []string{g.ID}})
	if err != nil {
		return nil, err
	}
	if err := h.flushAsync(); err != nil {
		return nil, err
	}
	for sim.TotalCalls(site) < expected/10 && time.Since(t0) < 5*time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	var withEmail []string
	for _, x := range emails {
		if x != "" {
			withEmail = append(withEmail, x)
		}
	}
	var cmds []cmdSpec
	for i := range 20 {
		people := make([]messages.Person, 10)
		for j := range people {
			people[j] = messages.Person{Email: withEmail[i*10+j]}
		}
		cmds = append(cmds, cmdSpec{messages.CmdProvisionGroup, fmt.Sprintf("fair-roster-%d", i),
			map[string]any{"siteId": site, "group": map[string]any{"name": fmt.Sprintf("Small class %d", i)}, "people": people}})
	}
	at := time.Since(t0)
	ps, err := sendAll(h, cmds)
	if err != nil {
		return nil, err
	}
	if err := waitAll(ps, 10*time.Minute); err != nil {
		return nil, err
	}
	if err := camp.wait(30 * time.Minute); err != nil {
		return nil, err
	}
	r := &FairnessResult{Members: m, LimitPerS: float64(perMin) / 60, CampaignCalls: camp.Done.WixCalls(),
		CampaignS: camp.latency().Seconds(), RostersAtS: at.Seconds(), Rosters: len(ps), RosterPeople: 10,
		RostersDoneAtS: lastDone(ps).Sub(t0).Seconds()}
	var lats []time.Duration
	for _, p := range ps {
		lats = append(lats, p.latency())
		r.RosterLatenciesS = append(r.RosterLatenciesS, p.latency().Seconds())
	}
	slices.Sort(r.RosterLatenciesS)
	r.RosterP50S, r.RosterMaxS = percentile(lats, 50).Seconds(), percentile(lats, 100).Seconds()
	r.BeforeCampaign = r.RostersDoneAtS < r.CampaignS
	logf("  campaign %d members: %d calls in %.1fs; 20 rosters at %.1fs: p50 %.2fs max %.2fs, all done at %.1fs",
		m, r.CampaignCalls, r.CampaignS, r.RostersAtS, r.RosterP50S, r.RosterMaxS, r.RostersDoneAtS)
	return r, nil
}
