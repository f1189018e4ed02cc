package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/messages"
)

// metaPrefix starts every metadata key of the Source (MetaSubject, ...).
// A published header with this prefix is not copied (toWatermill), nor
// relayed (Runtime.relay): the keys steer how the message is settled
// (MetaNakDelay, MetaAbandon) and are the Source's and its handlers' alone,
// not a producer's.
const metaPrefix = "_gf_"

// Metadata keys the Source sets on every Watermill message, besides the
// NATS headers (copied as they are, but those named like these).
const (
	MetaSubject   = metaPrefix + "subject"
	MetaDelivery  = metaPrefix + "delivery"
	MetaStreamSeq = metaPrefix + "stream_seq"
	MetaStream    = metaPrefix + "stream"
	MetaPublished = metaPrefix + "published"
	// MetaNakDelay, set by a handler before it fails, overrides the
	// redelivery delay (a Go duration).
	MetaNakDelay = metaPrefix + "nak_delay"
	// MetaTopic is the subscription (topic) the message came from.
	MetaTopic = metaPrefix + "topic"
	// MetaAbandon, set (to any value) by a handler before it nacks, leaves
	// the message unacknowledged, as a crash would: the server redelivers
	// it after AckWait.
	MetaAbandon = metaPrefix + "abandon"
)

// Subscription says how to consume one topic (a command subject).
type Subscription struct {
	Consumer broker.ConsumerSpec
	// Concurrency is the number of admitted messages of this topic handed to
	// the router at once (its handler slots). A message waiting in
	// Admission holds no slot.
	Concurrency int
}

// SourceConfig configures the Source.
type SourceConfig struct {
	// Stream holds the topics' subjects.
	Stream string
	// Topics maps each subscribable topic to its consumer and concurrency.
	Topics map[string]Subscription
	// NakDelay gives the redelivery delay after the n-th failed delivery
	// (default DefaultNakDelay).
	NakDelay func(delivery int) time.Duration
	// FetchWait bounds one pull request (default 1s); Close waits at most
	// this long for a fetch loop.
	FetchWait time.Duration
	// Grace is how long Close waits for in-flight messages before it
	// cancels their contexts (default 25s). Cancelled work is nacked and
	// resumes from its ledger checkpoint on redelivery.
	Grace time.Duration
	// Paused, when set and true for a topic, stops fetching that topic's
	// messages (the DLQ cannot take its dead letters); polled every
	// FetchWait at most.
	Paused func(topic string) bool
	// Admission decides when a fetched message is handed to the router
	// (default: NewFIFOAdmission(0, InFlightBytes)). Messages waiting in it
	// are kept alive; on Close they are nacked.
	Admission Admission
	// InFlightBytes is the byte bound of the default admission (default
	// DefaultInFlightBytes); ignored when Admission is set.
	InFlightBytes int64
	// MaxHeld bounds the messages the Source holds (fetched, not yet acked
	// or nacked) over all its topics, and MaxRunnable those of them not
	// parked behind their own site (see Parker); each topic may hold
	// TopicReserve whatever the bounds. Zero: no bound but each consumer's
	// MaxAckPending. A runtime sets DefaultMaxHeld and DefaultMaxRunnable.
	MaxHeld, MaxRunnable int
	// OnDone, when set, is called once a message handed to the router is
	// acked (acked true) or nacked, from the goroutine that held it; it
	// must not block.
	OnDone func(msg *message.Message, acked bool)
	// SettleInRouter says the router runs Settle as its outermost
	// middleware: it acks or naks each message when its handler returns,
	// and the Source keeps no goroutine per message handed over (8 KiB of
	// stack each, ~1,000 at once with many sites). Without it the Source
	// waits for Watermill's Ack or Nack itself. Set it only with Settle
	// as the outermost middleware: a message the router never settles is
	// kept alive, holds its slot and admission, and Close waits for it.
	SettleInRouter bool
}

