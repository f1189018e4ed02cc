// Package runtime runs groupflow's command handlers on a Watermill router fed
// by JetStream pull consumers, with the failure handling every workflow
// relies on: correlation and trace propagation, dead-lettering of invalid
// and permanently failing commands, in-process retries of transient errors
// with backoff, a handler timeout, panic recovery, keep-alive of long jobs,
// delayed redelivery, and answers from the ledger for commands already done.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"groupflow/internal/broker"
	"groupflow/internal/events"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/natsname"
	"groupflow/internal/trace"
	"groupflow/messages"
)

// Handler is a command handler as the runtime runs it: a TypedHandler
// wrapped by Adapt (the only implementation), which checks the payload type
// once for every handler. See TypedHandler for the contract.
type Handler interface {
	CommandType() string
	Handle(ctx context.Context, cmd *Command) (messages.Event, error)
	adapted()
}

// Command is a decoded, validated command with its delivery context.
type Command struct {
	Type          string
	ID            string
	CorrelationID string
	SiteID        string
	TraceParent   string
	Subject       string
	// Delivery counts deliveries of this message (1 on the first).
	Delivery int
	// StreamSeq is the message's sequence in the commands stream.
	StreamSeq uint64
	// Payload is the decoded command (*messages.ProvisionGroup, ...), its
	// meta filled with the id, site and correlation id above.
	Payload messages.Command
	// Raw is the body as received.
	Raw []byte
	// Lease is the command's lease and checkpoint store (Load, Checkpoint,
	// Calls: the command's Wix calls across attempts). Nil outside the
	// runtime: see Checkpoints.
	Lease *ledger.Lease
}

// Checkpoints returns the command's checkpoint store: its lease, or (a
// command run outside the runtime) a detached one kept in memory.
func (c *Command) Checkpoints() *ledger.Lease {
	if c.Lease == nil {
		c.Lease = ledger.Detached(c.Type, c.ID)
	}
	return c.Lease
}

// EventMeta returns the meta of an event caused by the command.
func (c *Command) EventMeta() messages.EventMeta {
	return messages.EventMeta{CommandID: c.ID, CorrelationID: c.CorrelationID, SiteID: c.SiteID, OccurredAt: time.Now().UTC()}
}

// Config tunes the runtime.
type Config struct {
	Subjects      messages.Subjects
	DefaultSiteID string
	// AckWait is the consumers' ack wait; messages in work are kept alive at
	// a third of it (default 30s).
	AckWait time.Duration
	// MaxDeliver bounds deliveries; the last one dead-letters (default 10).
	MaxDeliver int
	// HandlerTimeout bounds one handling attempt (default 1h: a
	// 100,000-member campaign at 200 Wix calls a minute takes about 15).
	HandlerTimeout time.Duration
	// Retries is how many times a transient failure is retried in-process
	// before the message is nacked for a delayed redelivery (default 2).
	Retries int
	// RetryInitial and RetryMax bound the in-process backoff (500ms, 5s).
	RetryInitial, RetryMax time.Duration
	// ShutdownGrace is how long shutdown waits for in-flight commands before
	// cancelling them (default 25s).
	ShutdownGrace time.Duration
	// NakDelay gives the redelivery delay after a failed delivery.
	NakDelay func(delivery int) time.Duration
	// DLQPollInterval is how often a dead letter refused by the full DLQ is
	// offered again (default 5s); meanwhile its type's consumption pauses.
	DLQPollInterval time.Duration
	// InFlightBytes bounds the command bodies in work at once across all
	// consumers (default DefaultInFlightBytes).
	InFlightBytes int64
	// Admission decides when a fetched command enters the lifecycle (nil:
	// NewFIFOAdmission bounded by InFlightBytes). See SourceConfig.
	Admission Admission
	// MaxInFlight is how many commands Admission runs at once over all
	// types (the app's --max-in-flight). When set, the commands' Source
	// holds at most DefaultMaxHeld(MaxInFlight) messages, of them at most
	// DefaultMaxRunnable(MaxInFlight) not parked behind their own site
	// (Parker), and each command consumer's MaxAckPending is the former
	// plus TopicReserve, so that on one instance this window, not the
	// server, bounds what is fetched (MaxAckPending is per durable, shared
	// by all instances: several instances share it too). Zero: no window;
	// each consumer's MaxAckPending is twice its handler slots.
	MaxInFlight int
	// MaxPayload is the largest message, headers included, that completion
	// events and their ledger records must fit in (default: the max_payload
	// the server announces; a smaller value suits a stream or bucket with a
	// lower message size limit).
	MaxPayload int64
	// Instance names this process in command leases (default
	// natsname.InstanceID(); the app passes the id it uses everywhere).
	Instance string
	// SiteRate gives a site's Wix rate in calls a minute, for the ETA of
	// progress snapshots (nil: no ETA).
	SiteRate func(siteID string) float64
}

