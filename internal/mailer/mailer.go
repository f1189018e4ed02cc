package mailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	netmail "net/mail"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wneessen/go-mail"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/failure"
	"groupflow/internal/kvclock"
	"groupflow/internal/natsname"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// DefaultDurable is the consumer name.
const DefaultDurable = "groupmail"

// Config configures the mailer. Zero values take the defaults noted.
type Config struct {
	// Subjects is groupflow's subject scheme (default prefix "groups").
	Subjects messages.Subjects
	// Durable is the consumer name on the events stream (default "groupmail").
	Durable string
	// Store configures the KV bucket of send records (default GROUPMAIL_SENT).
	Store StoreConfig
	// Templates is the template directory.
	Templates string
	// From is the sender, "Name <addr@domain>" or "addr@domain". Required.
	From string
	// UnsubscribeURL is a text/template of the List-Unsubscribe URL with
	// the query-escaped .MemberID, .CampaignID, .ContactID and .EventID;
	// empty means no List-Unsubscribe header.
	UnsubscribeURL string
	// MessageIDDomain is the right side of Message-ID (default: From's domain).
	MessageIDDomain string
	// Rate is the sends per second (0 = unlimited); Burst the bucket size (default 1).
	Rate  float64
	Burst int
	// Concurrency is the number of events handled at once (default 4).
	Concurrency int
	// MaxDeliver bounds deliveries of an event (default 10); the last one
	// dead-letters instead of failing again. It is groupmail's own bound,
	// not the consumer's (see consumerMaxDeliver).
	MaxDeliver int
	// AckWait is the consumer's ack wait (default 30s); messages being
	// handled are kept alive every AckWait/3.
	AckWait time.Duration
	// ClaimTimeout is when a "sending" claim counts as left by a crashed
	// instance and is taken over (default 5m), its age read on the server's
	// clock (Store.ServerNow). See the package doc. It must
	// exceed SendTimeout + 1.5 × RetryMax (one attempt and the randomized
	// wait before the next refresh of the claim); New refuses less.
	ClaimTimeout time.Duration
	// SendTimeout bounds one SMTP attempt (default 60s).
	SendTimeout time.Duration
	// SendAttempts is the number of SMTP attempts per delivery (default 3),
	// RetryInitial and RetryMax the backoff between them (default 500ms, 10s).
	SendAttempts           int
	RetryInitial, RetryMax time.Duration
	// NakDelay gives the redelivery delay after the n-th delivery failed
	// transiently (default runtime.DefaultNakDelay, groupflow's own).
	NakDelay func(delivery int) time.Duration
	// FetchWait bounds one pull request (default 1s).
	FetchWait time.Duration
	// ShutdownGrace is how long Run waits for in-flight events after its
	// context is cancelled (default 20s). After it, work not yet sending is
	// abandoned unacknowledged (redelivered after AckWait); a negative value
	// abandons at once (a crash as far as the broker can tell).
	ShutdownGrace time.Duration
	// Source is the CloudEvents source of email_sent/email_failed (default "groupmail").
	Source string
	// Instance names this process in claims (default host-pid-random).
	Instance string

	// now is this instance's clock (default time.Now); tests set it
	// through export_test.go to run an instance whose clock is off.
	now func() time.Time
}

