package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/dlq"
	"groupflow/internal/ledger"
	"groupflow/internal/oneline"
	"groupflow/messages"
)

// ConsoleSources are what the ops console shows. Any may be nil: its section
// then says it is not available.
type ConsoleSources struct {
	// DLQ lists, shows, replays and purges dead letters.
	DLQ *dlq.Store
	// InFlight lists the commands this instance is working on.
	InFlight InFlightLister
	// Progress is the seam for the live progress registry (branch
	// operator-cli): nil until it lands, then the counters show beside each
	// command in flight and on the command's page.
	Progress ProgressReader
	// Outcomes lists the recent completions and failures (see NewEventLog).
	Outcomes OutcomeLister
	// Limiters reports each site's Wix rate limiter.
	Limiters LimiterLister
	// Commands reads a command's ledger record.
	Commands CommandLookup
}

// InFlight is one command in work in this instance.
type InFlight struct {
	CommandType, CommandID string
	// StreamSeq is the command's sequence in the commands stream.
	StreamSeq uint64
	// Record is its ledger record (nil when it could not be read).
	Record *ledger.Record
}

// InFlightLister lists the commands in work, oldest first. It costs one
// ledger read per command and no Wix call.
type InFlightLister interface {
	InFlight(ctx context.Context) []InFlight
}

// ProgressReader returns the live counters of a running command (rows
// resolved, pages read, Wix calls, ...); ok is false when the command is not
// running here. It must not block.
type ProgressReader interface {
	Progress(commandType, commandID string) (counters map[string]int64, ok bool)
}

// Outcome is one completion or failure event.
type Outcome struct {
	Seq           uint64
	EventType     string
	CommandType   string // set on command_failed only
	CommandID     string
	CorrelationID string
	SiteID        string
	OccurredAt    time.Time
	// Failed is true for command_failed; Kind and Reason say why.
	Failed       bool
	Kind, Reason string
}

// OutcomeLister lists the last n completion and failure events, newest first.
type OutcomeLister interface {
	Recent(ctx context.Context, n int) ([]Outcome, error)
}

// LimiterState is one site's rate limiter as the console shows it.
type LimiterState struct {
	SiteID string
	// PerMinute is the current rate in requests per minute (0: unknown);
	// Instances shares the site's budget (0: not shared).
	PerMinute float64
	Instances int
	// Throttled counts Wix's 429 answers; Waiting counts the calls waiting
	// on the limiter now; Calls counts the attempts sent.
	Throttled, Waiting, Calls int64
}

// LimiterLister reports every site's limiter, sorted by site.
type LimiterLister interface {
	Limiters() []LimiterState
}

// CommandLookup reads the ledger record of a command (nil, nil when there
// is none). One KV read.
type CommandLookup interface {
	Record(ctx context.Context, commandType, commandID string) (*ledger.Record, error)
}

// EventLog reads the recent events from the events stream.
type EventLog struct {
	js       jetstream.JetStream
	subjects messages.Subjects
	// Wait bounds one read (default 2s).
	Wait time.Duration
}

// NewEventLog returns an OutcomeLister over the events stream of subjects.
func NewEventLog(js jetstream.JetStream, subjects messages.Subjects) *EventLog {
	return &EventLog{js: js, subjects: subjects, Wait: 2 * time.Second}
}

// maxRecent bounds one Recent read.
const maxRecent = 500

// completions maps the events that complete a command (and command_failed)
// to the command type they complete; other events (member_selected,
// email_*) are not outcomes.
var completions = map[string]string{
	messages.EvtGroupProvisioned:       messages.CmdProvisionGroup,
	messages.EvtCampaignCompleted:      messages.CmdSendCampaign,
	messages.EvtMembershipQuestionsSet: messages.CmdSetMembershipQuestions,
	messages.EvtRulesPropagated:        messages.CmdPropagateRules,
	messages.EvtReportGenerated:        messages.CmdGenerateReport,
	messages.EvtCommandFailed:          "",
}

// eventBody is what the console reads of an event's body.
type eventBody struct {
	messages.EventMeta
	CommandType string `json:"commandType"`
	Kind        string `json:"kind"`
	Reason      string `json:"reason"`
}

// Recent returns the last n (at most 500) completion and command_failed
// events, newest first. It reads the stream's tail in growing windows (4n,
// 64n, then 1024n sequences) until it has n: a campaign's member_selected
// events between two completions cost reads, bounded by the last window.
func (l *EventLog) Recent(ctx context.Context, n int) ([]Outcome, error) {
	n = min(max(n, 1), maxRecent)
	st, err := l.js.Stream(ctx, l.subjects.EventStream())
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events stream info: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	var filters []string
	for t := range completions {
		filters = append(filters, l.subjects.Event(t))
	}
	slices.Sort(filters)
	var out []Outcome
	for _, w := range []uint64{4, 64, 1024} {
		start := first
		if span := w * uint64(n); last >= span && last-span+1 > first {
			start = last - span + 1
		}
		if out, err = l.read(ctx, st, filters, start, n); err != nil || len(out) >= n || start == first {
			break
		}
	}
	slices.Reverse(out)
	return out, err
}

// read returns the last n matching events from start on, oldest first,
// through an ephemeral consumer whose pending count says how many to fetch
// (so no fetch waits for messages that will not come).
func (l *EventLog) read(ctx context.Context, st jetstream.Stream, filters []string, start uint64, n int) ([]Outcome, error) {
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubjects: filters, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, MemoryStorage: true, InactiveThreshold: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer func() { _ = st.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	var out []Outcome
	for pending := cons.CachedInfo().NumPending; pending > 0; {
		batch, err := cons.Fetch(int(min(pending, maxRecent)), jetstream.FetchMaxWait(l.Wait))
		if err != nil {
			return out, fmt.Errorf("read events: %w", err)
		}
		got := uint64(0)
		for msg := range batch.Messages() {
			got++
			if out = append(out, l.outcome(msg)); len(out) > n {
				out = out[1:]
			}
		}
		if got == 0 {
			break
		}
		pending -= min(got, pending)
	}
	return out, nil
}

// outcome reads one event message (an unreadable body keeps its subject).
func (l *EventLog) outcome(msg jetstream.Msg) Outcome {
	o := Outcome{}
	if md, err := msg.Metadata(); err == nil {
		o.Seq, o.OccurredAt = md.Sequence.Stream, md.Timestamp
	}
	o.EventType, _ = l.subjects.EventTypeOf(msg.Subject())
	var b eventBody
	if json.Unmarshal(msg.Data(), &b) == nil {
		o.CommandID, o.CorrelationID, o.SiteID = clipBytes(b.CommandID, maxOutcomeID), clipBytes(b.CorrelationID, maxOutcomeID), clipBytes(b.SiteID, maxOutcomeID)
		if !b.OccurredAt.IsZero() {
			o.OccurredAt = b.OccurredAt
		}
		o.CommandType = completions[o.EventType]
		if o.EventType == messages.EvtCommandFailed {
			o.Failed, o.CommandType = true, clipBytes(b.CommandType, maxOutcomeID)
			o.Kind, o.Reason = clipBytes(b.Kind, maxOutcomeID), clipBytes(b.Reason, maxOutcomeReason)
		}
	}
	return o
}

// Bounds of an outcome's strings (an event body may be as large as the
// server's payload limit, and Recent keeps up to 500).
const (
	maxOutcomeID     = 256
	maxOutcomeReason = 2 << 10
)

// clipBytes cuts s to n bytes (on a character boundary) and marks the cut.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return oneline.Cut(s, n) + "…"
}
