package main

import (
	"fmt"
	"io"
	"math"
)

// CostResult is scenario 10: what one active site costs one groupflow
// instance, from a scenario 8 run, and the instances that projects to.
type CostResult struct {
	Sites int `json:"sites"`
	// CPUMicrosPerCall is groupflow's CPU time (its embedded broker
	// included) per Wix call.
	CPUMicrosPerCall float64 `json:"cpuMicrosPerWixCall"`
	// BytesPerSite is groupflow's peak RSS above its idle RSS, per active site.
	BytesPerSite float64 `json:"bytesPerActiveSite"`
	// RateKVPerSiteMin counts writes to the shared rate-limit bucket per
	// active site per minute.
	RateKVPerSiteMin float64 `json:"rateKvWritesPerSitePerMinute"`
	// Projection at every site's 200 calls/minute, instances of this
	// machine's size (PerInstanceCores cores at 70 %, PerInstanceMiB).
	PerInstanceCores float64      `json:"perInstanceCores"`
	PerInstanceMiB   float64      `json:"perInstanceMiB"`
	SitesPerInstance float64      `json:"sitesPerInstance"`
	Bound            string       `json:"boundBy"`
	Projections      []Projection `json:"projections"`
}

// Projection is the instances needed for a number of active sites.
type Projection struct {
	Sites        int     `json:"sites"`
	Instances    int     `json:"instances"`
	WixCallsPerS float64 `json:"wixCallsPerSecond"`
	RateKVPerS   float64 `json:"rateKvWritesPerSecond"`
}

// scenarioCost (10) derives the cost per site from scenario 8's run, or
// runs one.
func scenarioCost(quick bool, many *ManySitesRun, logf func(string, ...any)) (*CostResult, error) {
	if many == nil {
		var err error
		if many, err = scenarioManySites(quick, logf); err != nil {
			return nil, err
		}
	}
	if many.Calls == 0 || many.RunS == 0 {
		return nil, fmt.Errorf("scenario 8 made no calls")
	}
	sites := float64(len(many.Rows))
	c := &CostResult{Sites: len(many.Rows), PerInstanceCores: 2, PerInstanceMiB: 512,
		CPUMicrosPerCall: many.GroupflowCPUS * 1e6 / float64(many.Calls),
		BytesPerSite:     max(many.PeakRSSMiB-many.IdleRSSMiB, 0) * (1 << 20) / sites,
		RateKVPerSiteMin: float64(many.RateKVWrites) / sites / (many.RunS / 60)}
	perSiteCallsS := manyLimitPerMin / 60.0
	byCPU := c.PerInstanceCores * 0.7 * 1e6 / (c.CPUMicrosPerCall * perSiteCallsS)
	byMem := math.Inf(1)
	if c.BytesPerSite > 0 {
		byMem = (c.PerInstanceMiB - many.IdleRSSMiB) * (1 << 20) / c.BytesPerSite
	}
	c.SitesPerInstance, c.Bound = byCPU, "CPU"
	if byMem < byCPU {
		c.SitesPerInstance, c.Bound = byMem, "memory"
	}
	for _, n := range []int{1000, 10000, 100000} {
		c.Projections = append(c.Projections, Projection{Sites: n,
			Instances:    int(math.Ceil(float64(n) / c.SitesPerInstance)),
			WixCallsPerS: float64(n) * perSiteCallsS, RateKVPerS: float64(n) * c.RateKVPerSiteMin / 60})
	}
	logf("  cost per site: %.0f CPU-µs per Wix call, %.0f KiB per active site, %.1f rate KV writes per site per minute; %.0f sites per instance (%s-bound)",
		c.CPUMicrosPerCall, c.BytesPerSite/1024, c.RateKVPerSiteMin, c.SitesPerInstance, c.Bound)
	return c, nil
}