func (c Config) withDefaults() Config {
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = time.Hour
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 2
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = 500 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 25 * time.Second
	}
	if c.NakDelay == nil {
		c.NakDelay = DefaultNakDelay
	}
	if c.DLQPollInterval <= 0 {
		c.DLQPollInterval = 5 * time.Second
	}
	if c.InFlightBytes <= 0 {
		c.InFlightBytes = DefaultInFlightBytes
	}
	if c.Instance == "" {
		c.Instance = natsname.InstanceID()
	}
	return c
}

// Deps are the runtime's collaborators.
type Deps struct {
	JS jetstream.JetStream
	// Publisher publishes events and dead letters (Watermill over JetStream).
	Publisher message.Publisher
	Events    *events.Publisher
	Ledger    *ledger.Ledger
	// Outcomes stores the full bodies of completion events truncated to fit
	// in one message; nil makes an oversized outcome a permanent failure.
	Outcomes *events.Outcomes
	Logger   *zap.Logger
	// Registerer receives router and command metrics; nil disables them.
	Registerer prometheus.Registerer
}

type registration struct {
	h           Handler
	concurrency int
}

// Runtime is the command processor.
type Runtime struct {
	cfg      Config
	deps     Deps
	log      *zap.Logger
	handlers map[string]registration
	router   *message.Router
	sub      *Source
	relaySub *Source // fired schedules (relay.go)
	// instance names this processor in command leases.
	instance string
	// active holds the commands this instance is working on: command type
	// and id -> *activeCopy.
	active  sync.Map
	metrics *commandMetrics
	// dlqGate pauses the topics whose dead letters wait for DLQ room.
	dlqGate *dlqGate
	// progress holds the progress of the commands in work (ephemeral).
	progress *ProgressRegistry
	// leases renews the leases of the commands in work.
	leases *leaseKeeper
}

// New returns a runtime; register handlers, then Run it.
func New(cfg Config, deps Deps) *Runtime {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	return &Runtime{
		progress: NewProgressRegistry(cfg.Instance, cfg.SiteRate),
		leases:   newLeaseKeeper(cfg.AckWait),
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger,
		handlers: map[string]registration{},
		metrics:  newCommandMetrics(deps.Registerer),
		dlqGate:  newDLQGate(deps.Registerer),
		instance: cfg.Instance,
	}
}

// Instance names this processor instance (in leases and progress answers).
func (r *Runtime) Instance() string { return r.instance }

// Progress returns the progress of the commands this instance works on.
func (r *Runtime) Progress() *ProgressRegistry { return r.progress }

// Register adds a handler made by Adapt that runs up to concurrency
// commands at once; the function Register does both steps.
func (r *Runtime) Register(h Handler, concurrency int) {
	r.handlers[h.CommandType()] = registration{h: h, concurrency: max(concurrency, 1)}
}

// Running is closed once the router runs.
func (r *Runtime) Running() <-chan struct{} {
	if r.router == nil {
		ch := make(chan struct{})
		return ch
	}
	return r.router.Running()
}

