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
	// DefaultDLQMaxBytes). Every stream but the schedules stream (see
	// scheduleStream) discards new messages when full, so
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

// DefaultMaxAge is how long the commands and events streams keep a message
// by default (CommandMaxAge, EventMaxAge).
const DefaultMaxAge = 7 * 24 * time.Hour

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
		t.CommandMaxAge = DefaultMaxAge
	}
	if t.EventMaxAge <= 0 {
		t.EventMaxAge = DefaultMaxAge
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

// StreamConfigs returns the configuration of the commands, schedules,
// events and dead-letter streams.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	t = t.WithDefaults()
	s := t.Subjects
	return []jetstream.StreamConfig{
		{
			Name:        s.CommandStream(),
			Description: "groupflow commands from upstream systems and from the schedule relay",
			Subjects:    []string{s.Commands()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  t.CommandDuplicates,
			MaxAge:      t.CommandMaxAge,
			MaxBytes:    t.CommandMaxBytes,
			MaxMsgs:     -1,
			// Full: a producer's publish fails with an error (and the relay
			// of a fired schedule retries) rather than the oldest
			// unprocessed commands being dropped. This is why schedules
			// live in a stream of their own: nats-server refuses message
			// schedules on a discard-new stream.
			Discard: jetstream.DiscardNew,
		},
		t.scheduleStream(),
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

// Schedule stream bounds: schedules and their fired copies only.
const (
	DefaultScheduleMaxBytes int64 = 256 << 20
	// ScheduleMaxMsgsPerSubject bounds the fired copies kept per schedule
	// (each schedule fires on a subject of its own, messages.Subjects.Fired).
	ScheduleMaxMsgsPerSubject int64 = 1000
)

// scheduleStream holds the JetStream message schedules (Schedules()) and
// the messages they fire (FiredAll(); the server requires a schedule's
// target to be in the schedule's stream). nats-server refuses schedules
// with discard-new (in any form: discard-new-per-subject needs discard-new
// too) and requires roll-ups, so this stream discards old. That is safe
// here, unlike on the commands stream: a schedule subject holds one message
// (every schedule is a per-subject roll-up) exempt from MaxAge by
// "Nats-TTL: never"; each schedule fires on a subject of its own, and
// MaxMsgsPerSubject trims only that schedule's oldest fired copies, which
// the relay has normally republished to the commands stream within
// milliseconds (an unrelayed one is lost only if a processor is down for
// ScheduleMaxMsgsPerSubject fires of one schedule, or for MaxAge); MaxBytes
// (DefaultScheduleMaxBytes) holds thousands of schedules of at most 64 KiB
// before the stream-wide limit drops anything.
func (t Topology) scheduleStream() jetstream.StreamConfig {
	s := t.Subjects
	return jetstream.StreamConfig{
		Name:              s.ScheduleStream(),
		Description:       "groupflow message schedules (groupctl schedule) and the commands they fire, relayed to the commands stream",
		Subjects:          []string{s.Schedules(), s.FiredAll()},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          t.Replicas,
		Duplicates:        2 * time.Minute,
		MaxAge:            t.CommandMaxAge,
		MaxBytes:          DefaultScheduleMaxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: ScheduleMaxMsgsPerSubject,
		Discard:           jetstream.DiscardOld,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true,
		AllowRollup:       true,
	}
}

// ObjectChunkSize is the chunk size for an object store on a broker whose
// max payload is maxPayload bytes (0 or less: unknown): the object store's
// default of 128 KiB, or half the max payload when that is smaller (so a
// chunk and its headers fit one message), but never under 4 KiB. With the
// default, every object over 128 KiB was refused ("maximum payload
// exceeded") by a broker taking less. Cost: ⌈size/chunk⌉ publishes an object.
func ObjectChunkSize(maxPayload int64) uint32 {
	const def, floor = 128 << 10, 4 << 10
	if maxPayload <= 0 {
		return def
	}
	return uint32(min(max(maxPayload/2, floor), def))
}

// Provision creates or updates the streams, the ledger bucket and the reports
// and outcomes object stores. It is idempotent: every processor instance runs it at start.
func (t Topology) Provision(ctx context.Context, js jetstream.JetStream) error {
	t = t.WithDefaults()
	for _, cfg := range t.StreamConfigs() {
		if cfg.Name == t.Subjects.CommandStream() {
			cfg = keepSticky(ctx, js, cfg)
		}
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

// keepSticky adapts the commands stream's config to what an existing
// stream allows. A commands stream made by a build that kept schedules in
// it (AllowMsgSchedules, AllowMsgTTL, discard-old) cannot be put back in
// place: nats-server refuses to turn message schedules or TTLs off ("can
// not be disabled") and refuses discard-new with schedules. Such a stream
// keeps those three settings (and so still discards old when full) and
// loses only the schedule subjects, which move to the schedules stream;
// schedules already stored in it keep firing on their command subjects
// (fired ids as before). Recreating it with discard-new needs the stream
// drained and deleted (see README).
func keepSticky(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.StreamConfig {
	st, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		return cfg // new stream (or an error CreateOrUpdateStream reports)
	}
	old := st.CachedInfo().Config
	if old.AllowMsgSchedules {
		cfg.AllowMsgSchedules, cfg.AllowRollup, cfg.Discard = true, true, jetstream.DiscardOld
	}
	cfg.AllowMsgTTL = cfg.AllowMsgTTL || old.AllowMsgTTL
	return cfg
}

// StickyDiscardOld reports whether the commands stream is one keepSticky
// had to leave discarding old messages (made by a build with schedules in it).
func (t Topology) StickyDiscardOld(ctx context.Context, js jetstream.JetStream) bool {
	st, err := js.Stream(ctx, t.Subjects.CommandStream())
	return err == nil && st.CachedInfo().Config.AllowMsgSchedules
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
