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

// OutcomeLister lists the last n events, newest first.
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

// eventBody is what the console reads of an event's body.
type eventBody struct {
	messages.EventMeta
	CommandType string `json:"commandType"`
	Kind        string `json:"kind"`
	Reason      string `json:"reason"`
}

// Recent returns the last n (at most 500) events, newest first: one stream
// info and one ordered-consumer fetch.
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
	if info.State.Msgs == 0 {
		return nil, nil
	}
	start := info.State.FirstSeq
	if info.State.LastSeq >= uint64(n) && info.State.LastSeq-uint64(n)+1 > start {
		start = info.State.LastSeq - uint64(n) + 1
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(l.Wait))
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var out []Outcome
	for msg := range batch.Messages() {
		out = append(out, l.outcome(msg))
		if md, err := msg.Metadata(); err == nil && md.Sequence.Stream >= info.State.LastSeq {
			break
		}
	}
	slices.Reverse(out)
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
		o.CommandID, o.CorrelationID, o.SiteID = b.CommandID, b.CorrelationID, b.SiteID
		if !b.OccurredAt.IsZero() {
			o.OccurredAt = b.OccurredAt
		}
		if o.EventType == messages.EvtCommandFailed {
			o.Failed, o.CommandType, o.Kind, o.Reason = true, b.CommandType, b.Kind, b.Reason
		}
	}
	return o
}