// manyTargets are the targets of scenarios 8–10 and of scenario 6 at the
// default flags.
func manyTargets(r *Results) []Target {
	var ts []Target
	if m := r.ManySites; m != nil {
		ts = append(ts,
			Target{Name: fmt.Sprintf("%d sites at 200/min: aggregate utilisation", m.Sites), Want: "≥ 0.95",
				Got: fmt.Sprintf("%.3f (%d calls in %.1f s)", m.Aggregate, m.Calls, m.ElapsedS), Met: m.Aggregate >= 0.95},
			Target{Name: fmt.Sprintf("%d sites at 200/min: every site", m.Sites), Want: "≥ 0.90 of its own",
				Got: fmt.Sprintf("min %.3f (%s), median %.3f", m.MinSite, m.MinSiteID, m.MedianSite), Met: m.MinSite >= 0.90},
			Target{Name: fmt.Sprintf("%d sites at 200/min: 429s", m.Sites), Want: "0", Got: fmt.Sprint(m.Throttled), Met: m.Throttled == 0},
			Target{Name: fmt.Sprintf("%d sites at 200/min: groupflow peak RSS", m.Sites), Want: "< 200 MiB",
				Got: fmt.Sprintf("%.0f MiB", m.PeakRSSMiB), Met: m.PeakRSSMiB < 200})
	}
	if b := r.BusySite; b != nil && b.Busy != nil {
		ts = append(ts,
			Target{Name: fmt.Sprintf("Busy site (%d queued): the other %d sites", b.BusyQueued, len(b.Rows)), Want: "≥ 0.90 each",
				Got: fmt.Sprintf("min %.3f (%s), median %.3f", b.MinSite, b.MinSiteID, b.MedianSite), Met: b.MinSite >= 0.90},
			Target{Name: "Busy site: its own limit", Want: fmt.Sprintf("≥ 0.95 over %.0f s", b.BusyWindowS),
				Got: fmt.Sprintf("%.3f (%d calls)", b.Busy.Utilisation, b.Busy.Calls), Met: b.Busy.Utilisation >= 0.95})
	}
	if c := r.Cost; c != nil {
		ts = append(ts, Target{Name: "Cost per site", Want: "figures and a projection",
			Got: fmt.Sprintf("%.0f CPU-µs/call, %.0f KiB/site, %.1f KV writes/site/min; 100,000 sites: %d instances",
				c.CPUMicrosPerCall, c.BytesPerSite/1024, c.RateKVPerSiteMin, c.Projections[len(c.Projections)-1].Instances), Met: true})
	}
	return ts
}

// reportMany prints scenarios 8–10.
func reportMany(w io.Writer, r *Results) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	for _, m := range []*ManySitesRun{r.ManySites, r.BusySite} {
		if m == nil {
			continue
		}
		if m.Busy == nil {
			p("\n### 8. %d sites at Wix's 200 calls/minute, one groupflow, default flags\n", m.Sites)
		} else {
			p("\n### 9. The same with one site holding %d queued commands (%.0f s window)\n", m.BusyQueued, m.BusyWindowS)
		}
		p("Simulator in its own process; groupflow `%s` (the rest default); %d provision_group commands per site (%.2f Wix calls each), published up front round-robin over the sites%s.\n",
			m.Flags, m.CommandsPerSite, m.CallsPerCommand, map[bool]string{true: ", after the busy site's backlog", false: ""}[m.Busy != nil])
		p("| sites | calls | elapsed s | aggregate | min site | median site | 429s | peak RSS MiB (idle) | groupflow CPU s | rate KV writes | bench process cores / machine busy |")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		p("| %d | %d | %.1f | %.3f | %.3f (%s) | %.3f | %d | %.0f (%.0f) | %.1f | %d | %.2f / %.0f%% |", len(m.Rows), m.Calls, m.ElapsedS, m.Aggregate,
			m.MinSite, m.MinSiteID, m.MedianSite, m.Throttled, m.PeakRSSMiB, m.IdleRSSMiB, m.GroupflowCPUS, m.RateKVWrites, m.CPU.BenchCores, 100*m.CPU.MachineBusy)
		if b := m.Busy; b != nil {
			p("\nBusy site %s: %d calls in the %.0f s after its first = **%.3f** of its limit; %d 429s.", b.Site, b.Calls, m.BusyWindowS, b.Utilisation, b.Throttled)
		}
		p("\n<details><summary>Per site (utilisation = accepted calls ÷ (limit × span from its first to its last call))</summary>\n")
		p("| site | calls | first call s | span s | utilisation | 429s |")
		p("|---|--:|--:|--:|--:|--:|")
		for _, row := range m.Rows {
			p("| %s | %d | %.2f | %.2f | %.3f | %d |", row.Site, row.Calls, row.FirstS, row.SpanS, row.Utilisation, row.Throttled)
		}
		p("\n</details>")
	}
	if c := r.Cost; c != nil {
		p("\n### 10. Cost per active site\n")
		p("From the %d-site run: **%.0f CPU-µs per Wix call** (groupflow and its embedded broker), **%.0f KiB per active site** (peak RSS above idle), **%.1f writes to the rate-limit KV bucket per site per minute**.\n",
			c.Sites, c.CPUMicrosPerCall, c.BytesPerSite/1024, c.RateKVPerSiteMin)
		p("Projection at 200 calls/minute per site, instances of %.0f cores (at 70 %%) and %.0f MiB: %.0f sites per instance (%s-bound).\n",
			c.PerInstanceCores, c.PerInstanceMiB, c.SitesPerInstance, c.Bound)
		p("| active sites | Wix calls/s | instances | rate KV writes/s |")
		p("|--:|--:|--:|--:|")
		for _, pr := range c.Projections {
			p("| %d | %.0f | %d | %.0f |", pr.Sites, pr.WixCallsPerS, pr.Instances, pr.RateKVPerS)
		}
	}
}

// concLabel names scenario 6's --concurrency (0: the default flags).
func concLabel(conc int) string {
	if conc == 0 {
		return "default flags"
	}
	return fmt.Sprintf("concurrency %d per command type", conc)
}