// Deps are the mailer's collaborators.
type Deps struct {
	JS jetstream.JetStream
	// Publisher is the Watermill publisher over JetStream (see
	// events.NewJetStreamPublisher) for events and dead letters.
	Publisher message.Publisher
	// Sender sends the emails (NewSMTPSender).
	Sender Sender
	Logger *zap.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Mailer consumes member_selected events and sends one email per event id.
type Mailer struct {
	cfg      Config
	deps     Deps
	log      *zap.Logger
	renderer *Renderer
	unsub    *UnsubscribeTemplate
	from     *netmail.Address
	domain   string
	limiter  *rate.Limiter
	events   *events.Publisher
	metrics  *metrics

	store *Store

	// abortCtx is cancelled by Abort, or when the shutdown grace is over.
	abortCtx context.Context
	abort    context.CancelFunc
}

// positive sets *v to def unless it is positive.
func positive[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// withDefaults fills in the defaults the Config fields note.
func (c Config) withDefaults() Config {
	positive(&c.Burst, 1)
	positive(&c.Concurrency, 4)
	positive(&c.MaxDeliver, 10)
	positive(&c.AckWait, 30*time.Second)
	positive(&c.ClaimTimeout, 5*time.Minute)
	positive(&c.SendTimeout, 60*time.Second)
	positive(&c.SendAttempts, 3)
	positive(&c.RetryInitial, 500*time.Millisecond)
	positive(&c.RetryMax, 10*time.Second)
	positive(&c.FetchWait, time.Second)
	if c.NakDelay == nil {
		c.NakDelay = runtime.DefaultNakDelay
	}
	if c.ShutdownGrace == 0 { // negative: abandon at once
		c.ShutdownGrace = 20 * time.Second
	}
	if c.Source == "" {
		c.Source = "groupmail"
	}
	if c.Instance == "" {
		c.Instance = natsname.InstanceID()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Bounds of the counts in Config: each costs memory or goroutines (a
// concurrency slot, a consumer's MaxAckPending of 2 × Concurrency), or
// repeats work on every delivery.
const (
	MaxConcurrency  = 1024
	MaxBurst        = 10000
	MaxSendAttempts = 20
	MaxMaxDeliver   = 1000
)

// checkBounds refuses a negative Rate (it read as unlimited) and counts
// past their bounds, naming the flag.
func (c Config) checkBounds() error {
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("mailer: rate %v must be a number of emails per second, 0 for unlimited (--rate)", c.Rate)
	case c.Concurrency > MaxConcurrency:
		return fmt.Errorf("mailer: concurrency %d is more than %d (--concurrency)", c.Concurrency, MaxConcurrency)
	case c.Burst > MaxBurst:
		return fmt.Errorf("mailer: burst %d is more than %d (--burst)", c.Burst, MaxBurst)
	case c.SendAttempts > MaxSendAttempts:
		return fmt.Errorf("mailer: send attempts %d are more than %d (--send-attempts)", c.SendAttempts, MaxSendAttempts)
	case c.MaxDeliver > MaxMaxDeliver:
		return fmt.Errorf("mailer: max deliver %d is more than %d (--max-deliver)", c.MaxDeliver, MaxMaxDeliver)
	}
	return nil
}

// New checks cfg and builds a mailer; Prepare then Run it.
func New(cfg Config, deps Deps) (*Mailer, error) {
	if deps.JS == nil || deps.Publisher == nil || deps.Sender == nil {
		return nil, errors.New("mailer: JS, Publisher and Sender are required")
	}
	if cfg.Durable == "" {
		cfg.Durable = DefaultDurable
	}
	if strings.ContainsAny(cfg.Durable, ".*> \t") {
		return nil, fmt.Errorf("mailer: invalid consumer name %q", cfg.Durable)
	}
	if cfg.Templates == "" {
		return nil, errors.New("mailer: a template directory is required")
	}
	if st, err := os.Stat(cfg.Templates); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("mailer: template directory %q is not a readable directory", cfg.Templates)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: from address %q: %w", cfg.From, err)
	}
	if cfg.MessageIDDomain == "" {
		cfg.MessageIDDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	unsub, err := ParseUnsubscribe(cfg.UnsubscribeURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.checkBounds(); err != nil {
		return nil, err
	}
	if longest := cfg.SendTimeout + cfg.RetryMax*3/2; cfg.ClaimTimeout <= longest {
		// A claim is refreshed only between attempts: one that outlives
		// ClaimTimeout is taken over by any copy of the event, which sends
		// it again while the first attempt is still waiting for its server.
		return nil, fmt.Errorf("mailer: claim timeout %s must exceed one SMTP attempt and the wait before the next (%s + %s): a slow but live send would have its claim taken over and the email sent twice (raise --claim-timeout or lower --smtp-timeout)",
			cfg.ClaimTimeout, cfg.SendTimeout, cfg.RetryMax*3/2)
	}
	log := deps.Logger
	if log == nil {
		log = zap.NewNop()
	}
	lim := rate.NewLimiter(rate.Inf, cfg.Burst)
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	met, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mailer metrics: %w", err)
	}
	abortCtx, abort := context.WithCancel(context.Background())
	return &Mailer{
		abortCtx: abortCtx, abort: abort,
		cfg: cfg, deps: deps, log: log, renderer: NewRenderer(cfg.Templates), unsub: unsub,
		from: from, domain: cfg.MessageIDDomain, limiter: lim, metrics: met,
		events: events.NewPublisher(deps.Publisher, cfg.Subjects, cfg.Source),
	}, nil
}

// Renderer returns the template renderer (Reset reloads the templates).
func (m *Mailer) Renderer() *Renderer { return m.renderer }

// Stats returns the counters since New.
func (m *Mailer) Stats() Stats { return m.metrics.stats() }

// consumerMaxDeliver is the consumers' delivery limit: above MaxDeliver,
// the mailer's own count (it dead-letters an event on its MaxDeliver-th
// delivery), so that a delivery at or past it that ends otherwise — given
// back by a shutdown or a crash, or nacked because its dead letter could
// not be stored — is delivered again instead of dropped (no email, no dead
// letter, no email_failed); the same backstop as groupflow's consumers.
func (m *Mailer) consumerMaxDeliver() int { return runtime.ConsumerMaxDeliver(m.cfg.MaxDeliver) }

// consumerSpec is the durable consumer the mailer reads: only
// member_selected events of GROUPS_EVENTS (not its own email_* events).
func (m *Mailer) consumerSpec() broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Durable:       m.cfg.Durable,
		Description:   "groupmail: sends one email per member_selected event",
		FilterSubject: m.cfg.Subjects.Event(messages.EvtMemberSelected),
		AckWait:       m.cfg.AckWait,
		MaxDeliver:    m.consumerMaxDeliver(),
		MaxAckPending: 2 * m.cfg.Concurrency,
	}
}

// Prepare opens the KV bucket and creates (or updates) the consumer. The
// events stream itself must exist (groupflow provisions it).
//
// It refuses a send-record TTL shorter than the events stream's MaxAge: a
// delivery of a stored event after its record expired (a re-created
// consumer, a redelivery) would mail it again.
func (m *Mailer) Prepare(ctx context.Context) error {
	if err := m.checkRecordTTL(ctx); err != nil {
		return err
	}
	st, err := OpenStore(ctx, m.deps.JS, m.cfg.Store)
	if err != nil {
		return err
	}
	for _, spec := range []broker.ConsumerSpec{m.consumerSpec(), m.reportConsumerSpec()} {
		if _, err := broker.EnsureConsumer(ctx, m.deps.JS, m.cfg.Subjects.EventStream(), spec); err != nil {
			return err
		}
	}
	m.store = st
	return nil
}

// checkRecordTTL compares the send records' TTL with the events stream's
// MaxAge (a stream keeping events for ever is only warned about: every TTL
// is shorter).
func (m *Mailer) checkRecordTTL(ctx context.Context) error {
	ttl := m.cfg.Store.TTL
	if ttl <= 0 {
		ttl = DefaultRecordTTL
	}
	name := m.cfg.Subjects.EventStream()
	st, err := m.deps.JS.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("events stream %s: %w", name, err)
	}
	switch maxAge := st.CachedInfo().Config.MaxAge; {
	case maxAge == 0:
		m.log.Warn("the events stream keeps events for ever: a stored event delivered after its send record expired is mailed again",
			zap.String("stream", name), zap.Duration("record_ttl", ttl))
	case ttl < maxAge:
		return fmt.Errorf("mailer: send records kept %s, less than the %s the events stream %s keeps events: an event delivered after its record expired would be mailed again (raise the record TTL, --kv-ttl)",
			ttl, maxAge, name)
	}
	return nil
}

// Ready reports whether the consumer and the bucket answer (for /readyz).
func (m *Mailer) Ready(ctx context.Context) error {
	if m.store == nil {
		return errors.New("not prepared")
	}
	if _, err := m.deps.JS.Consumer(ctx, m.cfg.Subjects.EventStream(), m.cfg.Durable); err != nil {
		return fmt.Errorf("consumer %s: %w", m.cfg.Durable, err)
	}
	if _, err := m.deps.JS.KeyValue(ctx, m.store.Bucket()); err != nil {
		return fmt.Errorf("kv %s: %w", m.store.Bucket(), err)
	}
	return nil
}

// Abort stops the mailer at once, as a crash would as far as the broker
// can tell: in-flight events are left unacknowledged (redelivered after
// AckWait) and no further event is published. Only an SMTP attempt in
// progress completes, and its result is recorded (see the package doc). Run
// returns once its context is cancelled too. A mailer cannot run again
// after Abort.
func (m *Mailer) Abort() { m.abort() }

// Run handles events until ctx is cancelled, then stops fetching and waits
// up to ShutdownGrace for in-flight events (see Config.ShutdownGrace). It
// runs on groupflow's consumer runtime: a Watermill router (panic recovery)
// fed by a runtime.Source (fetch, keep-alive, ack, nak with a delay), with
// two handlers: member mails (member_selected) and report mails
// (report_generated, report_mail.go), each dead-lettering and announcing
// (email_failed) what it cannot send.
func (m *Mailer) Run(ctx context.Context) error {
	if m.store == nil {
		if err := m.Prepare(ctx); err != nil {
			return err
		}
	}
	abortCtx, abort := m.abortCtx, m.abort
	defer abort()
	topic := m.cfg.Subjects.Event(messages.EvtMemberSelected)
	reports := m.cfg.Subjects.Event(messages.EvtReportGenerated)
	src := runtime.NewSource(m.deps.JS, runtime.SourceConfig{
		Stream: m.cfg.Subjects.EventStream(),
		Topics: map[string]runtime.Subscription{
			topic:   {Consumer: m.consumerSpec(), Concurrency: m.cfg.Concurrency},
			reports: {Consumer: m.reportConsumerSpec(), Concurrency: 1},
		},
		NakDelay:  m.cfg.NakDelay,
		FetchWait: m.cfg.FetchWait,
		Grace:     max(m.cfg.ShutdownGrace, time.Millisecond),
		// runtime.Settle is the router's outermost middleware (below).
		SettleInRouter: true,
	}, m.log.Named("source"))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: max(m.cfg.ShutdownGrace, 0) + 10*time.Second},
		runtime.WatermillLogger(m.log))
	if err != nil {
		return fmt.Errorf("watermill router: %w", err)
	}
	router.AddMiddleware(runtime.Settle, middleware.Recoverer)
	router.AddConsumerHandler(m.cfg.Durable, topic, src, m.handle(abortCtx, messages.EvtMemberSelected, m.process))
	router.AddConsumerHandler(ReportDurable, reports, src, m.handle(abortCtx, messages.EvtReportGenerated, m.processReport))
	// The router runs on its own context, as groupflow's: shutdown goes
	// Source first (stop fetching, let in-flight work finish), router second.
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-done:
		_ = src.Close()
		return err
	}
	m.log.Info("groupmail running", zap.String("consumer", m.cfg.Durable), zap.String("subject", topic),
		zap.Int("concurrency", m.cfg.Concurrency), zap.Float64("rate", m.cfg.Rate),
		zap.String("bucket", m.store.Bucket()), zap.String("instance", m.cfg.Instance))
	select {
	case <-ctx.Done():
	case err := <-done:
		_ = src.Close()
		return err
	}
	if m.cfg.ShutdownGrace < 0 {
		abort()
	}
	// After the grace period the Source cancels the messages' contexts:
	// handle then abandons what is not sending yet.
	_ = src.Close()
	if err := router.Close(); err != nil {
		m.log.Warn("router close", zap.Error(err))
	}
	return <-done
}

