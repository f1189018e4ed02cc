package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/messages"
)

// Bucket names. They are fixed (not derived from the subject prefix) so that
// ops tools find them without configuration.
const (
	// LedgerBucket is the JetStream KV bucket of command progress and outcomes.
	LedgerBucket = "GROUPFLOW_LEDGER"
	// ReportsBucket is the Object Store bucket of rendered reports.
	ReportsBucket = "GROUPFLOW_REPORTS"
	// OutcomesBucket is the Object Store bucket of the full bodies of
	// completion events too large for one message (messages.Truncation).
	OutcomesBucket = messages.OutcomesBucket
)

// Topology describes the streams and buckets groupflow needs.
type Topology struct {
	Subjects messages.Subjects
	// Replicas of every stream and bucket: 1 embedded, 3 on a cluster.
	Replicas int
	// CommandDuplicates is the dedup window of the commands stream.
	CommandDuplicates time.Duration
	// EventDuplicates is the dedup window of the events stream. It is long
	// because event ids are deterministic: a republished event inside the
	// window is stored once.
	EventDuplicates time.Duration
	// CommandMaxAge and EventMaxAge bound how long messages are kept. The DLQ
	// has no age limit: a dead letter leaves it only by replay or purge.
	CommandMaxAge, EventMaxAge time.Duration
	// CommandMaxBytes, EventMaxBytes and DLQMaxBytes bound each stream's
	// size (defaults DefaultCommandMaxBytes, DefaultEventMaxBytes,
	// DefaultDLQMaxBytes). Every stream discards new messages when full, so
	// nothing stored is ever trimmed silently: a producer's publish fails
	// (commands), a completion is retried (events), a dead letter waits in
	// its stream while consumption of its type pauses (DLQ).
	CommandMaxBytes, EventMaxBytes, DLQMaxBytes int64
	// DLQMaxMsgs bounds the DLQ's message count (0 = no count limit).
	DLQMaxMsgs int64
	// OutcomesMaxAge bounds how long full outcomes are kept (0 = forever,
	// like the ledger records whose truncated events point at them).
	OutcomesMaxAge time.Duration
}

// Default stream sizes. The embedded server's file store must have room for
// their sum (2.5 GiB by default).
const (
	DefaultCommandMaxBytes int64 = 1 << 30
	DefaultEventMaxBytes   int64 = 1 << 30
	DefaultDLQMaxBytes     int64 = 512 << 20
)

// WithDefaults fills unset fields with the single-machine defaults.
func (t Topology) WithDefaults() Topology {
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	if t.CommandDuplicates <= 0 {
		t.CommandDuplicates = 2 * time.Minute
	}
	if t.EventDuplicates <= 0 {
		t.EventDuplicates = time.Hour
	}
	if t.CommandMaxAge <= 0 {
		t.CommandMaxAge = 7 * 24 * time.Hour
	}
	if t.EventMaxAge <= 0 {
		t.EventMaxAge = 7 * 24 * time.Hour
	}
	if t.CommandMaxBytes <= 0 {
		t.CommandMaxBytes = DefaultCommandMaxBytes
	}
	if t.EventMaxBytes <= 0 {
		t.EventMaxBytes = DefaultEventMaxBytes
	}
	if t.DLQMaxBytes <= 0 {
		t.DLQMaxBytes = DefaultDLQMaxBytes
	}
	return t
}