// Source is a Watermill message.Subscriber over JetStream pull consumers,
// the consumer runtime shared by groupflow and groupmail. Per topic it
// fetches continuously; each fetched message waits in the Admission, then
// for one of its topic's handler slots, then is handed to the router. From
// fetch until its ack or nack the message is kept alive (InProgress, every
// AckWait/3), so neither a wait nor a roster that takes minutes at Wix's
// rate limit is redelivered half-way. Fetched, unacknowledged messages are
// bounded by each consumer's MaxAckPending and by the Admission's bounds.
// It naks with a delay that grows with the delivery count, and hands the
// delivery count and stream sequence to the handlers as metadata.
type Source struct {
	js    jetstream.JetStream
	cfg   SourceConfig
	log   *zap.Logger
	admit Admission
	win   *window // nil: no bound but MaxAckPending

	closing   chan struct{}
	stopCtx   context.Context // cancelled by Close: ends fetches and waits
	stop      context.CancelFunc
	abortCtx  context.Context // cancelled when Grace runs out: ends work
	abort     context.CancelFunc
	closeOnce sync.Once
	workers   sync.WaitGroup

	keepAlives atomic.Int64 // InProgress sent, for tests and metrics
}

// NewSource returns a Source on js.
func NewSource(js jetstream.JetStream, cfg SourceConfig, log *zap.Logger) *Source {
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 25 * time.Second
	}
	if cfg.NakDelay == nil {
		cfg.NakDelay = DefaultNakDelay
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Admission == nil {
		cfg.Admission = NewFIFOAdmission(0, cfg.InFlightBytes)
	}
	s := &Source{js: js, cfg: cfg, log: log, admit: cfg.Admission, closing: make(chan struct{})}
	if cfg.MaxHeld > 0 || cfg.MaxRunnable > 0 {
		var parked func() int
		if p, ok := cfg.Admission.(Parker); ok {
			parked = p.Parked
		}
		s.win = newWindow(cfg.MaxHeld, cfg.MaxRunnable, parked)
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	return s
}

// DefaultNakDelay backs off from 1s, doubling per delivery, up to 2 minutes.
func DefaultNakDelay(delivery int) time.Duration {
	if delivery < 1 {
		delivery = 1
	}
	d := time.Second << min(delivery-1, 7)
	return min(d, 2*time.Minute)
}

// KeepAlives counts the keep-alives (InProgress) sent so far.
func (s *Source) KeepAlives() int64 { return s.keepAlives.Load() }

// Held returns the messages the Source holds now (fetched, or asked for by
// a pull request in progress, and not yet acked or nacked) and the most it
// held so far; both 0 without MaxHeld or MaxRunnable.
func (s *Source) Held() (held, peak int) {
	if s.win == nil {
		return 0, 0
	}
	return s.win.stats()
}

// Subscribe creates (or updates) the topic's durable consumer and starts
// fetching it. The channel closes after Close, once in-flight messages are
// done.
func (s *Source) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sub, ok := s.cfg.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("subscribe %s: no consumer configured for this topic", topic)
	}
	cons, err := broker.EnsureConsumer(ctx, s.js, s.cfg.Stream, sub.Consumer)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	t := &topicRun{topic: topic, spec: sub.Consumer, cons: cons,
		slots: NewFIFOAdmission(max(sub.Concurrency, 1), math.MaxInt64), out: make(chan *message.Message),
		keep: newKeeper(sub.Consumer.AckWait)}
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		stopKeeper := make(chan struct{})
		keeperDone := make(chan struct{})
		go func() { defer close(keeperDone); s.runKeeper(t.keep, stopKeeper) }()
		s.fetch(ctx, t)
		t.held.Wait()
		close(stopKeeper)
		<-keeperDone
		close(t.out)
	}()
	return t.out, nil
}

// topicRun is one subscribed topic.
type topicRun struct {
	topic string
	spec  broker.ConsumerSpec
	cons  jetstream.Consumer
	slots *FIFOAdmission // handler slots, taken in the order messages are admitted
	out   chan *message.Message
	held  sync.WaitGroup // messages fetched and not yet acked or nacked
	keep  *keeper        // their keep-alives
}