// outcome is what happens to a delivery.
type outcome struct {
	kind  int // ack, nak or abandon
	delay time.Duration
}

const (
	doAck = iota
	doNak
	doAbandon
)

func ack() outcome                { return outcome{kind: doAck} }
func nak(d time.Duration) outcome { return outcome{kind: doNak, delay: d} }
func abandon() outcome            { return outcome{kind: doAbandon} }

// delivery is one message being handled.
type delivery struct {
	msg     *message.Message // from the Source: headers and delivery metadata
	subject string
	seq     uint64                   // stream sequence
	n       int                      // delivery count
	last    bool                     // n >= MaxDeliver
	kind    string                   // the event type: member_selected or report_generated
	ev      *messages.MemberSelected // member mails
	report  *messages.ReportGenerated
	eventID string
	prev    *Entry // the record read at the start
	log     *zap.Logger
	// msgID is the email's Message-ID, template its template (once rendered).
	msgID, template string
}

// handle runs one message handed over by the Source and answers it: ack,
// nak with a delay, or abandon (left unacknowledged, as a crash would).
//
// It is the router's handler: nil acks; an error nacks, with the delay in
// runtime.MetaNakDelay, or abandons (runtime.MetaAbandon).
func (m *Mailer) handle(abortCtx context.Context, kind string, process func(context.Context, *delivery) outcome) message.NoPublishHandlerFunc {
	return func(wm *message.Message) error {
		m.metrics.inFlight.Inc()
		defer m.metrics.inFlight.Dec()
		ctx, cancel := context.WithCancel(abortCtx)
		defer cancel()
		defer context.AfterFunc(wm.Context(), cancel)() // the shutdown grace is over

		dl := runtime.DeliveryOf(wm)
		d := &delivery{msg: wm, kind: kind, subject: dl.Subject, seq: dl.Seq, n: dl.Deliveries, last: dl.Deliveries >= m.cfg.MaxDeliver, log: m.log}
		out := process(ctx, d)
		switch out.kind {
		case doNak:
			wm.Metadata.Set(runtime.MetaNakDelay, out.delay.String())
			return fmt.Errorf("%w in %s", errRedeliver, out.delay)
		case doAbandon:
			d.log.Info("event abandoned by shutdown; it will be redelivered")
			wm.Metadata.Set(runtime.MetaAbandon, "true")
			return errAbandoned
		}
		return nil
	}
}

