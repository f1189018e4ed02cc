package main

import (
	"fmt"
	"io"
	"strings"
)

// targets evaluates the targets on the results.
func targets(r *Results) []Target {
	var ts []Target
	if len(r.Calls) > 0 {
		worst, job := 0.0, ""
		all := true
		for _, c := range r.Calls {
			if c.Ratio > worst {
				worst, job = c.Ratio, c.Job
			}
			if c.Measured != c.Minimum || c.Event != c.Measured {
				all = false
			}
		}
		ts = append(ts, Target{Name: "Wix calls / minimum", Want: "1.00 on every job",
			Got: fmt.Sprintf("max %.2f (%s)", worst, job), Met: all})
	}
	if u := r.Util; u != nil {
		ts = append(ts, Target{Name: "Rate-limit utilisation", Want: "≥ 0.95, no 429 after warm-up",
			Got: fmt.Sprintf("%.3f (%.1f of %.0f calls/s), %d 429s after warm-up (%d total)", u.Utilisation, u.AchievedPerS, u.LimitPerS, u.ThrottledWarm, u.Throttled),
			Met: u.Utilisation >= 0.95 && u.ThrottledWarm == 0})
	}
	for _, o := range r.Overhead {
		ts = append(ts, overheadTargets(o)...)
	}
	for _, l := range r.Latency {
		if l.WixLatencyMS == 0 && l.InFlight == 1 {
			ts = append(ts, Target{Name: "Added latency p99 at 0 ms Wix latency (1 in flight)", Want: "< 5 ms",
				Got: fmt.Sprintf("%.2f ms (p50 %.2f ms, p95 %.2f ms, 4 Wix calls included; machine %.0f%% busy)", l.P99, l.P50, l.P95, 100*l.CPU.MachineBusy), Met: l.P99 < 5})
		}
	}
	for _, m := range r.Memory {
		if strings.HasPrefix(m.Job, "SendCampaign") {
			want := "< 100 MiB"
			if r.Quick {
				want += " (quick: smaller campaign)"
			}
			ts = append(ts, Target{Name: "Campaign peak RSS of groupflow, broker " + m.Broker, Want: want,
				Got: fmt.Sprintf("%.1f MiB (%s)", m.PeakRSSMiB, m.Job), Met: m.PeakRSSMiB < 100})
		}
	}
	if s := r.Sites; s != nil {
		for _, run := range s.Runs {
			name, want := fmt.Sprintf("Several sites: healthy sites' utilisation (%s)", concLabel(run.Concurrency)), "≥ 0.95 each despite a slow and a throttled site"
			if !run.Faults {
				name, want = fmt.Sprintf("Several sites, control without faulty site (%s)", concLabel(run.Concurrency)), "≥ 0.95 each (sites 2–9)"
			}
			ts = append(ts, Target{Name: name, Want: want, Got: fmt.Sprintf("min %.3f (bench process %.2f cores, machine %.0f%% busy)",
				run.MinHealthyUtil, run.CPU.BenchCores, 100*run.CPU.MachineBusy), Met: run.MinHealthyUtil >= 0.95})
		}
	}
	if f := r.Fairness; f != nil {
		ts = append(ts, Target{Name: "Fairness: small rosters during a campaign", Want: "done before the campaign ends",
			Got: fmt.Sprintf("rosters max %.2fs (p50 %.2fs), all done at %.1fs; campaign %.1fs", f.RosterMaxS, f.RosterP50S, f.RostersDoneAtS, f.CampaignS),
			Met: f.BeforeCampaign})
	}
	return ts
}

func yes(b bool) string {
	if b {
		return "met"
	}
	return "**missed**"
}