// WatermillLogger bridges Watermill's logs into zap (Watermill's info level
// is chatty: it is logged at debug). Its trace, debug and info calls cost
// nothing while zap's debug level is off: Watermill logs at trace for every
// message, and its slog adapter builds each call's fields before slog asks
// whether the level is on.
func WatermillLogger(log *zap.Logger) watermill.LoggerAdapter {
	log = log.Named("watermill")
	return quietAdapter{LoggerAdapter: watermill.NewSlogLoggerWithLevelMapping(
		slogFromZap(log),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug},
	), core: log.Core()}
}

// quietAdapter drops Watermill's calls logged at zap's debug level (trace,
// debug, info) while that level is off, before any of their fields is built,
// and logs its handler errors at debug (watermillHandlerError).
type quietAdapter struct {
	watermill.LoggerAdapter
	core zapcore.Core
}

// watermillHandlerError is Watermill's log line for each handler error. The
// runtime logs every failure itself, once, with the command id, correlation
// id and site, at the level its outcome calls for (a transient failure that
// will be redelivered is a warning): Watermill's line, an error without
// them, goes to debug.
const watermillHandlerError = "Handler returned error"

func (a quietAdapter) Error(msg string, err error, fields watermill.LogFields) {
	if msg == watermillHandlerError {
		if a.core.Enabled(zapcore.DebugLevel) {
			a.LoggerAdapter.Debug(msg, fields.Add(watermill.LogFields{"error": err}))
		}
		return
	}
	a.LoggerAdapter.Error(msg, err, fields)
}

func (a quietAdapter) Info(msg string, fields watermill.LogFields) {
	if a.core.Enabled(zapcore.DebugLevel) {
		a.LoggerAdapter.Info(msg, fields)
	}
}

func (a quietAdapter) Debug(msg string, fields watermill.LogFields) {
	if a.core.Enabled(zapcore.DebugLevel) {
		a.LoggerAdapter.Debug(msg, fields)
	}
}

func (a quietAdapter) Trace(msg string, fields watermill.LogFields) {
	if a.core.Enabled(zapcore.DebugLevel) {
		a.LoggerAdapter.Trace(msg, fields)
	}
}

func (a quietAdapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietAdapter{LoggerAdapter: a.LoggerAdapter.With(fields), core: a.core}
}

// consumerMaxDeliver is the consumers' delivery limit (ConsumerMaxDeliver).
func (r *Runtime) consumerMaxDeliver() int { return ConsumerMaxDeliver(r.cfg.MaxDeliver) }

// ConsumerMaxDeliver is the delivery limit of a consumer whose handler
// dead-letters a message itself after maxDeliver failed attempts (groupflow
// counts them in the ledger, groupmail by delivery): the extra deliveries
// absorb those given back by shutdowns and crashes, which are no failures,
// so that a last attempt cut short comes back and is settled — the
// consumer's own limit is only a backstop against a message that kills
// every process taking it.
func ConsumerMaxDeliver(maxDeliver int) int { return 2*maxDeliver + 5 }

// Build creates the router, its middleware and the consumers. Run calls it;
// tests may call it to inspect the router.
func (r *Runtime) build() error {
	maxHeld, maxRunnable := 0, 0
	if r.cfg.MaxInFlight > 0 {
		maxHeld, maxRunnable = DefaultMaxHeld(r.cfg.MaxInFlight), DefaultMaxRunnable(r.cfg.MaxInFlight)
	}
	sub := NewSource(r.deps.JS, SourceConfig{
		Stream:         r.cfg.Subjects.CommandStream(),
		Topics:         r.topics(maxHeld),
		NakDelay:       r.cfg.NakDelay,
		Grace:          r.cfg.ShutdownGrace,
		Paused:         r.dlqGate.paused,
		InFlightBytes:  r.cfg.InFlightBytes,
		Admission:      r.cfg.Admission,
		MaxHeld:        maxHeld,
		MaxRunnable:    maxRunnable,
		OnDone:         r.metrics.received,
		SettleInRouter: true,
	}, r.log.Named("subscriber"))
	r.metrics.watchSource(r.deps.Registerer, sub)

	router, err := r.newRouter()
	if err != nil {
		return err
	}
	for t, reg := range r.handlers {
		router.AddConsumerHandler("groupflow_"+t, r.cfg.Subjects.Command(t), sub, r.handle(reg.h))
	}
	router.AddConsumerHandler(UnknownCommandsDurable, r.cfg.Subjects.Commands(), sub, r.unknownCommands)
	r.relaySub = r.relaySource()
	router.AddConsumerHandler(RelayDurable, r.cfg.Subjects.FiredAll(), r.relaySub, r.relay)
	r.router = router
	r.sub = sub
	return nil
}

