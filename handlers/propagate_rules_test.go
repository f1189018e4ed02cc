package handlers

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

func TestPropagateRules(t *testing.T) {
	e := newWF(t)
	st := e.Site
	src := st.AddGroup("Yoga Source", "")
	srcRules := []wixsim.Rule{{Title: "Be kind", Description: "Always"}, {Title: "No spam", Description: "Ever"}}
	st.SetRules(src.ID, srcRules)
	a := st.AddGroup("Yoga A", "")
	b := st.AddGroup("yoga B", "")
	p := st.AddGroup("Pilates", "")
	st.SetRules(a.ID, []wixsim.Rule{{Title: "Be kind", Description: "Mostly"}, {Title: "Old", Description: "x"}})
	st.SetRules(b.ID, srcRules)
	for i := range 146 { // 150 groups in all: two pages
		st.AddGroup(fmt.Sprintf("Other %03d", i), "")
	}
	e.start(runtime.Adapt(NewPropagateRules(e.Sites, e.Log)))
	reset := func() {
		for _, g := range st.Groups() {
			if g.ID != src.ID {
				st.SetRules(g.ID, nil)
			}
		}
		e.Wix.Sim.ResetCalls()
	}
	srcDiffAgainst := func(old []messages.Rule) *messages.RulesDiff {
		d := messages.DiffRules(old, fromWixRules([]wix.GroupRule{{Title: "Be kind", Description: "Always"}, {Title: "No spam", Description: "Ever"}}))
		return &d
	}

	t.Run("dry run writes nothing and diffs each target", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		m := e.send(messages.CmdPropagateRules, "dry-1", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"namePrefix": "YOGA"}, "dryRun": true})
		ev := expect[messages.RulesPropagated](t, e, m, messages.EvtRulesPropagated)
		want := []messages.TargetOutcome{
			{GroupID: a.ID, Name: "Yoga A", Outcome: messages.OutcomeWouldUpdate, Diff: srcDiffAgainst([]messages.Rule{{Title: "Be kind", Description: "Mostly"}, {Title: "Old", Description: "x"}})},
			{GroupID: b.ID, Name: "yoga B", Outcome: messages.OutcomeUnchanged, Diff: srcDiffAgainst(fromWixRules([]wix.GroupRule{{Title: "Be kind", Description: "Always"}, {Title: "No spam", Description: "Ever"}}))},
		}
		got := slices.Clone(ev.Targets)
		slices.SortFunc(got, func(x, y messages.TargetOutcome) int {
			return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name))
		})
		// Nothing is updated in a dry run: the one target that would change
		// is counted in wouldUpdate.
		if !reflect.DeepEqual(got, want) || !ev.DryRun || ev.Updated != 0 || ev.WouldUpdate != 1 || ev.Rules != 2 {
			t.Fatalf("event %+v", ev)
		}
		// 1 source + 1 query page + 1 List Rules per target.
		if e.writes() != 0 || ev.WixCalls != 4 || e.Wix.Calls() != 4 {
			t.Fatalf("writes %d, calls %d/%d", e.writes(), ev.WixCalls, e.Wix.Calls())
		}
	})

	tests := []struct {
		name      string
		body      map[string]any
		want      []string // targets updated
		failed    []string
		wantCalls int64
	}{
		{"explicit ids: 1 + k", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"groupIds": []string{a.ID, p.ID}}},
			[]string{a.ID, p.ID}, nil, 3},
		{"ids with a missing group: the others go on", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"groupIds": []string{a.ID, "missing", b.ID}}},
			[]string{a.ID, b.ID}, []string{"missing"}, 4},
		{"prefix, case-insensitive, never the source", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"namePrefix": "yoga"}},
			[]string{a.ID, b.ID}, nil, 1 + 1 + 2},
		{"all: 1 + ⌈G/100⌉ + (G−1)", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"all": true}},
			nil, nil, 1 + 2 + 149},
		{"rules from the command: no List Rules", map[string]any{"rules": []messages.Rule{{Title: "Be kind", Description: "Always"}, {Title: "No spam", Description: "Ever"}}, "targets": map[string]any{"groupIds": []string{p.ID}}},
			[]string{p.ID}, nil, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset()
			ev := expect[messages.RulesPropagated](t, e, e.send(messages.CmdPropagateRules, fmt.Sprint("rules-", i), tt.body), messages.EvtRulesPropagated)
			want := tt.want
			if want == nil {
				for _, g := range st.Groups() {
					if g.ID != src.ID {
						want = append(want, g.ID)
					}
				}
			}
			var updated, failed []string
			for _, o := range ev.Targets {
				switch o.Outcome {
				case messages.OutcomeUpdated:
					updated = append(updated, o.GroupID)
				case messages.OutcomeFailed:
					failed = append(failed, o.GroupID)
				}
			}
			sameSet(t, "updated", updated, want)
			sameSet(t, "failed", failed, tt.failed)
			if ev.Updated != len(want) || ev.Failed != len(tt.failed) || ev.WixCalls != tt.wantCalls || e.Wix.Calls() != tt.wantCalls {
				t.Fatalf("event updated %d failed %d wixCalls %d, simulator %d, want %d", ev.Updated, ev.Failed, ev.WixCalls, e.Wix.Calls(), tt.wantCalls)
			}
			for _, id := range want {
				if !reflect.DeepEqual(st.Rules(id), srcRules) {
					t.Fatalf("rules of %s: %+v", id, st.Rules(id))
				}
			}
			if got := st.Rules(src.ID); !reflect.DeepEqual(got, srcRules) {
				t.Fatalf("source rules changed: %+v", got)
			}
		})
	}

	t.Run("missing source: command_failed and DLQ", func(t *testing.T) {
		m := e.send(messages.CmdPropagateRules, "no-src", map[string]any{"sourceGroupId": "missing-src", "targets": map[string]any{"all": true}})
		expectFailed(t, e, m, "no-src", messages.FailurePermanent, "source group missing-src not found")
	})

	t.Run("transient failures retried to success, done targets not redone", func(t *testing.T) {
		reset()
		e.Wix.Sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{503: 0.3}, Ops: []string{wix.OpRulesReplace}, Seed: 3})
		defer e.Wix.Sim.SetFaults(wixsim.Faults{})
		ev := expect[messages.RulesPropagated](t, e, e.send(messages.CmdPropagateRules, "flaky-rules", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"namePrefix": "Other 0"}}), messages.EvtRulesPropagated)
		if ev.Updated != 100 || ev.Failed != 0 {
			t.Fatalf("updated %d failed %d", ev.Updated, ev.Failed)
		}
		for i := range 100 {
			g := st.GroupsByName(fmt.Sprintf("Other %03d", i))[0]
			if !reflect.DeepEqual(st.Rules(g.ID), srcRules) {
				t.Fatalf("rules of %s: %+v", g.Name, st.Rules(g.ID))
			}
		}
	})

	t.Run("re-sent command: same event, no Wix call", func(t *testing.T) {
		body := map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"groupIds": []string{a.ID}}}
		first := e.send(messages.CmdPropagateRules, "again", body)
		e.Wix.Sim.ResetCalls()
		second := e.send(messages.CmdPropagateRules, "again", body, "Nats-Msg-Id", "again-2")
		if string(first.Data) != string(second.Data) || e.Wix.Calls() != 0 {
			t.Fatalf("calls %d\n%s\n%s", e.Wix.Calls(), first.Data, second.Data)
		}
	})
}