var (
	errRedeliver = errors.New("event to be redelivered")
	errAbandoned = errors.New("event abandoned by shutdown")
)

// process runs the exactly-once protocol for one delivery (see the package
// doc), step by step; each step either lets the delivery go on or decides
// its outcome.
func (m *Mailer) process(ctx context.Context, d *delivery) outcome {
	d.log = m.log.With(zap.String("subject", d.subject), zap.Uint64("stream_seq", d.seq), zap.Int("delivery", d.n))
	if out, next := m.identify(ctx, d); !next {
		return out
	}
	if out, next := m.checkRecord(ctx, d); !next { // 1. already sent?
		return out
	}
	email, out, next := m.render(ctx, d) // 2. render
	if !next {
		return out
	}
	// Wait for the send rate before claiming, so the claim is young.
	if err := m.waitRate(ctx); err != nil {
		return abandon()
	}
	claim, rev, out, next := m.claim(ctx, d) // 3. claim
	if !next {
		return out
	}
	return m.sendAndRecord(ctx, d, email, claim, rev) // 4. send, 5. record
}

// identify decodes the event and names the delivery by its event id.
func (m *Mailer) identify(ctx context.Context, d *delivery) (outcome, bool) {
	ev, err := decodeMemberSelected(d.msg.Payload)
	if err != nil {
		d.eventID = fallbackID(d.msg)
		d.log = d.log.With(zap.String("event_id", d.eventID))
		return m.fail(ctx, d, &PermanentError{Reason: ReasonMalformed, Err: err}), false
	}
	d.ev = ev
	d.eventID = ev.EventID()
	d.log = d.log.With(zap.String("event_id", d.eventID), zap.String("campaign_id", ev.CampaignID), zap.String("member_id", ev.MemberID))
	if ce := d.msg.Metadata.Get(messages.HeaderCEID); ce != "" && ce != d.eventID {
		d.log.Warn("ce-id differs from the payload's event id; keying on the payload", zap.String("ce_id", ce))
	}
	return outcome{}, true
}

