package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/broker"
	"groupflow/internal/schedule"
)

// Metadata keys the subscriber sets on every Watermill message, besides the
// NATS headers (copied as they are).
const (
	MetaSubject   = "_gf_subject"
	MetaDelivery  = "_gf_delivery"
	MetaStreamSeq = "_gf_stream_seq"
	MetaStream    = "_gf_stream"
	MetaPublished = "_gf_published"
	// MetaNakDelay, set by a handler before it fails, overrides the
	// redelivery delay (a Go duration).
	MetaNakDelay = "_gf_nak_delay"
	// MetaTopic is the subscription (topic) the message came from.
	MetaTopic = "_gf_topic"
)

// DefaultInFlightBytes bounds the command bodies in work at once (64 MiB).
const DefaultInFlightBytes int64 = 64 << 20

// Subscription says how to consume one topic (a command subject).
type Subscription struct {
	Consumer broker.ConsumerSpec
	// Concurrency is the number of messages of this topic handled at once.
	Concurrency int
}

// SubscriberConfig configures the JetStream pull subscriber.
type SubscriberConfig struct {
	// Stream holds the topics' subjects.
	Stream string
	// Topics maps each subscribable topic to its consumer and concurrency.
	Topics map[string]Subscription
	// NakDelay gives the redelivery delay after the n-th failed delivery.
	NakDelay func(delivery int) time.Duration
	// FetchWait bounds one pull request (default 1s); Close waits at most
	// this long for an idle worker.
	FetchWait time.Duration
	// Grace is how long Close waits for in-flight messages before it
	// cancels their contexts (default 25s). Cancelled work is nacked and
	// resumes from its ledger checkpoint on redelivery.
	Grace time.Duration
	// Paused, when set and true for a topic, stops fetching that topic's
	// messages (the DLQ cannot take its dead letters); polled every
	// FetchWait at most.
	Paused func(topic string) bool
	// InFlightBytes bounds the bodies of all messages handed to the router
	// and not yet acked or nacked (default DefaultInFlightBytes). A message
	// that does not fit waits, kept alive, before it is handed over; one
	// larger than the bound waits until nothing else is in flight.
	InFlightBytes int64
}

// Subscriber is a Watermill message.Subscriber over JetStream pull
// consumers. Unlike watermill-nats' subscribers it keeps each message alive
// (InProgress) for as long as its handler runs, so a roster that takes
// minutes at Wix's rate limit is not redelivered half-way; it naks with a
// delay that grows with the delivery count, and it hands the delivery count
// and stream sequence to the handlers as metadata.
type Subscriber struct {
	js  jetstream.JetStream
	cfg SubscriberConfig
	log *zap.Logger

	closing   chan struct{}
	abortCtx  context.Context
	abort     context.CancelFunc
	closeOnce sync.Once
	workers   sync.WaitGroup
	inFlight  *byteSem
}

// NewSubscriber returns a subscriber on js.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig, log *zap.Logger) *Subscriber {
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
	if cfg.InFlightBytes <= 0 {
		cfg.InFlightBytes = DefaultInFlightBytes
	}
	abortCtx, abort := context.WithCancel(context.Background())
	return &Subscriber{js: js, cfg: cfg, log: log, closing: make(chan struct{}), abortCtx: abortCtx, abort: abort,
		inFlight: newByteSem(cfg.InFlightBytes)}
}

// DefaultNakDelay backs off from 1s, doubling per delivery, up to 2 minutes.
func DefaultNakDelay(delivery int) time.Duration {
	if delivery < 1 {
		delivery = 1
	}
	d := time.Second << min(delivery-1, 7)
	return min(d, 2*time.Minute)
}