// topics are the command consumers: one per registered type (maxHeld: the
// Source's window, 0 if none) and one for commands of unknown types.
func (r *Runtime) topics(maxHeld int) map[string]Subscription {
	topics := map[string]Subscription{}
	for t, reg := range r.handlers {
		pending := 2 * reg.concurrency
		if maxHeld > 0 {
			pending = maxHeld + TopicReserve
		}
		topics[r.cfg.Subjects.Command(t)] = Subscription{
			Consumer: broker.ConsumerSpec{
				Durable:       broker.DurableName(t),
				FilterSubject: r.cfg.Subjects.Command(t),
				AckWait:       r.cfg.AckWait,
				MaxDeliver:    r.consumerMaxDeliver(),
				MaxAckPending: pending,
			},
			Concurrency: reg.concurrency,
		}
	}
	// The commands stream takes every groups.cmd.> subject, so a command of
	// an unknown type would sit there unseen: one more consumer reads them
	// all, acknowledges the known ones (their own consumers handle them) and
	// dead-letters the rest.
	topics[r.cfg.Subjects.Commands()] = Subscription{
		Consumer: broker.ConsumerSpec{
			Durable:       UnknownCommandsDurable,
			FilterSubject: r.cfg.Subjects.Commands(),
			AckWait:       r.cfg.AckWait,
			MaxDeliver:    r.cfg.MaxDeliver,
			MaxAckPending: 64,
		},
		Concurrency: 2,
	}
	return topics
}

// newRouter creates the router with its metrics and middleware, no handlers.
func (r *Runtime) newRouter() (*message.Router, error) {
	wlog := WatermillLogger(r.log)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.ShutdownGrace + 10*time.Second}, wlog)
	if err != nil {
		return nil, fmt.Errorf("watermill router: %w", err)
	}
	router.AddMiddleware(Settle) // outermost: it acts on the outcome Watermill sees
	if r.deps.Registerer != nil {
		// Not AddPrometheusRouterMetrics: its subscriber decorator starts a
		// goroutine per message to wait for its ack (thousands held at
		// once); the Sources count them instead (receivedCounter).
		mb := metrics.NewPrometheusMetricsBuilder(r.deps.Registerer, "groupflow", "router")
		router.AddPublisherDecorators(mb.DecoratePublisher)
		router.AddMiddleware(mb.NewRouterMiddleware().Middleware)
	}
	// Order matters: the first added is the outermost. Dead-lettering must
	// sit outside Retry, or Retry never runs (watermill#645).
	router.AddMiddleware(
		r.correlation,
		r.tracing,
		r.deadLetter,
		r.retry(wlog),
		middleware.Timeout(r.cfg.HandlerTimeout),
		r.recoverer,
	)
	return router, nil
}

// retry retries a transient failure in-process with backoff; a permanent
// one, a cancellation or a held lease is not retried.
func (r *Runtime) retry(wlog watermill.LoggerAdapter) message.HandlerMiddleware {
	return middleware.Retry{
		MaxRetries:          r.cfg.Retries,
		InitialInterval:     r.cfg.RetryInitial,
		MaxInterval:         r.cfg.RetryMax,
		Multiplier:          2,
		RandomizationFactor: 0.3,
		ResetContextOnRetry: true,
		ShouldRetry: func(p middleware.RetryParams) bool {
			var held *leaseHeldError
			return !failure.IsPermanent(p.Err) && !errors.Is(p.Err, context.Canceled) && !errors.As(p.Err, &held)
		},
		Logger: wlog,
	}.Middleware
}