// checkRecord reads the event's send record: "sent" is answered without
// sending, a fresh "sending" claim of another delivery is waited for, a
// stale one is taken over.
func (m *Mailer) checkRecord(ctx context.Context, d *delivery) (outcome, bool) {
	prev, err := m.store.Get(ctx, d.eventID)
	if err != nil {
		return m.transient(ctx, d, err), false
	}
	d.prev = prev
	if prev == nil {
		return outcome{}, true
	}
	switch prev.Status {
	case StatusSent:
		m.metrics.incDuplicate()
		d.log.Info("already sent; acknowledged without sending", zap.String("message_id", prev.MessageID))
		m.announceSent(ctx, d, prev.Record)
		return ack(), false
	case StatusSending:
		age, err := m.claimAge(ctx, prev)
		if err != nil {
			return m.transient(ctx, d, err), false
		}
		if age < m.cfg.ClaimTimeout {
			if d.last {
				return m.fail(ctx, d, fmt.Errorf("%w: claimed %s ago by %s and not resolved by the last delivery", errClaimHeld, age.Round(time.Second), prev.Owner)), false
			}
			wait := m.cfg.ClaimTimeout - age + time.Second
			d.log.Info("claimed by another delivery; looking again later", zap.String("owner", prev.Owner), zap.Duration("retry_in", wait))
			return nak(wait), false
		}
		d.log.Warn("taking over a stale claim: the previous sender stopped before recording its result; the email may be sent twice (same Message-ID)",
			zap.String("owner", prev.Owner), zap.Duration("age", age))
	}
	return outcome{}, true
}

// claimAge is how long ago the server stored the "sending" claim prev, on
// the server's clock (Store.ServerNow): an instance's own clock, ahead of
// the server's by more than ClaimTimeout, would take over a live claim at
// once and send the email twice. It costs a write and a read, so it is
// asked only when a claim is found, not on every delivery. An age below
// zero (a new stream leader whose clock is behind the last one's) is zero.
func (m *Mailer) claimAge(ctx context.Context, prev *Entry) (time.Duration, error) {
	now, err := m.store.ServerNow(ctx, m.cfg.Instance)
	if err != nil {
		return 0, err
	}
	return kvclock.Age(now, prev.Stored), nil
}

// render builds the email; a template or address problem is permanent.
func (m *Mailer) render(ctx context.Context, d *delivery) (*mail.Msg, outcome, bool) {
	ev := d.ev
	if !messages.ValidEmail(ev.Email) {
		return nil, m.fail(ctx, d, permanentf(ReasonRecipient, "member %s has no deliverable email address", ev.MemberID)), false
	}
	content, err := ParseContent(ev.Content)
	if err != nil {
		return nil, m.fail(ctx, d, err), false
	}
	unsub, err := m.unsub.Render(ev)
	if err != nil {
		return nil, m.fail(ctx, d, &PermanentError{Reason: ReasonTemplate, Err: err}), false
	}
	r, err := m.renderer.Render(ev, content, unsub)
	if err != nil {
		if failure.IsPermanent(err) {
			return nil, m.fail(ctx, d, err), false
		}
		return nil, m.transient(ctx, d, err), false
	}
	d.msgID, d.template = MessageID(d.eventID, m.domain), content.TemplateID
	email, err := m.build(ev, d.eventID, d.msgID, r, unsub)
	if err != nil {
		return nil, m.fail(ctx, d, err), false
	}
	if ce := d.log.Check(zap.DebugLevel, "rendered"); ce != nil {
		ce.Write(zap.String("to", ev.Email), zap.String("template", d.template), zap.String("message_id", d.msgID))
	}
	return email, outcome{}, true
}

// claim writes the "sending" claim at the record's revision; losing the
// race to another delivery naks (or dead-letters on the last delivery).
func (m *Mailer) claim(ctx context.Context, d *delivery) (Record, uint64, outcome, bool) {
	claim := Record{
		Status: StatusSending, EventID: d.eventID, CampaignID: d.ev.CampaignID, MemberID: d.ev.MemberID,
		MessageID: d.msgID, Owner: m.cfg.Instance, Claims: 1, At: m.cfg.now().UTC(),
	}
	var rev uint64
	if d.prev != nil {
		claim.Claims = d.prev.Claims + 1
		rev = d.prev.Revision
	}
	rev, err := m.store.Write(ctx, d.eventID, claim, rev)
	if errors.Is(err, ErrConflict) {
		if d.last {
			return claim, 0, m.fail(ctx, d, fmt.Errorf("%w: another delivery claimed it at the same time", errClaimHeld)), false
		}
		d.log.Info("another delivery claimed the event first; looking again later")
		return claim, 0, nak(time.Second), false
	}
	if err != nil {
		if ctx.Err() != nil {
			return claim, 0, abandon(), false
		}
		if n, ok := m.confirmClaim(ctx, d, claim); ok {
			return claim, n, outcome{}, true
		}
		return claim, 0, m.transient(ctx, d, err), false
	}
	return claim, rev, outcome{}, true
}