// StreamConfigs returns the configuration of the commands, events and
// dead-letter streams.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	t = t.WithDefaults()
	s := t.Subjects
	return []jetstream.StreamConfig{
		{
			Name:        s.CommandStream(),
			Description: "groupflow commands from upstream systems, and the schedules that publish commands",
			Subjects:    []string{s.Commands(), s.Schedules()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.CommandDuplicates,
			MaxAge:      t.CommandMaxAge,
			MaxBytes:    t.CommandMaxBytes,
			MaxMsgs:     -1,
			// Message schedules (nats-server 2.14+): a schedule must target a
			// subject of its own stream, so schedules live here, on
			// Schedules(). The server requires roll-ups (every schedule is a
			// per-subject roll-up) and refuses schedules with DiscardNew, so
			// a full stream drops its oldest messages: CommandMaxBytes must
			// hold CommandMaxAge of commands (the collector's
			// groupflow_stream_bytes shows how close it is). Schedules carry
			// "Nats-TTL: never" (AllowMsgTTL) so that MaxAge does not expire
			// a weekly schedule; fired commands have no TTL and age normally.
			// All four settings can be turned on by an in-place update of an
			// existing stream (none can be turned off again).
			Discard:           jetstream.DiscardOld,
			AllowMsgSchedules: true,
			AllowMsgTTL:       true,
			AllowRollup:       true,
		},
		{
			Name:        s.EventStream(),
			Description: "groupflow completion and member-selected events",
			Subjects:    []string{s.Events()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.EventDuplicates,
			MaxAge:      t.EventMaxAge,
			MaxBytes:    t.EventMaxBytes,
			MaxMsgs:     -1,
			// Full: publishing a completion fails and its command is retried
			// (answered from the ledger, no Wix work redone) rather than
			// deleting older events a consumer (the mailer) may not have read.
			Discard: jetstream.DiscardNew,
		},
		{
			Name:        s.DLQStream(),
			Description: "groupflow dead letters: commands that failed permanently or exhausted their deliveries",
			Subjects:    []string{s.DLQs()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  2 * time.Minute,
			MaxAge:      0, // never trimmed by age
			MaxBytes:    t.DLQMaxBytes,
			MaxMsgs:     dlqMaxMsgs(t.DLQMaxMsgs),
			// Full: the dead letter is refused; the runtime keeps the command
			// in its stream and pauses its type until there is room.
			Discard: jetstream.DiscardNew,
		},
	}
}

func dlqMaxMsgs(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// Provision creates or updates the streams, the ledger bucket and the reports
// and outcomes object stores. It is idempotent: every processor instance runs it at start.
func (t Topology) Provision(ctx context.Context, js jetstream.JetStream) error {
	t = t.WithDefaults()
	for _, cfg := range t.StreamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LedgerBucket,
		Description: "groupflow command ledger: progress checkpoints and outcomes, keyed by command id",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}); err != nil {
		return fmt.Errorf("provision kv %s: %w", LedgerBucket, err)
	}
	// Ledger reads must see the latest write: with direct gets a lagging
	// replica of an R3 bucket could answer "not found" for a checkpoint that
	// exists, so reads go through the stream leader. With one replica there
	// is no other copy: direct gets see every acknowledged write and cost
	// far less than the JSON API's message get (no API request, no base64).
	if err := setDirectGet(ctx, js, "KV_"+LedgerBucket, t.Replicas == 1); err != nil {
		return fmt.Errorf("provision kv %s: %w", LedgerBucket, err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ReportsBucket,
		Description: "groupflow rendered reports (HTML, CSV, JSON)",
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}); err != nil {
		return fmt.Errorf("provision object store %s: %w", ReportsBucket, err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      OutcomesBucket,
		Description: "groupflow full outcomes of completion events truncated to fit in one message",
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		TTL:         t.OutcomesMaxAge,
	}); err != nil {
		return fmt.Errorf("provision object store %s: %w", OutcomesBucket, err)
	}
	return nil
}

// setDirectGet turns direct gets on a stream on or off (idempotent).
func setDirectGet(ctx context.Context, js jetstream.JetStream, stream string, on bool) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowDirect == on {
		return nil
	}
	cfg.AllowDirect = on
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// Check reports whether every stream exists; /readyz uses it.
func (t Topology) Check(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range t.StreamConfigs() {
		if _, err := js.Stream(ctx, cfg.Name); err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ConsumerSpec configures the durable pull consumer of one command type.
type ConsumerSpec struct {
	// Durable is the consumer name (no dots).
	Durable string
	// FilterSubject selects the command subject.
	FilterSubject string
	// AckWait is how long the server waits for an ack (or a keep-alive)
	// before redelivering.
	AckWait time.Duration
	// MaxDeliver bounds deliveries; the runtime dead-letters a message on its
	// last delivery, so none is dropped.
	MaxDeliver int
	// MaxAckPending bounds messages in flight; sized to the handler's
	// concurrency so one instance cannot hog a backlog.
	MaxAckPending int
	// Description describes the consumer (default "groupflow handler for
	// <FilterSubject>").
	Description string
}

// DurableName is the consumer name of a command type's handler.
func DurableName(commandType string) string { return "groupflow_" + commandType }

// EnsureConsumer creates the durable consumer or updates its settings (an
// existing durable keeps its old config unless updated).
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, spec ConsumerSpec) (jetstream.Consumer, error) {
	if spec.Durable == "" || spec.FilterSubject == "" {
		return nil, errors.New("consumer spec needs a durable name and a filter subject")
	}
	if spec.Description == "" {
		spec.Description = "groupflow handler for " + spec.FilterSubject
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       spec.Durable,
		Description:   spec.Description,
		FilterSubject: spec.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    spec.MaxDeliver,
		MaxAckPending: spec.MaxAckPending,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", spec.Durable, stream, err)
	}
	return c, nil
}