// Run processes commands until ctx is cancelled, then shuts down gracefully:
// no new message is taken, in-flight ones finish (or are nacked after the
// grace period), and nothing acknowledged is lost.
func (r *Runtime) Run(ctx context.Context) error {
	if r.router == nil {
		if err := r.build(); err != nil {
			return err
		}
	}
	// The router runs on its own context: cancelling ctx must not cut the
	// subscriptions while messages are in work. Shutdown goes subscriber
	// first (stop fetching, let in-flight work finish within the grace
	// period, then cancel it so it nacks), router second.
	done := make(chan error, 1)
	go func() { done <- r.router.Run(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	r.log.Info("runtime stopping: no new commands; waiting for in-flight ones", zap.Duration("grace", r.cfg.ShutdownGrace))
	// Both sources stop fetching at once: closing one after the other would
	// let the commands keep flowing while the first waits for its workers.
	var closing sync.WaitGroup
	for _, src := range []*Source{r.sub, r.relaySub} {
		closing.Add(1)
		go func() { defer closing.Done(); _ = src.Close() }()
	}
	closing.Wait()
	if err := r.router.Close(); err != nil {
		r.log.Warn("router close", zap.Error(err))
	}
	return <-done
}

// Prepare builds the router without running it, so Running can be awaited
// before Run is called in another goroutine.
func (r *Runtime) Prepare() error {
	if r.router != nil {
		return nil
	}
	return r.build()
}

// correlation puts the command's identity in the message context for logs,
// events and the ledger, after checking it against the contract's limits
// (see checkMeta).
func (r *Runtime) correlation(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		subject := msg.Metadata.Get(MetaSubject)
		t, _ := r.cfg.Subjects.CommandTypeOf(subject)
		if !messages.IsCommandType(t) {
			// Any subject token, up to the control line: never put it in a
			// subject, metric label or header (the reason quotes it clipped).
			t = messages.UnknownCommandType
		}
		meta := bodyMeta(msg)
		info := trace.Info{
			CommandType:   t,
			CommandID:     msg.UUID,
			CorrelationID: firstNonEmpty(meta.CorrelationID, msg.Metadata.Get(events.HeaderCorrelationID), msg.Metadata.Get(middleware.CorrelationIDMetadataKey), msg.UUID),
			SiteID:        firstNonEmpty(meta.SiteID, r.cfg.DefaultSiteID),
			TraceParent:   msg.Metadata.Get(events.HeaderTraceParent),
		}
		ctx := msg.Context()
		if err := r.checkMeta(t, &info, meta.SiteID); err != nil {
			// The command fails validation in handle, before any ledger
			// access; until then (and in its dead letter and command_failed
			// event) it goes by ids that are safe to use.
			msg.UUID = info.CommandID
			ctx = context.WithValue(ctx, invalidMetaKey{}, err)
		}
		msg.SetContext(trace.With(ctx, info))
		return h(msg)
	}
}

// invalidMetaKey keys, in a message's context, the *messages.ValidationError
// of a command whose id, site or correlation id breaks the contract's limits.
type invalidMetaKey struct{}

// invalidMeta returns the error correlation found in the command's metadata, or nil.
func invalidMeta(ctx context.Context) error {
	err, _ := ctx.Value(invalidMetaKey{}).(error)
	return err
}

// checkMeta validates the id, site and correlation id the runtime resolved
// for a command (from its body or its headers: see commandID and
// correlation) against the contract's limits (messages.ValidateMeta). When
// one is invalid it returns the validation error, naming the field and its
// limit, and replaces the offending values in info with safe ones, so that
// the dead letter, its headers, the ledger record and the command_failed
// event can still be written: an invalid command id becomes
// messages.InvalidCommandID(id), an invalid correlation id the command id,
// an invalid site the default site.
func (r *Runtime) checkMeta(commandType string, info *trace.Info, site string) error {
	err := messages.ValidateMeta(firstNonEmpty(commandType, "unknown"), messages.CommandMeta{
		ID: info.CommandID, SiteID: site, CorrelationID: info.CorrelationID})
	if err == nil {
		return nil
	}
	if messages.CommandIDProblem(info.CommandID) != "" {
		info.CommandID = messages.InvalidCommandID(info.CommandID)
	}
	if messages.CorrelationIDProblem(info.CorrelationID) != "" {
		info.CorrelationID = info.CommandID
	}
	if messages.SiteIDProblem(site) != "" {
		info.SiteID = r.cfg.DefaultSiteID
	}
	return err
}

// recoverer turns a handler panic into a permanent error: a panic is a bug
// that a retry would hit again, so the command is dead-lettered with the
// panic as its reason and the processor stays up.
func (r *Runtime) recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		defer func() {
			if p := recover(); p != nil {
				trace.Logger(msg.Context(), r.log).Error("handler panicked", zap.Any("panic", p), zap.Stack("stack"))
				err = failure.Permanent(fmt.Errorf("handler panic: %v", p))
			}
		}()
		return h(msg)
	}
}