// TestPropagateRulesEmptySource: a source group with no rules would clear
// every target's rules; that takes "allowEmpty": true, and without it the
// command is refused after the one read of the source, before any target is
// read or written. A dry run is refused the same way (it predicts the real
// run).
func TestPropagateRulesEmptySource(t *testing.T) {
	e := newWF(t)
	st := e.Site
	src := st.AddGroup("Empty Source", "")
	rules := []wixsim.Rule{{Title: "Be kind", Description: "Always"}}
	a, b := st.AddGroup("Target A", ""), st.AddGroup("Target B", "")
	st.SetRules(a.ID, rules)
	st.SetRules(b.ID, rules)
	e.start(runtime.Adapt(NewPropagateRules(e.Sites, e.Log)))
	targets := map[string]any{"groupIds": []string{a.ID, b.ID}}
	unchanged := func(t *testing.T) {
		t.Helper()
		for _, id := range []string{a.ID, b.ID} {
			if got := st.Rules(id); !reflect.DeepEqual(got, rules) {
				t.Fatalf("rules of %s: %+v", id, got)
			}
		}
	}

	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("refused without allowEmpty, dryRun=%v", dry), func(t *testing.T) {
			e.Wix.Sim.ResetCalls()
			id := fmt.Sprint("empty-refused-", dry)
			m := e.send(messages.CmdPropagateRules, id, map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"all": true}, "dryRun": dry})
			expectFailed(t, e, m, id, messages.FailurePermanent,
				fmt.Sprintf("source group %s has no rules; send allowEmpty:true to clear the targets' rules", src.ID))
			// Only the source was read: no target listed, read or written.
			if e.writes() != 0 || e.Wix.Calls() != 1 || e.calls(wix.OpRulesList) != 1 {
				t.Fatalf("writes %d, calls %v", e.writes(), e.Wix.Sim.Calls(e.Wix.SiteID))
			}
			unchanged(t)
		})
	}

	t.Run("dry run with allowEmpty: would clear, writes nothing", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		ev := expect[messages.RulesPropagated](t, e, e.send(messages.CmdPropagateRules, "empty-dry", map[string]any{"sourceGroupId": src.ID, "targets": targets, "allowEmpty": true, "dryRun": true}), messages.EvtRulesPropagated)
		if ev.Updated != 0 || ev.WouldUpdate != 2 || ev.Rules != 0 || e.writes() != 0 {
			t.Fatalf("event %+v, writes %d", ev, e.writes())
		}
		unchanged(t)
	})

	t.Run("allowEmpty clears the targets", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		ev := expect[messages.RulesPropagated](t, e, e.send(messages.CmdPropagateRules, "empty-allowed", map[string]any{"sourceGroupId": src.ID, "targets": targets, "allowEmpty": true}), messages.EvtRulesPropagated)
		if ev.Updated != 2 || ev.WouldUpdate != 0 || ev.Rules != 0 || ev.Failed != 0 || e.calls(wix.OpRulesReplace) != 2 {
			t.Fatalf("event %+v, calls %v", ev, e.Wix.Sim.Calls(e.Wix.SiteID))
		}
		for _, id := range []string{a.ID, b.ID} {
			if got := st.Rules(id); len(got) != 0 {
				t.Fatalf("rules of %s not cleared: %+v", id, got)
			}
		}
	})

	t.Run("the refused command, replayed once the source has rules, propagates them", func(t *testing.T) {
		// The refusal checkpoints nothing: a replay (same command id, its
		// checkpoints kept) reads the source again.
		st.SetRules(src.ID, rules)
		m := e.send(messages.CmdPropagateRules, "empty-refused-false", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"all": true}}, "Nats-Msg-Id", "replay-1")
		ev := expect[messages.RulesPropagated](t, e, m, messages.EvtRulesPropagated)
		if ev.Rules != 1 || ev.Updated != 2 {
			t.Fatalf("event %+v", ev)
		}
		unchanged(t)
	})
}

