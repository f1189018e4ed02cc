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