func (s *Source) stopped(ctx context.Context) bool {
	select {
	case <-s.closing:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// pause waits d, or less if the Source closes or ctx ends.
func (s *Source) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
	case <-ctx.Done():
	}
}

// fetchBatch is the most messages one pull request asks for; the
// consumer's MaxAckPending bounds what the server hands out anyway.
func fetchBatch(spec broker.ConsumerSpec) int {
	return min(max(spec.MaxAckPending, 1), 256)
}

// fetch pulls the topic's messages until Close, starting one holder per
// message: fetching goes on while messages wait in Admission.
func (s *Source) fetch(ctx context.Context, t *topicRun) {
	failures := 0
	ask := TopicReserve // with a window: what the next pull request asks for
	for !s.stopped(ctx) {
		if s.cfg.Paused != nil && s.cfg.Paused(t.topic) {
			s.pause(ctx, min(s.cfg.FetchWait, 100*time.Millisecond))
			continue
		}
		n := fetchBatch(t.spec)
		if s.win != nil {
			if n = s.win.take(ctx, s.closing, t.topic, min(ask, n)); n == 0 {
				continue // closing
			}
		}
		got := 0
		batch, err := t.cons.Fetch(n, jetstream.FetchMaxWait(s.cfg.FetchWait))
		if err == nil {
			for m := range batch.Messages() {
				got++
				s.start(ctx, t, m)
			}
			err = batch.Error()
		}
		s.release(t, n-got) // asked for, not delivered
		// A pull request holds its room in the window until it ends (up to
		// FetchWait), delivered or not, so a topic asks for twice what it
		// last got: an idle topic keeps TopicReserve reserved, not a full
		// batch of the runnable room the busy topics need, and a busy one
		// is back at a full batch within a few requests.
		ask = max(2*got, TopicReserve)
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			failures++
			if failures == 1 || failures%30 == 0 {
				s.log.Warn("fetch failed; retrying", zap.String("consumer", t.spec.Durable), zap.Error(err))
			}
			s.pause(ctx, min(time.Duration(failures)*200*time.Millisecond, 2*time.Second))
			continue
		}
		failures = 0
	}
}

// release gives n of t's place in the window back.
func (s *Source) release(t *topicRun, n int) {
	if s.win != nil {
		s.win.give(t.topic, n)
	}
}

// start takes one fetched message into the Source's care.
func (s *Source) start(ctx context.Context, t *topicRun, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		s.log.Error("message without metadata; terminating it", zap.String("subject", m.Subject()), zap.Error(err))
		_ = m.Term()
		s.release(t, 1)
		return
	}
	if s.stopped(ctx) {
		_ = m.NakWithDelay(s.shutdownNakDelay())
		s.release(t, 1)
		return
	}
	meta := messages.PeekMeta(m.Data()) // the one JSON peek of the body (see withMeta)
	tk := Ticket{Topic: t.topic, Subject: m.Subject(), SiteID: meta.SiteID, Bytes: int64(len(m.Data()))}
	admit := func(ctx context.Context) (func(), error) { return s.admit.Admit(ctx, tk) }
	var slot func(context.Context) (func(), error)
	if q, ok := s.admit.(queuer); ok {
		var now bool
		admit, now = q.queue(tk) // in fetch order
		if now {
			slot, _ = t.slots.queue(Ticket{}) // in fetch order too
		}
	}
	t.held.Add(1)
	go s.hold(t, m, md, meta, admit, slot)
}