// confirmClaim reads the record after a claim write that failed without a
// conflict: a reply lost in a stream leader change leaves the claim stored
// and this delivery's (the same owner, claim count and time to the
// nanosecond), and its revision is returned. Otherwise (not stored, or the
// read fails too) false: the write failed.
func (m *Mailer) confirmClaim(ctx context.Context, d *delivery, claim Record) (uint64, bool) {
	cur, err := m.store.Get(ctx, d.eventID)
	if err != nil || cur == nil || cur.Status != StatusSending || cur.Owner != claim.Owner ||
		cur.Claims != claim.Claims || !cur.At.Equal(claim.At) {
		return 0, false
	}
	d.log.Info("claim stored though its write's reply was lost; going on with it")
	return cur.Revision, true
}

// sendAndRecord sends the email under the claim, then records "sent" and
// announces it, or releases the claim after a failed send.
func (m *Mailer) sendAndRecord(ctx context.Context, d *delivery, email *mail.Msg, claim Record, rev uint64) outcome {
	rev, err := m.send(ctx, d, email, claim, rev)
	if err == nil {
		m.recordSent(ctx, d, claim, rev)
		m.metrics.incSent()
		d.log.Info("email sent", zap.String("message_id", d.msgID), zap.String("template", d.template))
		if ctx.Err() != nil {
			return abandon() // aborted: the redelivery is answered from the record
		}
		claim.Status = StatusSent
		if !m.announceSent(ctx, d, claim) && !d.last {
			return nak(time.Second) // the redelivery republishes email_sent
		}
		return ack()
	}
	if errors.Is(err, errClaimLost) {
		d.log.Warn("claim lost to another delivery; stopping without sending again", zap.Error(err))
		return abandon()
	}
	// Nothing was sent (or the server did not say it accepted it): release
	// the claim so a redelivery or a replay may claim it at once.
	m.release(ctx, d, claim, rev, err)
	if failure.IsPermanent(err) {
		return m.fail(ctx, d, err)
	}
	if ctx.Err() != nil {
		return abandon()
	}
	return m.transient(ctx, d, err)
}

var (
	errClaimHeld = errors.New("claim held by another delivery")
	errClaimLost = errors.New("claim taken over by another delivery")
)

func decodeMemberSelected(body []byte) (*messages.MemberSelected, error) {
	e, err := messages.DecodeEvent(messages.EvtMemberSelected, body)
	if err != nil {
		return nil, fmt.Errorf("not a member_selected event: %w", err)
	}
	ev, ok := e.(*messages.MemberSelected)
	if !ok {
		return nil, fmt.Errorf("not a member_selected event: got %T", e)
	}
	if ev.CampaignID == "" || ev.MemberID == "" {
		return nil, errors.New("member_selected event without campaignId or memberId")
	}
	// They name the send record (EventID): held to the contract's ids.
	if p := messages.IDProblem(ev.CampaignID); p != "" {
		return nil, fmt.Errorf("member_selected event: campaignId: %s", p)
	}
	if p := messages.IDProblem(ev.MemberID); p != "" {
		return nil, fmt.Errorf("member_selected event: memberId: %s", p)
	}
	return ev, nil
}

// fallbackID names an undecodable event: its ce-id, else Nats-Msg-Id (each
// only if it is a valid id), else
// stream and sequence (not messages.CommandIDOf: an event's
// Groupflow-Command-Id names the command that caused it).
func fallbackID(msg *message.Message) string {
	for _, h := range []string{messages.HeaderCEID, messages.HeaderNatsMsgID} {
		if id := msg.Metadata.Get(h); id != "" && messages.IDProblem(id) == "" {
			return id
		}
	}
	return msg.Metadata.Get(runtime.MetaStream) + "-" + msg.Metadata.Get(runtime.MetaStreamSeq)
}

// MessageID is the Message-ID (without angle brackets) of the email of an
// event: derived from the event id only, so every copy of one event's email
// carries the same Message-ID.
func MessageID(eventID, domain string) string {
	h := sha256.Sum256([]byte(eventID))
	return "groupmail." + hex.EncodeToString(h[:16]) + "@" + domain
}

// Headers set on every email besides From, To, Subject, Date, Message-ID.
const (
	HeaderEventID         = "X-Groupflow-Event-Id"
	HeaderCampaignID      = "X-Groupflow-Campaign-Id"
	HeaderListUnsubscribe = "List-Unsubscribe"
	HeaderListUnsubPost   = "List-Unsubscribe-Post"
)