// answerCompleted answers a command found completed in the ledger (a
// redelivery after a lost ack, a replay, the same command sent again) with
// its recorded event.
func (r *Runtime) answerCompleted(ctx context.Context, rec *ledger.Record, start time.Time) error {
	if err := r.deps.Events.Republish(ctx, rec.EventType, rec.Event); err != nil {
		return err
	}
	trace.Logger(ctx, r.log).Info("command already completed; outcome event republished", zap.String("event_id", rec.EventID))
	r.metrics.handled(rec.CommandType, "duplicate", time.Since(start))
	return nil
}

// lease is how long a command's lease lasts without renewal: the consumers'
// AckWait, after which the server would redeliver an unacknowledged command
// anyway.
func (r *Runtime) lease() time.Duration { return r.cfg.AckWait }

// leaseHeldError says another instance holds the command's lease: the
// message is given back for later, and it is no failure of the command.
type leaseHeldError struct {
	owner string
	until time.Time
	// duplicateCopy: the held message is another message with the same
	// command id (re-sent), not the one the owner works on. It is
	// acknowledged: the running copy publishes the outcome, and if its
	// owner dies, its own message is redelivered.
	duplicateCopy bool
}

// retryIn is when the lease will have expired if not renewed.
func (e *leaseHeldError) retryIn() time.Duration {
	if e.until.IsZero() {
		return time.Second
	}
	return max(time.Until(e.until), 0) + time.Second
}

func (e *leaseHeldError) Error() string {
	return (&ledger.HeldError{Owner: e.owner, Until: e.until}).Error()
}

// UnknownCommandsDurable is the consumer that dead-letters commands of
// unknown types.
const UnknownCommandsDurable = "groupflow_unknown_commands"

// unknownCommands acknowledges commands of the types the contract defines
// (their own consumers handle them) and dead-letters (permanently) the rest.
func (r *Runtime) unknownCommands(msg *message.Message) error {
	if isSchedule(msg) {
		return r.deleteSchedule(msg) // schedules.go
	}
	// Known to the contract, not to this instance's handler map: during a
	// rolling deploy another instance may serve a type this one lacks.
	t, ok := r.cfg.Subjects.CommandTypeOf(msg.Metadata.Get(MetaSubject))
	if ok && messages.IsCommandType(t) {
		return nil
	}
	return &messages.UnknownCommandError{CommandType: t}
}