// Subscribe creates (or updates) the topic's durable consumer and starts its
// workers. The channel closes after Close, once in-flight messages are done.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sub, ok := s.cfg.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("subscribe %s: no consumer configured for this topic", topic)
	}
	cons, err := broker.EnsureConsumer(ctx, s.js, s.cfg.Stream, sub.Consumer)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	n := max(sub.Concurrency, 1)
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		s.workers.Add(1)
		go func() {
			defer wg.Done()
			defer s.workers.Done()
			s.work(ctx, topic, cons, sub.Consumer, out)
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func (s *Subscriber) stopped(ctx context.Context) bool {
	select {
	case <-s.closing:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func (s *Subscriber) work(ctx context.Context, topic string, cons jetstream.Consumer, spec broker.ConsumerSpec, out chan<- *message.Message) {
	failures := 0
	for !s.stopped(ctx) {
		if s.cfg.Paused != nil && s.cfg.Paused(topic) {
			select {
			case <-time.After(min(s.cfg.FetchWait, 100*time.Millisecond)):
			case <-s.closing:
			case <-ctx.Done():
			}
			continue
		}
		m, err := cons.Next(jetstream.FetchMaxWait(s.cfg.FetchWait))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				failures = 0
				continue
			}
			failures++
			if failures == 1 || failures%30 == 0 {
				s.log.Warn("fetch failed; retrying", zap.String("consumer", spec.Durable), zap.Error(err))
			}
			select {
			case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 2*time.Second)):
			case <-s.closing:
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		s.deliver(m, topic, spec, out)
	}
}

// deliver hands one message to the router and waits for its ack or nack,
// keeping it alive meanwhile.
func (s *Subscriber) deliver(m jetstream.Msg, topic string, spec broker.ConsumerSpec, out chan<- *message.Message) {
	md, err := m.Metadata()
	if err != nil {
		s.log.Error("message without metadata; terminating it", zap.String("subject", m.Subject()), zap.Error(err))
		_ = m.Term()
		return
	}
	wm := message.NewMessage(commandID(m, md), m.Data())
	for k, vs := range m.Headers() {
		if len(vs) > 0 {
			wm.Metadata.Set(k, vs[0])
		}
	}
	wm.Metadata.Set(MetaSubject, m.Subject())
	wm.Metadata.Set(MetaDelivery, strconv.FormatUint(md.NumDelivered, 10))
	wm.Metadata.Set(MetaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	wm.Metadata.Set(MetaStream, md.Stream)
	wm.Metadata.Set(MetaPublished, md.Timestamp.UTC().Format(time.RFC3339Nano))
	wm.Metadata.Set(MetaTopic, topic)

	keepAlive := spec.AckWait / 3
	if keepAlive <= 0 {
		keepAlive = 10 * time.Second
	}
	// Bounded in-flight bytes: wait for room (keeping the message alive),
	// release once it is acked or nacked.
	size := int64(len(m.Data()))
	if !s.inFlight.acquire(size, s.closing, keepAlive, func() { _ = m.InProgress() }) {
		_ = m.NakWithDelay(s.shutdownNakDelay())
		return
	}
	defer s.inFlight.release(size)

	// The handler's context survives Close (graceful shutdown lets it finish)
	// and is cancelled only when the grace period runs out.
	msgCtx, cancel := context.WithCancel(s.abortCtx)
	defer cancel()
	wm.SetContext(msgCtx)

	select {
	case out <- wm:
	case <-s.closing:
		_ = m.NakWithDelay(s.shutdownNakDelay())
		return
	}

	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	lastAlive := time.Now()
	for {
		select {
		case <-wm.Acked():
			ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			err := m.DoubleAck(ctx)
			c()
			if err != nil {
				// The work is done and recorded in the ledger; a redelivery
				// is answered from it without side effects.
				s.log.Warn("ack not confirmed; the message may be redelivered", zap.String("message_uuid", wm.UUID), zap.Error(err))
			}
			return
		case <-wm.Nacked():
			delay := s.cfg.NakDelay(int(md.NumDelivered))
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
			return
		case <-ticker.C:
			if err := m.InProgress(); err != nil {
				s.log.Debug("keep-alive failed", zap.String("message_uuid", wm.UUID), zap.Error(err))
				// Unheard for a whole AckWait, the server redelivers the
				// message, maybe to another instance: stop working on it
				// here so two instances do not run one command at once.
				if time.Since(lastAlive) > spec.AckWait && spec.AckWait > 0 {
					s.log.Warn("lost the message's lease (keep-alive failing for longer than AckWait); cancelling its work",
						zap.String("message_uuid", wm.UUID), zap.Error(err))
					cancel()
				}
				continue
			}
			lastAlive = time.Now()
		}
	}
}

// HeaderCommandID carries a command's id when the body has none and the
// Nats-Msg-Id cannot be reused: a dead letter replayed within the commands
// stream's duplicate window keeps its original id this way.
const HeaderCommandID = "Groupflow-Command-Id"

// shutdownNakDelay is the redelivery delay of a message given back during
// shutdown: long enough that the server does not hand it to this
// instance's own pull requests still open (each lasts up to FetchWait) and
// burn its deliveries, short enough for another instance to take it soon.
func (s *Subscriber) shutdownNakDelay() time.Duration { return s.cfg.FetchWait + 2*time.Second }

// commandID picks the command's id: the body's "id", else the
// Groupflow-Command-Id header, else schedule.FiredID (a fired schedule),
// else the Nats-Msg-Id header, else an id
// derived from the stream sequence (stable across redeliveries). Whatever
// its source, the id is held to the contract's limits (messages.IDProblem)
// by the correlation middleware before anything uses it.
func commandID(m jetstream.Msg, md *jetstream.MsgMetadata) string {
	if id := peekString(m.Data(), "id"); id != "" {
		return id
	}
	if id := m.Headers().Get(HeaderCommandID); id != "" {
		return id
	}
	if id := schedule.FiredID(m.Headers()); id != "" { // fired by a JetStream message schedule
		return id
	}
	if id := m.Headers().Get(nats.MsgIdHdr); id != "" {
		return id
	}
	return fmt.Sprintf("%s-%d", md.Stream, md.Sequence.Stream)
}

// peekString reads one top-level string field of a JSON object, or "".
func peekString(body []byte, field string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(obj[field], &s) != nil {
		return ""
	}
	return s
}

// Close stops fetching, waits up to Grace for in-flight messages, then
// cancels what still runs and waits for it to nack.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		done := make(chan struct{})
		go func() { s.workers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.cfg.Grace):
			s.log.Warn("shutdown grace period over; cancelling in-flight commands (they resume from their checkpoints)")
			s.abort()
			<-done
		}
		s.abort()
	})
	return nil
}
