package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"groupflow/messages"
)

// TestEventLineNamesTheFullOutcome: a truncated event's line (events tail,
// send --wait) says where the full outcome is; an untruncated one does not.
func TestEventLineNamesTheFullOutcome(t *testing.T) {
	e := &messages.GroupProvisioned{EventMeta: messages.EventMeta{CommandID: "p-1"}, GroupID: "g", Name: "Yoga",
		NotAdded: []messages.RowOutcome{{Row: 0, Reason: messages.ReasonNotFound}, {Row: 1, Reason: messages.ReasonNotFound}}}
	plain, _ := json.Marshal(e)
	cut, _ := json.Marshal(e.KeepFirst([]int{1, 0, 0}, messages.OutcomeRef{Bucket: messages.OutcomesBucket, Object: "provision_group.p-1.json"}))
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if got := eventLine(messages.EvtGroupProvisioned, at, plain); strings.Contains(got, "truncated") {
		t.Errorf("untruncated: %s", got)
	}
	got := eventLine(messages.EvtGroupProvisioned, at, cut)
	if !strings.Contains(got, "(truncated, full outcome in GROUPFLOW_OUTCOMES/provision_group.p-1.json)") || !strings.Contains(got, "not_added=1") {
		t.Errorf("truncated: %s", got)
	}
}