// handle is the innermost handler: decode, acquire the command's lease (or
// answer from the ledger), run the handler, complete. A failure is recorded
// by the deadLetter middleware, through the lease handle leaves in the
// message's context (see leaseSlot).
func (r *Runtime) handle(h Handler) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		start := time.Now()
		cmd, err := r.decode(ctx, h.CommandType(), msg)
		if err != nil {
			return err // permanent: dead-lettered by the middleware
		}
		// One copy of a command at a time in this instance too, until its
		// outcome is recorded: a copy arriving after that is answered from it.
		activeKey, mine := cmd.Type+"\x00"+cmd.ID, newActiveCopy(cmd.StreamSeq)
		if held, busy := r.active.LoadOrStore(activeKey, mine); busy {
			return held.(*activeCopy).busy(ctx, cmd.StreamSeq)
		}
		inactive := func() {
			if r.active.CompareAndDelete(activeKey, mine) {
				close(mine.done)
			}
		}
		defer inactive()
		prog := r.progress.Start(cmd.Type, cmd.ID, cmd.SiteID)
		defer r.progress.Finish(prog)

		lease, done, err := r.acquire(ctx, cmd)
		if err != nil || done != nil {
			if done != nil {
				return r.answerCompleted(ctx, done, start)
			}
			return err
		}
		slotFrom(ctx).set(lease)
		close(mine.acquired)
		evt, err := r.run(ctx, h, cmd, lease, prog)
		if err != nil {
			return err
		}
		return r.complete(ctx, lease, evt, start, inactive)
	}
}

// activeCopy is the message of a command this instance works on.
type activeCopy struct {
	seq      uint64
	acquired chan struct{} // closed once it holds the command's lease
	done     chan struct{} // closed once its outcome is recorded, or it failed
}

func newActiveCopy(seq uint64) *activeCopy {
	return &activeCopy{seq: seq, acquired: make(chan struct{}), done: make(chan struct{})}
}

// busy answers another delivery (of message seq) of the command. It waits,
// in memory and without spending a delivery, until this copy holds the
// lease or is done (or ctx ends): a second copy (another message) is then
// acknowledged if this one holds the lease (the running copy publishes the
// outcome); otherwise — this one failed to acquire it, or the delivery is
// of the same message — it is given back once, and its redelivery asks the
// ledger.
func (a *activeCopy) busy(ctx context.Context, seq uint64) error {
	var acquired <-chan struct{}
	if seq != a.seq {
		acquired = a.acquired
	}
	select {
	case <-acquired:
		return &leaseHeldError{owner: "this instance", duplicateCopy: true}
	case <-a.done:
	case <-ctx.Done():
	}
	return &leaseHeldError{owner: "this instance"}
}

// decode checks, decodes and validates the message into a Command. An id,
// site or correlation id over the contract's limits could make a ledger
// key, subject or header NATS refuses: it is refused (permanently) before
// the ledger or Wix are touched, as is an invalid body.
func (r *Runtime) decode(ctx context.Context, t string, msg *message.Message) (*Command, error) {
	if err := invalidMeta(ctx); err != nil {
		return nil, err
	}
	info := trace.From(ctx)
	payload, err := messages.Decode(t, msg.Payload)
	if err != nil {
		return nil, err
	}
	if err := r.checkEchoSize(t, payload); err != nil {
		return nil, err
	}
	meta := payload.Meta()
	meta.ID, meta.SiteID, meta.CorrelationID = info.CommandID, info.SiteID, info.CorrelationID
	delivery, _ := strconv.Atoi(msg.Metadata.Get(MetaDelivery))
	seq, _ := strconv.ParseUint(msg.Metadata.Get(MetaStreamSeq), 10, 64)
	return &Command{
		Type: t, ID: info.CommandID, CorrelationID: info.CorrelationID, SiteID: info.SiteID,
		TraceParent: info.TraceParent, Subject: msg.Metadata.Get(MetaSubject),
		Delivery: delivery, StreamSeq: seq, Payload: payload, Raw: msg.Payload,
	}, nil
}

