package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"groupflow/internal/events"
	"groupflow/messages"
)

var ref = messages.OutcomeRef{Bucket: messages.OutcomesBucket, Object: "t.cmd-1.json"}

func meta() messages.EventMeta {
	return messages.EventMeta{CommandID: "cmd-1", CorrelationID: "corr", SiteID: "site", OccurredAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
}

// bigEvents returns one event of each truncatable type with long lists.
func bigEvents() map[string]messages.Truncatable {
	long := strings.Repeat("x", 90)
	var notAdded []messages.RowOutcome
	var removed []string
	for i := range 3000 {
		notAdded = append(notAdded, messages.RowOutcome{Row: i, Ref: fmt.Sprintf("crm-%d-%s", i, long), Kind: messages.KindEmail, Reason: messages.ReasonNotFound, Detail: "no site member with this login email"})
	}
	for i := range 500 {
		removed = append(removed, fmt.Sprintf("member-%04d-%s", i, long[:20]))
	}
	var groups []messages.GroupOutcome
	var targets []messages.TargetOutcome
	var top []messages.GroupStat
	var idle []messages.IdleGroup
	for i := range 1000 {
		id := fmt.Sprintf("group-%04d", i)
		groups = append(groups, messages.GroupOutcome{GroupID: id, Outcome: messages.OutcomeFailed, Reason: "wix said: " + long, Questions: 3})
		diff := messages.DiffRules([]messages.Rule{{Title: "A", Description: long}}, []messages.Rule{{Title: "A", Description: "old " + long}, {Title: "B"}})
		targets = append(targets, messages.TargetOutcome{GroupID: id, Name: "Group " + long[:i%50], Outcome: messages.OutcomeUpdated, Diff: &diff})
		top = append(top, messages.GroupStat{GroupID: id, Name: "Top " + long, Slug: "top", MembersCount: 1000 - i})
		idle = append(idle, messages.IdleGroup{GroupID: id, Name: "Idle " + long, MembersCount: i, LastActivity: meta().OccurredAt.AddDate(0, 0, -i), IdleDays: i})
	}
	return map[string]messages.Truncatable{
		"group_provisioned":               &messages.GroupProvisioned{EventMeta: meta(), GroupID: "g", Name: "Yoga", Added: 1, Removed: removed, NotAdded: notAdded, WixCalls: 40},
		"group_provisioned notAdded only": &messages.GroupProvisioned{EventMeta: meta(), GroupID: "g", Name: "Yoga", NotAdded: notAdded},
		"membership_questions_set":        &messages.MembershipQuestionsSet{EventMeta: meta(), Groups: groups, WixCalls: 100},
		"rules_propagated":                &messages.RulesPropagated{EventMeta: meta(), SourceGroupID: "s", Rules: 1, Targets: targets, Updated: 1000, WixCalls: 2000},
		"report_generated": &messages.ReportGenerated{EventMeta: meta(), GeneratedAt: meta().OccurredAt, TotalGroups: 1000, Top: top, Idle: idle,
			Objects: messages.ReportObjects{Bucket: "GROUPFLOW_REPORTS", HTML: "r.html", CSV: "r.csv", JSON: "r.json"}, WixCalls: 10},
	}
}

func size(t *testing.T, v any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestFitTruncatesEveryEventType: for each truncatable event and several
// budgets, the fitted event encodes within the budget, keeps a prefix of
// each list (as many entries as fit: one more in any cut list would not
// fit), gives each list's full length, names the stored object, and leaves
// the original untouched.
func TestFitTruncatesEveryEventType(t *testing.T) {
	for name, e := range bigEvents() {
		before, _ := json.Marshal(e)
		for _, budget := range []int{len(before) - 1, len(before) / 2, 64 << 10, 4 << 10} {
			t.Run(fmt.Sprintf("%s/%d", name, budget), func(t *testing.T) {
				got, err := events.Fit(e, budget, ref)
				if err != nil {
					t.Fatal(err)
				}
				if n := size(t, got); n > budget {
					t.Fatalf("fitted event takes %d bytes, budget %d", n, budget)
				}
				if !got.IsTruncated() {
					t.Fatal("not marked truncated")
				}
				lists, orig := got.Lists(), e.Lists()
				keep := make([]int, len(lists))
				for i, l := range lists {
					keep[i] = l.Len
					for j := range l.Len {
						if !reflect.DeepEqual(l.Item(j), orig[i].Item(j)) {
							t.Fatalf("%s[%d] is not the original's", l.Field, j)
						}
					}
				}
				for i, l := range lists {
					if l.Len < orig[i].Len {
						more := append([]int(nil), keep...)
						more[i]++
						if n := size(t, e.KeepFirst(more, ref)); n <= budget {
							t.Errorf("%s keeps %d of %d, but %d would fit (%d <= %d)", l.Field, l.Len, orig[i].Len, l.Len+1, n, budget)
						}
					}
				}
				// Totals, Truncated and Full in the JSON, as the contract says.
				var m map[string]any
				b, _ := json.Marshal(got)
				_ = json.Unmarshal(b, &m)
				if m["truncated"] != true || !reflect.DeepEqual(m["full"], map[string]any{"bucket": ref.Bucket, "object": ref.Object}) {
					t.Errorf("truncated %v full %v", m["truncated"], m["full"])
				}
				for _, l := range orig {
					if l.Len == 0 {
						continue
					}
					if tot := m[l.Field+"Total"]; tot != float64(l.Len) {
						t.Errorf("%sTotal = %v, want %d", l.Field, tot, l.Len)
					}
				}
				if after, _ := json.Marshal(e); string(after) != string(before) {
					t.Error("Fit modified the original event")
				}
				// Fitting a truncated event again keeps the totals.
				again, err := events.Fit(got, budget/2, ref)
				if err == nil {
					b, _ := json.Marshal(again)
					var m2 map[string]any
					_ = json.Unmarshal(b, &m2)
					for _, l := range orig {
						if l.Len > 0 && m2[l.Field+"Total"] != float64(l.Len) {
							t.Errorf("refit %sTotal = %v, want %d", l.Field, m2[l.Field+"Total"], l.Len)
						}
					}
				}
			})
		}
	}
}

// TestFitLeavesAnEventThatFits: an event within its budget is returned as is.
func TestFitLeavesAnEventThatFits(t *testing.T) {
	for name, e := range bigEvents() {
		got, err := events.Fit(e, size(t, e), ref)
		if err != nil || got != e || got.IsTruncated() {
			t.Errorf("%s: Fit at its own size = %v, %v", name, got, err)
		}
	}
}

// TestFitRefusesWhatCannotFit: when the event without any list entry is
// still over the budget, Fit says so (ErrTooLarge) rather than returning an
// event that does not fit.
func TestFitRefusesWhatCannotFit(t *testing.T) {
	e := &messages.GroupProvisioned{EventMeta: meta(), GroupID: "g", Name: strings.Repeat("n", 500), NotAdded: []messages.RowOutcome{{Row: 0, Reason: messages.ReasonInvalid}}}
	if _, err := events.Fit(e, 300, ref); !errors.Is(err, events.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// TestOutcomeObjectNamesAreBounded: the object name of any command id is
// short and made of safe characters, and distinct ids get distinct names.
func TestOutcomeObjectNamesAreBounded(t *testing.T) {
	ids := []string{"prov-1", "a.b", "a b", "with/slash", "*", ">", strings.Repeat("i", 70000), strings.Repeat("i", 70001), "ünï"}
	seen := map[string]string{}
	for _, id := range ids {
		n := events.OutcomeObject(messages.CmdProvisionGroup, id)
		if len(n) > 100 || strings.ContainsAny(n, " */>\x00") {
			t.Errorf("OutcomeObject(%.20q) = %q", id, n)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("ids %.20q and %.20q share object %q", prev, id, n)
		}
		seen[n] = id
	}
	if got := events.OutcomeObject(messages.CmdProvisionGroup, "prov-1"); got != "provision_group.prov-1.json" {
		t.Errorf("readable id: %q", got)
	}
}