// TestPropagateRulesOversizedSourceRules: the source group's rules, as Wix
// answers them, are held to the limits of a command's rules (titles ≤ 200
// characters without control characters, descriptions ≤ 5,000, titles
// unique) before any target is listed, read or written: a source whose
// rules hold 100 descriptions of 20,000 characters (2 MB) and a title with a
// terminal escape fails the command (permanent), its reason naming the rule
// and the limit, instead of being checkpointed and copied to every target.
func TestPropagateRulesOversizedSourceRules(t *testing.T) {
	e := newWF(t)
	st := e.Site
	src := st.AddGroup("Huge Source", "")
	var huge []wixsim.Rule
	for i := range 100 {
		huge = append(huge, wixsim.Rule{Title: fmt.Sprint("Rule ", i), Description: strings.Repeat("d", 20000)})
	}
	st.SetRules(src.ID, huge)
	target := st.AddGroup("Target", "")
	e.start(runtime.Adapt(NewPropagateRules(e.Sites, e.Log)))
	e.Wix.Sim.ResetCalls()
	m := e.send(messages.CmdPropagateRules, "huge-source", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"all": true}})
	expectFailed(t, e, m, "huge-source", messages.FailurePermanent, "rules[0].description: at most 5000 characters")
	if e.writes() != 0 || e.Wix.Calls() != 1 || len(st.Rules(target.ID)) != 0 {
		t.Fatalf("writes %d, calls %v", e.writes(), e.Wix.Sim.Calls(e.Wix.SiteID))
	}

	st.SetRules(src.ID, []wixsim.Rule{{Title: "Be kind\x1b[2J"}, {Title: "Be kind\x1b[2J"}})
	m = e.send(messages.CmdPropagateRules, "escape-source", map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"all": true}})
	expectFailed(t, e, m, "escape-source", messages.FailurePermanent, "rules[0].title: must not contain control characters")
	if e.writes() != 0 || len(st.Rules(target.ID)) != 0 {
		t.Fatalf("writes %d", e.writes())
	}
}

// TestPropagateRulesHostileWixEndlessPages: a Query Groups that answers its
// first page at every offset, saying more follow, ends the selection of
// the targets (permanent, nothing written) after maxIdlePages pages that
// bring no new group, instead of being read for ever.
func TestPropagateRulesHostileWixEndlessPages(t *testing.T) {
	e := newWF(t)
	st := e.Site
	for i := range 120 {
		st.AddGroup(fmt.Sprintf("Endless %03d", i), "")
	}
	var queries atomic.Int64
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/groups/query") {
			e.Wix.Sim.Handler().ServeHTTP(w, r)
			return
		}
		queries.Add(1)
		serveFirstPageForEver(w, r, e.Wix.Sim.Handler(), []byte(`{"query":{"paging":{"limit":100,"offset":0}}}`))
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(NewPropagateRules(e.Sites, e.Log)))
	m := e.send(messages.CmdPropagateRules, "endless-targets", map[string]any{"rules": []messages.Rule{{Title: "Be kind"}}, "targets": map[string]any{"all": true}})
	expectFailed(t, e, m, "endless-targets", messages.FailurePermanent, "its paging does not advance")
	if n := queries.Load(); n != maxIdlePages+1 {
		t.Fatalf("%d Query Groups, want %d", n, maxIdlePages+1)
	}
	if w := e.writes(); w != 0 {
		t.Fatalf("%d writes", w)
	}
}