// hold carries one message from fetch to the router: admission, a handler
// slot, the hand-over. It is kept alive from fetch to its ack or nack. With
// SettleInRouter it returns once the router has the message (Settle acks or
// naks it); without, it waits for Watermill's Ack or Nack.
func (s *Source) hold(t *topicRun, m jetstream.Msg, md *jetstream.MsgMetadata, meta messages.CommandMeta, admit, slot func(context.Context) (func(), error)) {
	var undo undoList
	undo.add(t.held.Done)
	undo.add(func() { s.release(t, 1) })
	// The handler's context survives Close (graceful shutdown lets it finish)
	// and is cancelled only when the grace period runs out, or when the
	// message's lease is lost.
	msgCtx, cancel := context.WithCancel(s.abortCtx)
	undo.add(cancel)
	undo.add(t.keep.add(m, cancel))
	giveBack := func() {
		_ = m.NakWithDelay(s.shutdownNakDelay())
		undo.run()
	}

	release, err := admit(s.stopCtx)
	if err != nil {
		giveBack()
		return
	}
	undo.add(release)
	if slot == nil { // queued for a slot once admitted
		slot, _ = t.slots.queue(Ticket{})
	}
	releaseSlot, err := slot(s.stopCtx)
	if err != nil {
		giveBack()
		return
	}
	undo.add(releaseSlot)

	wm := toWatermill(m, md, meta, t.topic)
	var once sync.Once
	settle := func(acked bool) { once.Do(func() { s.settle(m, wm, int(md.NumDelivered), acked); undo.run() }) }
	ctx := withMeta(msgCtx, meta)
	if s.cfg.SettleInRouter {
		ctx = context.WithValue(ctx, settleKey{}, settle)
	}
	wm.SetContext(ctx)
	select {
	case t.out <- wm:
	case <-s.closing:
		giveBack()
		return
	}
	if s.cfg.SettleInRouter {
		return // Settle has it
	}
	select {
	case <-wm.Acked():
		settle(true)
	case <-wm.Nacked():
		settle(false)
	}
}

// settle acks a handled message, or naks one whose handler failed (after
// the delay NakDelay or its MetaNakDelay gives; not at all if it set
// MetaAbandon).
func (s *Source) settle(m jetstream.Msg, wm *message.Message, delivery int, acked bool) {
	if acked {
		s.ack(m, wm)
		s.done(wm, true)
		return
	}
	s.done(wm, false)
	if wm.Metadata.Get(MetaAbandon) != "" {
		return // no nak: redelivered after AckWait
	}
	s.nak(m, wm, delivery)
}

// undoList runs its functions once, last added first (as defers would).
type undoList []func()

func (u *undoList) add(f func()) { *u = append(*u, f) }

func (u *undoList) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
}

// settleKey keys, in the context of a message a Source with SettleInRouter
// handed over, the function that acks (true) or naks it and gives back its
// admission, slot and keep-alive.
type settleKey struct{}

// Settle is the router middleware of a Source with SettleInRouter: when the
// handler returns it acks the message (nil error) or naks it, as the
// Source's own wait on Watermill's Ack and Nack would, so no goroutine per
// message waits for that. It must be the router's outermost middleware (the
// first added): the outcome it sees is the one Watermill acts on. A handler
// that panics has its message nacked before the panic goes on. Messages of
// other subscribers pass through untouched. It is for consumer handlers
// (AddConsumerHandler): messages a handler produced would be published by
// the router after Settle acked its input. It grows the message's
// goroutine's stack first (growStack).
func Settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		growStack()
		settle, ok := msg.Context().Value(settleKey{}).(func(bool))
		if !ok {
			return h(msg)
		}
		acked := false
		defer func() { settle(acked) }() // a panic naks it, and gives all back
		out, err := h(msg)
		acked = err == nil
		return out, err
	}
}

func (s *Source) done(wm *message.Message, acked bool) {
	if s.cfg.OnDone != nil {
		s.cfg.OnDone(wm, acked)
	}
}

