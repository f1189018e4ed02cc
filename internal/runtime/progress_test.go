package runtime

import (
	"context"
	"testing"
	"time"
)

func TestProgressOutsideRuntimeIsNoOp(t *testing.T) {
	p := ProgressFrom(context.Background())
	p.Set(ProgressRowsAdded, 3)
	p.Add(ProgressRowsAdded, 1)
	p.ExpectCalls(10)
	if s := p.Snapshot(); len(s.Counts) != 0 || s.WixCallsBudget != 0 {
		t.Fatalf("no-op progress recorded %+v", s)
	}
}

func TestProgressSnapshotBudgetAndETA(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := NewProgressRegistry("inst-1", func(site string) float64 {
		if site != "s1" {
			t.Errorf("rate asked for site %q", site)
		}
		return 200
	})
	reg.now = func() time.Time { return now }
	p := reg.Start("send_campaign", "c-1", "s1")
	ctx := withProgress(context.Background(), p)
	if ProgressFrom(ctx) != p {
		t.Fatal("ProgressFrom does not return the command's progress")
	}
	p.calls.Add(50)
	p.ExpectCalls(400) // budget 450, 400 left: 2 minutes at 200/min
	p.Add(ProgressMembersSeen, 100)
	p.Add(ProgressMembersSeen, 100)
	now = now.Add(time.Minute)
	p.calls.Add(1)
	got := reg.Lookup("c-1")
	if len(got) != 1 {
		t.Fatalf("Lookup = %d snapshots, want 1", len(got))
	}
	s := got[0]
	if s.Counts[ProgressMembersSeen] != 200 || s.WixCalls != 51 || s.WixCallsBudget != 450 || s.WixCallsRemaining != 399 {
		t.Fatalf("snapshot %+v", s)
	}
	if s.ETASeconds == nil || *s.ETASeconds != 120 {
		t.Fatalf("ETA = %v, want 120 s (399 calls at 200/min)", s.ETASeconds)
	}
	if !s.LastProgressAt.Equal(now) {
		t.Fatalf("LastProgressAt = %v, want %v (a new Wix call is progress)", s.LastProgressAt, now)
	}
	if s.Instance != "inst-1" || s.CommandType != "send_campaign" {
		t.Fatalf("identity %+v", s)
	}
	reg.Finish(p)
	if got := reg.Lookup("c-1"); len(got) != 0 {
		t.Fatalf("finished command still listed: %+v", got)
	}
}

func TestProgressKeysBounded(t *testing.T) {
	reg := NewProgressRegistry("i", nil)
	p := reg.Start("t", "id", "")
	for i := 0; i < 3*MaxProgressKeys; i++ {
		p.Set(string(rune('a'+i%26))+string(rune('a'+i/26)), 1)
	}
	if n := len(p.Snapshot().Counts); n != MaxProgressKeys {
		t.Fatalf("%d keys, want the bound %d", n, MaxProgressKeys)
	}
}
