package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"groupflow/internal/runtime"
)

// progressWait is how long status waits for the instance running a command
// to tell its progress.
const progressWait = time.Second

// printEvents counts the events by type, in order of first appearance, or
// lists them all with --events.
func (a *app) printEvents(evts []foundEvent) {
	if a.listEvents {
		for _, e := range evts {
			a.outf("event:    %s (events seq %d at %s)\n", safe(e.Type), e.Seq, e.Time.UTC().Format(time.RFC3339))
		}
		return
	}
	if len(evts) == 0 {
		return
	}
	counts := map[string]int{}
	var order []string
	for _, e := range evts {
		if counts[e.Type] == 0 {
			order = append(order, e.Type)
		}
		counts[e.Type]++
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%s ×%d", t, counts[t])
	}
	a.outf("events:   %s (--events lists them)\n", safe(strings.Join(parts, ", ")))
}

// printProgress asks the instances for command id's progress and prints it.
func (a *app) printProgress(ctx context.Context, id string) {
	if _, err := a.connect(); err != nil {
		return
	}
	cl, _ := a.opsClient()
	ans, err := cl.Progress(ctx, id, progressWait)
	if err != nil {
		a.errf("warning: progress: %v\n", safe(err.Error()))
		return
	}
	if ans.Truncated != "" {
		a.errf("warning: progress answers cut short: %s\n", safe(ans.Truncated))
	}
	snaps := ans.Commands
	if len(snaps) == 0 {
		a.outf("progress: no running instance reports it (queued, between deliveries, or on a processor without progress answers)\n")
		return
	}
	for _, s := range snaps {
		a.outf("progress: %s\n", progressLine(s, a.now()))
	}
}

// progressLine renders a snapshot on one line: counters, calls, ETA.
func progressLine(s runtime.ProgressSnapshot, now time.Time) string {
	keys := make([]string, 0, len(s.Counts))
	for k := range s.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d", k, s.Counts[k])
		if t, ok := s.Totals[k]; ok {
			fmt.Fprintf(&b, "/%d", t)
		}
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "wixCalls=%d", s.WixCalls)
	if s.WixCallsBudget > 0 {
		fmt.Fprintf(&b, "/%d (%d left)", s.WixCallsBudget, s.WixCallsRemaining)
	}
	if s.ETASeconds != nil {
		fmt.Fprintf(&b, " eta=%s at %.0f/min", (time.Duration(*s.ETASeconds) * time.Second).String(), s.RatePerMinute)
	}
	fmt.Fprintf(&b, " running %s on %s, last progress %s ago", age(now.Sub(s.StartedAt)), s.Instance, age(now.Sub(s.LastProgressAt)))
	return safe(b.String())
}

// progressFraction is how far the command is by its Wix call budget (0..1),
// or -1 when it announced none.
func progressFraction(s runtime.ProgressSnapshot) float64 {
	if s.WixCallsBudget <= 0 {
		return -1
	}
	return min(1, float64(s.WixCalls)/float64(s.WixCallsBudget))
}