// acquire takes the command's lease (see ledger.Acquire), or returns the
// completed record to answer from.
func (r *Runtime) acquire(ctx context.Context, cmd *Command) (*ledger.Lease, *ledger.Record, error) {
	lease, done, err := r.deps.Ledger.Acquire(ctx, ledger.Claim{
		CommandType: cmd.Type, CommandID: cmd.ID, Subject: cmd.Subject, Delivery: cmd.Delivery,
		Seq: cmd.StreamSeq, Owner: r.instance, TTL: r.lease(),
		After: slotFrom(ctx).get(), // the previous in-process attempt (Retry), if any
	})
	var held *ledger.HeldError
	var coll *ledger.CollisionError
	switch {
	case errors.As(err, &held):
		return nil, nil, &leaseHeldError{owner: held.Owner, until: held.Until, duplicateCopy: held.DuplicateCopy}
	case errors.As(err, &coll):
		// Never answer one command with another's outcome.
		return nil, nil, failure.Permanent(err)
	case err != nil:
		return nil, nil, fmt.Errorf("acquire: %w", err)
	}
	return lease, done, nil
}

// run runs the handler under the lease, keeping the lease alive. Its Wix
// calls are counted once, by the command's progress, and the lease adds
// them to the command's count.
func (r *Runtime) run(ctx context.Context, h Handler, cmd *Command, lease *ledger.Lease, prog *Progress) (messages.Event, error) {
	log := trace.Logger(ctx, r.log)
	log.Info("handling command", zap.Int("delivery", cmd.Delivery))
	lease.CountCalls(prog.calls.Load)
	cmd.Lease = lease
	workCtx, lost, stopLease := r.leases.keep(withProgress(ctx, prog), lease, log)
	evt, err := h.Handle(workCtx, cmd)
	stopLease()
	switch {
	case lost() || errors.Is(err, ledger.ErrLost):
		return nil, &leaseHeldError{owner: "another instance (lease lost while working)"}
	case err != nil:
		return nil, err
	case evt == nil:
		return nil, failure.Permanent(errors.New("handler returned no completion event"))
	}
	return evt, nil
}

// complete records the outcome, then (recorded called) publishes it: after
// a crash in between, the redelivery finds it recorded and republishes the
// same event.
func (r *Runtime) complete(ctx context.Context, lease *ledger.Lease, evt messages.Event, start time.Time, recorded func()) error {
	// The event, truncated if it would not fit in one message.
	wm, evt, out, err := r.completion(ctx, lease, evt)
	if err != nil {
		return err
	}
	if err := lease.Complete(ctx, out); err != nil {
		if errors.Is(err, ledger.ErrLost) {
			return &leaseHeldError{owner: "another instance (lease lost before completion)"}
		}
		return fmt.Errorf("record outcome: %w", err)
	}
	recorded()
	if err := r.deps.Events.PublishMessage(evt.EventType(), wm); err != nil {
		return err
	}
	lease.Prune(ctx)
	trace.Logger(ctx, r.log).Info("command completed", zap.String("event_id", evt.EventID()), zap.Duration("took", time.Since(start)))
	r.metrics.handled(lease.Record().CommandType, "completed", time.Since(start))
	return nil
}

// leaseSlot carries, in a message's context, the lease handle acquired, so
// the deadLetter middleware records a failure through it.
type leaseSlot struct {
	mu    sync.Mutex
	lease *ledger.Lease
}

type leaseSlotKey struct{}

func withSlot(ctx context.Context) (context.Context, *leaseSlot) {
	s := &leaseSlot{}
	return context.WithValue(ctx, leaseSlotKey{}, s), s
}

// slotFrom returns the slot in ctx (a throwaway one outside deadLetter).
func slotFrom(ctx context.Context) *leaseSlot {
	if s, ok := ctx.Value(leaseSlotKey{}).(*leaseSlot); ok {
		return s
	}
	return &leaseSlot{}
}

func (s *leaseSlot) set(l *ledger.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease = l
}

func (s *leaseSlot) get() *ledger.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