// toWatermill wraps a fetched message, its headers (but those named like
// its metadata keys, see metaPrefix) and delivery metadata.
func toWatermill(m jetstream.Msg, md *jetstream.MsgMetadata, meta messages.CommandMeta, topic string) *message.Message {
	wm := message.NewMessage(messages.CommandIDFrom(meta.ID, m.Headers(), md.Stream, md.Sequence.Stream), m.Data())
	for k, vs := range m.Headers() {
		if len(vs) > 0 && !strings.HasPrefix(k, metaPrefix) {
			wm.Metadata.Set(k, vs[0])
		}
	}
	wm.Metadata.Set(MetaSubject, m.Subject())
	wm.Metadata.Set(MetaDelivery, strconv.FormatUint(md.NumDelivered, 10))
	wm.Metadata.Set(MetaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	wm.Metadata.Set(MetaStream, md.Stream)
	wm.Metadata.Set(MetaPublished, md.Timestamp.UTC().Format(time.RFC3339Nano))
	wm.Metadata.Set(MetaTopic, topic)
	return wm
}

// ack acknowledges a handled message without awaiting the server's
// confirmation (no double ack): the outcome is in the ledger before the
// handler returns, so an ack lost with a crash or a broken connection only
// makes the server redeliver after AckWait, and that copy is answered from
// the record with no Wix call and no second event (its Nats-Msg-Id). Not
// awaiting saves the server's reply and a round trip per command.
func (s *Source) ack(m jetstream.Msg, wm *message.Message) {
	if err := m.Ack(); err != nil {
		s.log.Warn("ack not sent; the message will be redelivered and answered from the ledger", zap.String("message_uuid", wm.UUID), zap.Error(err))
	}
}

func (s *Source) nak(m jetstream.Msg, wm *message.Message, delivery int) {
	delay := s.cfg.NakDelay(delivery)
	if d, err := time.ParseDuration(wm.Metadata.Get(MetaNakDelay)); err == nil && d > 0 {
		delay = d
	}
	select {
	case <-s.closing:
		delay = max(delay, s.shutdownNakDelay())
	default:
	}
	if err := m.NakWithDelay(delay); err != nil {
		s.log.Warn("nak failed; the server redelivers after AckWait", zap.String("message_uuid", wm.UUID), zap.Error(err))
	}
}

// shutdownNakDelay is the redelivery delay of a message given back during
// shutdown: long enough that the server does not hand it to this
// instance's own pull requests still open (each lasts up to FetchWait) and
// burn its deliveries, short enough for another instance to take it soon.
func (s *Source) shutdownNakDelay() time.Duration { return s.cfg.FetchWait + 2*time.Second }

// Close stops fetching, naks the messages still waiting for admission or a
// slot, waits up to Grace for the ones in work, then cancels what still
// runs and waits for it to nack.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.stop()
		done := make(chan struct{})
		go func() { s.workers.Wait(); close(done) }()
		t := time.NewTimer(s.cfg.Grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("shutdown grace period over; cancelling in-flight commands (they resume from their checkpoints)")
			s.abort()
			<-done
		}
		s.abort()
	})
	return nil
}

// bodyMetaKey keys, in a message's context, the messages.CommandMeta the
// Source peeked from its body, so that the middleware does not parse the
// body again (see bodyMeta).
type bodyMetaKey struct{}

func withMeta(ctx context.Context, meta messages.CommandMeta) context.Context {
	return context.WithValue(ctx, bodyMetaKey{}, meta)
}

// bodyMeta returns the body's id, site and correlation id: peeked once by
// the Source (start), or now when the message came another way. The
// command's id is picked from it by messages.CommandIDFrom; whatever its
// source, the id is held to the contract's limits (messages.IDProblem) by
// the correlation middleware before anything uses it.
func bodyMeta(msg *message.Message) messages.CommandMeta {
	if meta, ok := msg.Context().Value(bodyMetaKey{}).(messages.CommandMeta); ok {
		return meta
	}
	return messages.PeekMeta(msg.Payload)
}

// DeliveryOf describes a message handed over by the Source for its dead
// letter (dlq.NewEntry).
func DeliveryOf(msg *message.Message) dlq.Delivery {
	seq, _ := strconv.ParseUint(msg.Metadata.Get(MetaStreamSeq), 10, 64)
	n, _ := strconv.Atoi(msg.Metadata.Get(MetaDelivery))
	return dlq.Delivery{Subject: msg.Metadata.Get(MetaSubject), Seq: seq, Deliveries: n, Headers: msg.Metadata, Body: msg.Payload}
}