func (m *Mailer) build(ev *messages.MemberSelected, eventID, msgID string, r *Rendered, unsub string) (*mail.Msg, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	// Structured, not "name" <addr> text: a From name with quotes stays intact.
	msg.FromMailAddress(m.from)
	to, err := recipient(ev.FirstName, ev.LastName, ev.Email)
	if err != nil {
		return nil, permanentf(ReasonRecipient, "member %s: %v", ev.MemberID, err)
	}
	msg.AddToMailAddress(to)
	msg.Subject(r.Subject)
	msg.SetMessageIDWithValue(msgID)
	msg.SetDate()
	msg.SetGenHeader(mail.Header(HeaderEventID), eventID)
	msg.SetGenHeader(mail.Header(HeaderCampaignID), ev.CampaignID)
	if unsub != "" {
		msg.SetGenHeader(mail.Header(HeaderListUnsubscribe), "<"+unsub+">")
		if strings.HasPrefix(unsub, "https://") || strings.HasPrefix(unsub, "http://") {
			// RFC 8058 one-click unsubscribe.
			msg.SetGenHeader(mail.Header(HeaderListUnsubPost), "List-Unsubscribe=One-Click")
		}
	}
	switch {
	case r.Text != "" && r.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, r.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)
	case r.HTML != "":
		msg.SetBodyString(mail.TypeTextHTML, r.HTML)
	default:
		msg.SetBodyString(mail.TypeTextPlain, r.Text)
	}
	return msg, nil
}

func (m *Mailer) waitRate(ctx context.Context) error {
	res := m.limiter.Reserve()
	delay := res.Delay()
	m.metrics.rateWait.Observe(delay.Seconds())
	if delay <= 0 {
		return nil
	}
	m.metrics.incRateLimit()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		res.Cancel()
		return ctx.Err()
	}
}

// send makes up to SendAttempts SMTP attempts. An attempt in progress is
// not interrupted by ctx (it completes or times out); the waits between
// attempts are. Before each retry the claim is refreshed at its revision.
// It returns the claim's current revision.
func (m *Mailer) send(ctx context.Context, d *delivery, email *mail.Msg, claim Record, rev uint64) (uint64, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = m.cfg.RetryInitial
	bo.MaxInterval = m.cfg.RetryMax
	attempt := 0
	op := func() (struct{}, error) {
		attempt++
		if attempt > 1 {
			if ctx.Err() != nil {
				return struct{}{}, backoff.Permanent(ctx.Err())
			}
			claim.At = m.cfg.now().UTC()
			n, err := m.store.Write(ctx, d.eventID, claim, rev)
			if errors.Is(err, ErrConflict) {
				return struct{}{}, backoff.Permanent(fmt.Errorf("%w: %v", errClaimLost, err))
			}
			if err != nil {
				var ok bool
				if n, ok = m.confirmClaim(ctx, d, claim); !ok {
					return struct{}{}, err
				}
			}
			rev = n
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.SendTimeout)
		start := time.Now()
		err := m.deps.Sender.Send(sctx, email)
		cancel()
		m.metrics.sendSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			return struct{}{}, nil
		}
		text := redact(err.Error(), d.ev.Email)
		if perm, code := ClassifySMTP(err); perm {
			return struct{}{}, backoff.Permanent(&PermanentError{Reason: ReasonSMTPPermanent, Err: fmt.Errorf("smtp rejected the message (%d): %s", code, text)})
		}
		return struct{}{}, errors.New("smtp: " + text)
	}
	_, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(uint(m.cfg.SendAttempts)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			m.metrics.incRetried()
			d.log.Warn("smtp attempt failed transiently; retrying", zap.Duration("retry_in", next), zap.Error(err))
		}))
	return rev, err
}

