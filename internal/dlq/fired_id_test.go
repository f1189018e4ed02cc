package dlq

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/schedule"
	"groupflow/messages"
)

// A fired schedule's command is captured under the id the runtime gave it
// (messages.FiredCommandID), not under its stream sequence.
func TestCommandIDOfFiredSchedule(t *testing.T) {
	h := nats.Header{schedule.HeaderScheduler: {"groups.schedule.report.weekly"}, schedule.HeaderNext: {"2026-12-14T07:00:00Z"}, schedule.HeaderNonce: {"n"}}
	m := &jetstream.RawStreamMsg{Header: h, Data: []byte(`{}`), Sequence: 9}
	if got, want := messages.CommandIDOf(m.Data, m.Header, "GROUPS_COMMANDS", m.Sequence), messages.FiredCommandID(h); got != want || want == "" {
		t.Errorf("id %q, want %q", got, want)
	}
	m.Header = nats.Header{}
	if got := messages.CommandIDOf(m.Data, m.Header, "GROUPS_COMMANDS", m.Sequence); got != "GROUPS_COMMANDS-9" {
		t.Errorf("id %q", got)
	}
}