// report prints the Markdown report.
func report(w io.Writer, r *Results) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	mode := "full"
	if r.Quick {
		mode = "quick (BENCH_QUICK=1)"
	}
	p("## groupbench — %s run, %s", mode, r.Machine.Date)
	p("")
	p("Machine: %d CPUs, %s, %s, %s; load average at start %s, at end %s (the machine is shared); took %.0f s.",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS, r.Machine.LoadAvg, r.Machine.LoadAvgEnd, r.TookS)
	p("")
	if len(r.Targets) > 0 {
		p("### Targets")
		p("")
		p("| target | want | got | |")
		p("|---|---|---|---|")
		for _, t := range r.Targets {
			p("| %s | %s | %s | %s |", t.Name, t.Want, t.Got, yes(t.Met))
		}
		p("")
	}
	if len(r.Calls) > 0 {
		p("### 1. Wix calls per job vs the minimum (simulator counter)")
		p("")
		p("| job | measured | event wixCalls | minimum | formula | ratio | naive |")
		p("|---|--:|--:|--:|---|--:|--:|")
		for _, c := range r.Calls {
			naive := "—"
			if c.Naive > 0 {
				naive = fmt.Sprint(c.Naive)
			}
			p("| %s | %d | %d | %d | %s | %.2f | %s |", c.Job, c.Measured, c.Event, c.Minimum, c.Formula, c.Ratio, naive)
		}
		p("")
		p("Naive: one lookup + one add per person (2n); campaigns one member get + one subscription query per member (2m); interest: answer pages + 2 per matched member.")
		p("")
	}
	if len(r.Overhead) > 0 {
		p("### 2. Processor overhead vs raw JetStream (same embedded server; Wix: unlimited zero-latency simulator over HTTP, and a canned in-memory stub)")
		p("")
		p("| command | Wix | N | bytes | concurrency | Wix calls each | writes/command | ledger writes each | events each | processor msgs/s | raw JetStream msgs/s | processor/raw | CPU-µs/command (raw: per msg) | CPU (bench cores / machine busy / other processes' cores) |")
		p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		var noisy []string
		for _, o := range r.Overhead {
			conc := itoa(o.Concurrency)
			if o.SiteConcurrency != 0 && o.SiteConcurrency != o.Concurrency {
				conc += fmt.Sprintf(" (site %d)", o.SiteConcurrency)
			}
			p("| %s | %s | %d | %d | %s | %d | %.1f | %.1f | %.1f | %.0f | %.0f | %.3f | %.0f (%.0f) | %.2f / %.0f%% / %.2f |", o.Command, o.Wix, o.N, o.MsgBytes, conc, o.WixCallsEach,
				o.WritesEach, o.LedgerWritesEach, o.EventWritesEach, o.ProcessorPerS, o.RawPerS, o.Ratio, o.CPUMicrosEach, o.RawCPUMicrosEach, o.CPU.BenchCores, 100*o.CPU.MachineBusy, o.CPU.OtherCores)
			if o.CPU.OtherCores > noisyCores {
				noisy = append(noisy, fmt.Sprintf("%s: %.2f cores", o.Wix, o.CPU.OtherCores))
			}
		}
		p("")
		if len(noisy) > 0 {
			p("**Busy machine:** other processes used CPU during the processor phase (%s). The processor is CPU-bound (about 1.9 of 2 cores on a quiet machine), so its msgs/s is what it got of the machine, and its CPU-µs/command rises too (shared caches): do not compare these rows with a quiet run's.", strings.Join(noisy, "; "))
			p("")
		}
		p("Writes/command: appends to every stream and KV bucket (sum of last-sequence deltas), the command's own publish aside. By stream:")
		p("")
		for _, o := range r.Overhead {
			p("- Wix %s: %s", o.Wix, formatPerStream(o.WritesByStream))
		}
		p("")
		p("CPU-µs/command is the bench process's CPU time (processor, embedded broker, producer and, over HTTP, the simulator's server) divided by the commands; on a shared machine the figures are noisy.")
		p("")
		p("JetStream floor: the command's broker operations alone (publish, delivery, ledger Create + Get + Update, the event's synchronous publish, the ack, the event's delivery; no Watermill, handler, Wix or JSON) on the same server with as many in flight, each operation awaited as groupflow awaits it. processor/raw cannot exceed floor/raw without a cheaper protocol (fewer, or batched, broker operations); processor/floor is the share of the time groupflow spends on its broker operations.")
		p("")
		p("| Wix | floor msgs/s | floor CPU-µs/command | floor/raw | processor/floor |")
		p("|---|--:|--:|--:|--:|")
		for _, o := range r.Overhead {
			p("| %s | %.0f | %.0f | %.3f | %.2f |", o.Wix, o.FloorPerS, o.FloorCPUMicros, o.FloorRatio, o.ProcessorOfFloor)
		}
		p("")
	}
	if u := r.Util; u != nil {
		p("### 3. Rate-limit utilisation (limit %.0f/s = Wix 200/min × 60, simulator burst %d, client %.0f/s)", u.LimitPerS, u.SimBurst, u.ClientPerS)
		p("")
		p("| commands | concurrency | calls | total s | steady window s | achieved calls/s | utilisation | 429 total | 429 after %.0fs warm-up | CPU (bench cores / machine busy) |", u.WarmupS)
		p("|--:|--:|--:|--:|---|--:|--:|--:|--:|---|")
		p("| %d | %d | %d | %.1f | %.1f–%.1f | %.1f | %.3f | %d | %d | %.2f / %.0f%% |", u.Commands, u.Concurrency, u.Calls, u.TotalS, u.WindowFromS, u.WindowToS,
			u.AchievedPerS, u.Utilisation, u.Throttled, u.ThrottledWarm, u.CPU.BenchCores, 100*u.CPU.MachineBusy)
		p("")
	}
	if len(r.Latency) > 0 {
		p("### 4. Latency, publish → completion event (ProvisionGroup, 1 person, 4 Wix calls)")
		p("")
		p("| Wix latency | in flight | n | p50 ms | p95 ms | p99 ms | mean ms | commands/s | CPU (bench cores / machine busy) |")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		for _, l := range r.Latency {
			p("| %.0f ms | %d | %d | %.2f | %.2f | %.2f | %.2f | %.0f | %.2f / %.0f%% |", l.WixLatencyMS, l.InFlight, l.N, l.P50, l.P95, l.P99, l.Mean, l.PerS,
				l.CPU.BenchCores, 100*l.CPU.MachineBusy)
		}
		p("")
	}
	if len(r.Memory) > 0 {
		p("### 5. Memory: peak RSS (VmHWM) of the groupflow process alone (simulator in its own process)")
		p("")
		p("| job | broker | peak RSS MiB | RSS after start MiB | Wix calls | s |")
		p("|---|---|--:|--:|--:|--:|")
		for _, m := range r.Memory {
			p("| %s | %s | %.1f | %.1f | %d | %.1f |", m.Job, m.Broker, m.PeakRSSMiB, m.IdleRSSMiB, m.WixCalls, m.TookS)
		}
		p("")
	}
	if s := r.Sites; s != nil {
		p("### 6. Several sites (own limits; site-0 +%.0f ms per call, site-1 limit 5/s)", s.SlowLatencyMS)
		p("")
		for _, run := range s.Runs {
			kind := "with the slow and the throttled site"
			if !run.Faults {
				kind = "control: no faulty site"
			}
			var calls int64
			for _, x := range run.Sites {
				calls += x.Calls
			}
			p("%s, %s; all done in %.1f s; bench process %.2f cores, machine %.0f%% busy; %d TCP connections opened to Wix for %d calls:",
				concLabel(run.Concurrency), kind, run.TotalS, run.CPU.BenchCores, 100*run.CPU.MachineBusy, run.Conns, calls)
			p("")
			p("| site | limit/s | fault | commands | calls | done at s | achieved/s | utilisation | 429 |")
			p("|---|--:|---|--:|--:|--:|--:|--:|--:|")
			for _, x := range run.Sites {
				p("| %s | %.0f | %s | %d | %d | %.1f | %.1f | %.3f | %d |", x.Site, x.LimitPerS, x.Fault, x.Commands, x.Calls, x.LastDoneS, x.AchievedPerS, x.Utilisation, x.Throttled)
			}
			p("")
		}
	}
	if f := r.Fairness; f != nil {
		p("### 7. Fairness inside one site (limit %.0f/s)", f.LimitPerS)
		p("")
		p("| campaign members | campaign calls | campaign s | campaign calls/s | 20 rosters sent at s | roster p50 s | roster max s | rosters all done at s | before campaign end |")
		p("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		p("| %d | %d | %.1f | %.0f | %.1f | %.2f | %.2f | %.1f | %v |", f.Members, f.CampaignCalls, f.CampaignS, float64(f.CampaignCalls)/f.CampaignS,
			f.RostersAtS, f.RosterP50S, f.RosterMaxS, f.RostersDoneAtS, f.BeforeCampaign)
		p("")
	}
	if len(r.Errors) > 0 {
		p("### Errors")
		p("")
		for k, v := range r.Errors {
			p("- scenario %s: %s", k, v)
		}
		p("")
	}
}

// overheadTargets are scenario 2's targets for one row: the issue 7 ratio
// with the simulator over HTTP, the issue 14 ratio with Wix in memory, and
// the writes per command.
func overheadTargets(o OverheadRow) []Target {
	name, want, floor := "Processor throughput / raw JetStream", "≥ 0.5", 0.5
	if o.Wix == wixInMemory {
		name, want, floor = "Processor throughput / raw JetStream, Wix in memory", "≥ 0.10", 0.10
	}
	return []Target{
		{Name: name, Want: want, Met: o.Ratio >= floor,
			Got: fmt.Sprintf("%.3f (%.0f vs %.0f msgs/s; %.0f CPU-µs/command; the command's JetStream floor alone: %.3f)", o.Ratio, o.ProcessorPerS, o.RawPerS, o.CPUMicrosEach, o.FloorRatio)},
		{Name: "JetStream writes per command (Wix " + o.Wix + ")", Want: "≤ 4", Met: o.WritesEach <= 4,
			Got: fmt.Sprintf("%.1f (%s)", o.WritesEach, formatPerStream(o.WritesByStream))},
	}
}