// kvCritical runs f with retries for up to 10s on a context that shutdown
// does not cancel: it is used inside the window between send and record.
func kvCritical(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	bo.MaxInterval = time.Second
	_, err := backoff.Retry(cctx, func() (struct{}, error) {
		err := f(cctx)
		if errors.Is(err, ErrConflict) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(10*time.Second))
	return err
}

func (m *Mailer) recordSent(ctx context.Context, d *delivery, claim Record, rev uint64) {
	rec := claim
	rec.Status = StatusSent
	rec.At = m.cfg.now().UTC()
	rec.Reason = ""
	err := kvCritical(ctx, func(c context.Context) error {
		_, err := m.store.Write(c, d.eventID, rec, rev)
		return err
	})
	if errors.Is(err, ErrConflict) {
		d.log.Warn("claim was taken over while sending (the send outlived the claim timeout); the email may be sent twice")
		err = kvCritical(ctx, func(c context.Context) error {
			_, err := m.store.Put(c, d.eventID, rec)
			return err
		})
	}
	if err != nil {
		d.log.Error("email sent but not recorded; acknowledging so it is not redelivered (if the ack is lost too, it is resent after the claim timeout)", zap.Error(err))
	}
}

func (m *Mailer) release(ctx context.Context, d *delivery, claim Record, rev uint64, cause error) {
	rec := claim
	rec.Status = StatusFailed
	rec.At = m.cfg.now().UTC()
	rec.Reason = cause.Error()
	err := kvCritical(ctx, func(c context.Context) error {
		_, err := m.store.Write(c, d.eventID, rec, rev)
		return err
	})
	if err != nil {
		d.log.Warn("could not release the claim; it is taken over after the claim timeout", zap.Error(err))
	}
}

func (m *Mailer) meta(d *delivery) messages.EventMeta {
	meta := messages.EventMeta{OccurredAt: time.Now().UTC()}
	switch {
	case d.ev != nil:
		meta.CommandID, meta.CorrelationID, meta.SiteID = d.ev.CommandID, d.ev.CorrelationID, d.ev.SiteID
	case d.report != nil:
		meta.CommandID, meta.CorrelationID, meta.SiteID = d.report.CommandID, d.report.CorrelationID, d.report.SiteID
	}
	return meta
}

// announceSent publishes email_sent (deduplicated by its id within the
// stream's window). It reports whether the event is stored.
func (m *Mailer) announceSent(ctx context.Context, d *delivery, rec Record) bool {
	meta := m.meta(d)
	if !rec.At.IsZero() {
		meta.OccurredAt = rec.At
	}
	e := &messages.EmailSent{EventMeta: meta, SourceEventID: d.eventID, CampaignID: d.ev.CampaignID, MemberID: d.ev.MemberID, MessageID: rec.MessageID}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.events.Publish(pctx, e); err != nil {
		d.log.Warn("email_sent not published", zap.Error(err))
		return false
	}
	return true
}

// transient handles a failure that may pass: nak with a growing delay, or
// dead-letter on the last delivery.
func (m *Mailer) transient(ctx context.Context, d *delivery, err error) outcome {
	if ctx.Err() != nil {
		return abandon()
	}
	if d.last {
		return m.fail(ctx, d, err)
	}
	m.metrics.incRetried()
	delay := m.cfg.NakDelay(d.n)
	d.log.Warn("failed transiently; it will be redelivered", zap.Int("max_deliver", m.cfg.MaxDeliver), zap.Duration("redelivery_in", delay), zap.Error(err))
	return nak(delay)
}

// fail dead-letters the event and publishes email_failed; err is permanent
// or the last delivery's transient error.
func (m *Mailer) fail(ctx context.Context, d *delivery, err error) outcome {
	permanent := failure.IsPermanent(err)
	reason := ReasonExhausted
	kind := messages.FailureExhausted
	switch {
	case permanent:
		reason = reasonOf(err)
		kind = messages.FailurePermanent
		if reason == ReasonMalformed {
			kind = messages.FailureMalformed
		}
	case errors.Is(err, errClaimHeld):
		reason = ReasonClaimHeld
	}
	email := ""
	if d.ev != nil {
		email = d.ev.Email
	}
	text := redact(err.Error(), email)
	if d.report != nil {
		for _, to := range d.report.Recipients {
			text = redact(text, to)
		}
	}
	now := time.Now().UTC()
	first := now
	if d.prev != nil && d.prev.Status == StatusFailed && !d.prev.At.IsZero() && !permanent {
		first = d.prev.At
	}
	handler := m.cfg.Durable
	if d.kind == messages.EvtReportGenerated {
		handler = ReportDurable
	}
	entry := dlq.NewEntry(runtime.DeliveryOf(d.msg), dlq.Failure{CommandType: d.kind, CommandID: d.eventID,
		Kind: kind, Reason: text, Handler: handler, FirstFailure: first, LastFailure: now})
	subject := m.cfg.Subjects.DLQ(d.kind)
	if perr := m.deps.Publisher.Publish(subject, entry.Message()); perr != nil {
		// Not stored: keep the event (nak) rather than lose it.
		d.log.Error("dead-lettering failed; the event stays in the stream", zap.Error(perr))
		if ctx.Err() != nil {
			return abandon()
		}
		return nak(m.cfg.NakDelay(d.n))
	}
	if d.ev != nil || d.report != nil || d.eventID != "" {
		f := &messages.EmailFailed{EventMeta: m.meta(d), SourceEventID: d.eventID, Reason: text, Permanent: permanent}
		if d.ev != nil {
			f.CampaignID, f.MemberID = d.ev.CampaignID, d.ev.MemberID
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if perr := m.events.Publish(pctx, f); perr != nil {
			d.log.Warn("email_failed not published", zap.Error(perr))
		}
		cancel()
	}
	m.metrics.incFailed(reason)
	d.log.Error("event dead-lettered; no email sent", zap.String("reason", reason), zap.String("kind", kind),
		zap.String("dlq_subject", subject), zap.String("error", text))
	return ack()
}
