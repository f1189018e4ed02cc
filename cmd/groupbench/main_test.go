package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCallsPerJobMicro runs scenario 1 at a micro size (a 10-person roster,
// a 100-member campaign, the interest campaign, report and rules) through the
// real processor, and renders the report.
func TestCallsPerJobMicro(t *testing.T) {
	rows, err := callsPerJob([]int{10}, []int{100}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if r.Measured != r.Minimum || r.Event != r.Measured {
			t.Errorf("%s: measured %d, event %d, minimum %d", r.Job, r.Measured, r.Event, r.Minimum)
		}
	}
	res := &Results{Machine: machine(), Quick: true, Calls: rows}
	res.Targets = targets(res)
	if len(res.Targets) != 1 || !res.Targets[0].Met {
		t.Errorf("targets %+v", res.Targets)
	}
	var out bytes.Buffer
	report(&out, res)
	if !strings.Contains(out.String(), "| ProvisionGroup n=10 (email) | 4 | 4 | 4 |") {
		t.Errorf("report:\n%s", out.String())
	}
}

// Help or a stray argument never starts the run (it did: groupbench read
// no arguments, so -h started the full benchmark).
func TestArgumentsNeverStartTheRun(t *testing.T) {
	cases := []struct {
		args []string
		code int
		stop bool
		out  string
	}{
		{nil, 0, false, ""},
		{[]string{"-h"}, 0, true, "usage: groupbench"},
		{[]string{"--help"}, 0, true, "BENCH_QUICK"},
		{[]string{"--quick"}, 2, true, `unexpected argument "--quick"`},
		{[]string{"--version"}, 0, true, "groupbench "},
	}
	for _, c := range cases {
		var stdout, stderr strings.Builder
		code, stop := answerArgs(c.args, &stdout, &stderr)
		if code != c.code || stop != c.stop || !strings.Contains(stdout.String()+stderr.String(), c.out) {
			t.Errorf("%q: code %d stop %v, output %q; want %d %v containing %q", c.args, code, stop, stdout.String()+stderr.String(), c.code, c.stop, c.out)
		}
	}
}
