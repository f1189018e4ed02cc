package dlq

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/messages"
)

// ReasonExhausted is the reason of a dead letter captured from a
// max-deliveries advisory.
const ReasonExhausted = "max deliveries reached without dead-lettering"

// MaxDeliveriesAdvisory is the payload of
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>.
type MaxDeliveriesAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Timestamp  time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries int       `json:"deliveries"`
}

// AdvisorySubject is the subject of the max-deliveries advisories of every
// consumer on stream.
func AdvisorySubject(stream string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + ".*"
}

// Capture is the safety net for commands that ran out of deliveries without
// reaching the DLQ through the runtime (a crash or a failed dead-lettering on
// the last delivery): it follows the commands stream's max-deliveries
// advisories and stores each such command as a dead letter of kind
// "exhausted", unless the DLQ already holds one for that original message.
//
// Advisories are core NATS messages: only those published while Capture runs
// are seen.
type Capture struct {
	// OnCaptured, if set, is called with each entry Capture stores (the
	// processor publishes command_failed for it).
	OnCaptured func(ctx context.Context, e *Entry)
	// CatchAll names a consumer that reads every command subject and leaves
	// the known command types to their own consumers: its running out of
	// deliveries on a known command is not that command's failure (its own
	// consumer still has it), so such an advisory is not captured.
	CatchAll string

	nc       *nats.Conn
	js       jetstream.JetStream
	subjects messages.Subjects
	log      *zap.Logger
	store    *Store

	// FullRetry is how often a capture the full DLQ refused is retried
	// (default 5s).
	FullRetry time.Duration
	waiting   atomic.Int64

	droppedLogged atomic.Int64

	slots chan struct{} // one per capture in progress (captureConcurrency)

	mu       sync.Mutex
	sub      *nats.Subscription
	inFlight map[adviceKey]struct{}              // advisories being captured or held while the DLQ is full
	held     map[adviceKey]MaxDeliveriesAdvisory // held until the full DLQ has room (retryHeld)
	dropped  int                                 // advisories the client dropped, as last seen
	wg       sync.WaitGroup
	stop     chan struct{}
	once     sync.Once
}

// adviceKey names what one advisory asks to capture: an exhausted stream
// message, on the catch-all consumer or on its own (the consumer's name is
// otherwise the publisher's word, and would let one message be claimed
// once per name).
type adviceKey struct {
	catchAll bool
	seq      uint64
}

func (c *Capture) keyOf(adv MaxDeliveriesAdvisory) adviceKey {
	return adviceKey{c.CatchAll != "" && adv.Consumer == c.CatchAll, adv.StreamSeq}
}

// Bounds of the advisory loop. Advisories are core NATS messages, sent
// once: those arriving while advisoryBuffer are waiting are dropped by the
// client (counted by Dropped). The loop never waits on one capture: up to
// captureConcurrency run at once (each reads the message, searches the DLQ
// and stores the entry, at most a few CallTimeouts), and an announcement
// (OnCaptured, which may wait out a lease) runs on its own, so neither a
// slow capture nor a forged advisory naming a running command stops the
// advisories behind it.
const (
	advisoryBuffer     = 4096
	captureConcurrency = 8
)

// NewCapture returns a capture over nc (advisories) and js (streams).
func NewCapture(nc *nats.Conn, js jetstream.JetStream, subjects messages.Subjects, log *zap.Logger) *Capture {
	if log == nil {
		log = zap.NewNop()
	}
	return &Capture{nc: nc, js: js, subjects: subjects, log: log, store: NewStore(js, subjects), stop: make(chan struct{}),
		slots: make(chan struct{}, captureConcurrency), inFlight: map[adviceKey]struct{}{},
		held: map[adviceKey]MaxDeliveriesAdvisory{}}
}

// Start subscribes to the advisories; capturing runs until ctx ends or Close.
func (c *Capture) Start(ctx context.Context) error {
	ch := make(chan *nats.Msg, advisoryBuffer)
	sub, err := c.nc.ChanSubscribe(AdvisorySubject(c.subjects.CommandStream()), ch)
	if err != nil {
		return fmt.Errorf("dlq capture: subscribe to advisories: %w", err)
	}
	if err := c.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("dlq capture: %w", err)
	}
	c.mu.Lock()
	c.sub = sub
	c.mu.Unlock()
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.retryHeld(ctx)
	}()
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-ctx.Done():
				_ = sub.Unsubscribe()
				return
			case <-c.stop:
				return
			case m := <-ch:
				if !c.dispatch(ctx, m) {
					_ = sub.Unsubscribe()
					return
				}
				c.reportDropped()
			}
		}
	}()
	return nil
}

// Close stops capturing and waits for the captures in progress and the
// announcements they started (whose context it ends).
func (c *Capture) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		if c.sub != nil {
			_ = c.sub.Unsubscribe()
		}
		c.mu.Unlock()
		close(c.stop)
	})
	c.wg.Wait()
	return nil
}

// Dropped returns how many advisories the client dropped because the
// capture's buffer was full (each may be a command left exhausted in the
// commands stream, never dead-lettered): 0 before Start, the last count
// seen once the subscription is gone.
func (c *Capture) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		if n, err := c.sub.Dropped(); err == nil && n > c.dropped {
			c.dropped = n
		}
	}
	return c.dropped
}

// reportDropped logs the advisories dropped since it last did (the client
// drops them when the buffer is full, so a burst is seen only once it ends).
func (c *Capture) reportDropped() {
	n := int64(c.Dropped())
	if last := c.droppedLogged.Load(); n > last && c.droppedLogged.CompareAndSwap(last, n) {
		c.log.Error("max-deliveries advisories dropped (the capture fell behind a burst): their commands, if genuine, stay exhausted in the commands stream, neither dead-lettered nor announced",
			zap.Int64("dropped", n-last), zap.Int64("dropped_total", n))
	}
}

// dispatch starts capturing the advisory m on its own goroutine once a slot
// is free, unless the same advisory is already being captured. It returns
// false when the capture stopped while it waited for a slot.
func (c *Capture) dispatch(ctx context.Context, m *nats.Msg) bool {
	adv, ok := c.advisory(m)
	if !ok {
		return true
	}
	key := c.keyOf(adv)
	if !c.claim(key) {
		c.log.Debug("max-deliveries advisory repeated while its capture is in progress",
			zap.String("consumer", clip(adv.Consumer)), zap.Uint64("stream_seq", adv.StreamSeq))
		return true
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		c.unclaim(key)
		return false
	case <-c.stop:
		c.unclaim(key)
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.slots }()
		if !c.handle(ctx, adv) {
			c.unclaim(key)
		}
	}()
	return true
}

// claim marks key in progress; false if it already was.
func (c *Capture) claim(key adviceKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.inFlight[key]; busy {
		return false
	}
	c.inFlight[key] = struct{}{}
	return true
}

func (c *Capture) unclaim(key adviceKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inFlight, key)
}

// advisory reads m as a max-deliveries advisory of the commands stream;
// false (logged) for one that cannot be, or names another stream.
func (c *Capture) advisory(m *nats.Msg) (MaxDeliveriesAdvisory, bool) {
	var adv MaxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		c.log.Warn("unreadable max-deliveries advisory", zap.String("subject", m.Subject), zap.Error(err))
		return adv, false
	}
	if adv.Stream == "" {
		adv.Stream = c.subjects.CommandStream()
	}
	if adv.Stream != c.subjects.CommandStream() {
		// Forged (the server's advisories on this subject name the commands
		// stream): never read another stream's message into the DLQ.
		c.log.Warn("max-deliveries advisory naming another stream ignored", zap.String("subject", m.Subject),
			zap.String("stream", clip(adv.Stream)), zap.Uint64("stream_seq", adv.StreamSeq))
		return adv, false
	}
	return adv, true
}

// handle captures adv. It returns true when the capture is held until the
// full DLQ has room (holdWhileFull then owns the advisory's claim).
func (c *Capture) handle(ctx context.Context, adv MaxDeliveriesAdvisory) (held bool) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	// Retried: the advisory is a core NATS message, sent once. A full DLQ
	// ends the retries at once: from then on the capture is held (counted
	// by Waiting, retried whatever the error) instead of being given up
	// after these few attempts when a later one fails another way.
	// An attempt whose publish lost its reply may have stored the entry:
	// the next one takes the entry it finds for its own and announces it.
	var stored *Entry
	var err error
	var mayHaveStored bool
	for attempt := 1; attempt <= 5; attempt++ {
		if stored, err = c.captureSeq(hctx, adv, mayHaveStored); err == nil || IsFull(err) || hctx.Err() != nil {
			break
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// Final: a genuine advisory names the message the server just
			// gave up delivering. A forger's naming none would otherwise
			// hold a slot for the retries (8 of them, every slot).
			break
		}
		mayHaveStored = mayHaveStored || lostReply(err)
		select {
		case <-time.After(time.Duration(attempt) * time.Second):
		case <-hctx.Done():
		}
	}
	log := c.log.With(zap.String("consumer", clip(adv.Consumer)), zap.Uint64("stream_seq", adv.StreamSeq), zap.Int("deliveries", adv.Deliveries))
	if IsFull(err) {
		c.holdWhileFull(adv, log)
		return true
	}
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		log.Warn("max-deliveries advisory naming no message of the commands stream ignored (forged, or the message is gone)", zap.Error(err))
	case err != nil:
		log.Error("command exhausted its deliveries and could not be dead-lettered", zap.Error(err))
	case stored != nil:
		log.Error("command exhausted its deliveries without dead-lettering; captured into the DLQ",
			zap.String("command_type", stored.CommandType), zap.String("command_id", stored.CommandID))
		c.onCaptured(ctx, stored)
	default:
		log.Debug("max-deliveries advisory for a command already in the DLQ")
	}
	return false
}

// onCaptured hands a stored entry to OnCaptured on a goroutine of its own
// (OnCaptured may wait: see runtime.AnnounceCaptured), under a context of
// the capture's lifetime that also ends when the capture is closed.
func (c *Capture) onCaptured(ctx context.Context, e *Entry) {
	if c.OnCaptured == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		c.OnCaptured(ctx, e)
	}()
}

// ErrForeignStream is CaptureSeq's refusal of an advisory naming a stream
// other than the commands stream: its payload is the publisher's word, and
// another stream's message (a ledger record, an event) is no dead letter.
var ErrForeignStream = errors.New("advisory names a stream other than the commands stream")

// CaptureSeq stores the original message of adv as a dead letter. It returns
// nil and no error when the DLQ already holds an entry for it.
// Only the commands stream's messages are captured (ErrForeignStream).
func (c *Capture) CaptureSeq(ctx context.Context, adv MaxDeliveriesAdvisory) (*Entry, error) {
	return c.captureSeq(ctx, adv, false)
}

// captureSeq is CaptureSeq; mayHaveStored says an earlier attempt's publish
// lost its reply, so an entry found for the message is that attempt's own
// (or the runtime's: announcing it again is deduplicated by its event id)
// and is returned as stored, to be announced.
func (c *Capture) captureSeq(ctx context.Context, adv MaxDeliveriesAdvisory, mayHaveStored bool) (*Entry, error) {
	if adv.Stream != c.subjects.CommandStream() {
		return nil, fmt.Errorf("%w: %.64q", ErrForeignStream, adv.Stream)
	}
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	st, err := c.js.Stream(cctx, adv.Stream)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", adv.Stream, err)
	}
	cctx, cancel = context.WithTimeout(ctx, CallTimeout)
	orig, err := st.GetMsg(cctx, adv.StreamSeq)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read %s seq %d: %w", adv.Stream, adv.StreamSeq, err)
	}
	cmdType, ok := c.subjects.CommandTypeOf(orig.Subject)
	if !ok || !messages.IsCommandType(cmdType) {
		cmdType = messages.UnknownCommandType // never a subject made of an unbounded token
	} else if c.CatchAll != "" && adv.Consumer == c.CatchAll {
		c.log.Debug("max-deliveries advisory of the catch-all consumer for a known command; its own consumer has it",
			zap.Uint64("stream_seq", adv.StreamSeq), zap.String("command_type", cmdType))
		return nil, nil
	}
	// Already dead-lettered by the runtime? Such an entry was stored after
	// the command was published, on the command type's DLQ subject.
	// The search is bounded and best effort: when it cannot finish, the
	// entry is stored anyway — a duplicate dead letter is harmless (replay
	// is idempotent), a lost command is not. The advisory is not sent again.
	var dup *Entry
	errFound := errors.New("found")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.store.Each(sctx, Filter{CommandType: cmdType, Since: orig.Time.Add(-time.Second)}, false, func(e *Entry) error {
		if e.OriginalSeq == adv.StreamSeq && (e.OriginalSubject == "" || e.OriginalSubject == orig.Subject) {
			dup = e
			return errFound
		}
		return nil
	})
	cancel()
	if err != nil && !errors.Is(err, errFound) {
		c.log.Warn("could not search the DLQ for an earlier dead letter; storing one anyway",
			zap.Uint64("stream_seq", adv.StreamSeq), zap.Error(err))
	}
	if dup != nil {
		if mayHaveStored {
			return dup, nil
		}
		return nil, nil
	}
	meta := map[string]string{}
	for k, vs := range orig.Header {
		if len(vs) > 0 {
			meta[k] = vs[0]
		}
	}
	at := adv.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	e := &Entry{
		CommandType:     cmdType,
		CommandID:       messages.CommandIDOf(orig.Data, orig.Header, adv.Stream, orig.Sequence),
		Kind:            messages.FailureExhausted,
		Reason:          ReasonExhausted,
		OriginalSubject: orig.Subject,
		OriginalSeq:     adv.StreamSeq,
		Handler:         adv.Consumer,
		Deliveries:      adv.Deliveries,
		FirstFailure:    at,
		LastFailure:     at,
		Headers:         OriginalHeaders(meta),
		Body:            orig.Data,
	}
	wm := e.Message()
	out := nats.NewMsg(c.subjects.DLQ(cmdType))
	out.Data = e.Body
	for k := range wm.Metadata {
		out.Header.Set(k, wm.Metadata.Get(k))
	}
	// The runtime's dead letter of the same message has this id too, so the
	// DLQ stream keeps one of them within its duplicate window.
	out.Header.Set(nats.MsgIdHdr, e.MsgID())
	// Each wait for the PubAck is bounded: a reply lost in a stream leader
	// change is retried at once (deduplicated by the Nats-Msg-Id). A
	// duplicate after such a lost reply is this capture's own dead letter
	// (the server names its sequence), announced as stored here.
	unsure := mayHaveStored
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, CallTimeout)
		ack, err := c.js.PublishMsg(pctx, out, jetstream.WithExpectStream(c.subjects.DLQStream()))
		cancel()
		if err != nil {
			if lostReply(err) && ctx.Err() == nil && attempt < publishAttempts {
				unsure = true
				continue
			}
			return nil, fmt.Errorf("store dead letter: %w", err)
		}
		if ack.Duplicate && !unsure {
			return nil, nil
		}
		e.Seq = ack.Sequence
		return e, nil
	}
}

// CallTimeout bounds each broker call of a capture (reading the
// exhausted message, publishing its dead letter) and each replay
// republish, whatever is left of the caller's own budget.
const CallTimeout = 10 * time.Second

// publishAttempts bounds the publishes of one dead letter whose replies are
// lost.
const publishAttempts = 3

// lostReply reports whether err is a request that got no reply in time:
// the message may have been stored.
func lostReply(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// jsStoreFailed is JetStream's error code for a message a stream refused to
// store: with DiscardNew, "maximum messages exceeded", "maximum bytes
// exceeded" or "maximum messages per subject exceeded".
const jsStoreFailed jetstream.ErrorCode = 10077

// IsFull reports whether err is a publish the DLQ refused because it is at
// its size or message limit (discard new).
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsStoreFailed {
		return true
	}
	// Watermill's publisher may flatten the error to its text.
	msg := err.Error()
	return strings.Contains(msg, "maximum messages exceeded") || strings.Contains(msg, "maximum bytes exceeded") ||
		strings.Contains(msg, "maximum messages per subject exceeded")
}

// Waiting returns how many exhausted commands wait for room in the full DLQ.
func (c *Capture) Waiting() int64 { return c.waiting.Load() }

// maxHeld bounds the exhausted commands held while the DLQ is full (one
// per commands-stream message: a forger naming every message in the
// stream would otherwise hold them all): past it an advisory is logged and
// dropped.
var maxHeld = 10000

// holdWhileFull holds a capture the full DLQ refused until retryHeld
// stores it or the capture stops: the command stays in the commands stream
// meanwhile and is never given up, whatever error a retry meets (the DLQ
// still full, or briefly unreachable). It logs when the command starts
// waiting, and releases the advisory's claim when it drops it (maxHeld).
func (c *Capture) holdWhileFull(adv MaxDeliveriesAdvisory, log *zap.Logger) {
	c.mu.Lock()
	n := len(c.held)
	if n < maxHeld {
		c.held[c.keyOf(adv)] = adv
		c.waiting.Store(int64(n + 1))
	}
	c.mu.Unlock()
	if n >= maxHeld {
		c.unclaim(c.keyOf(adv))
		log.Error("DLQ full and too many exhausted commands already wait for room: this advisory is dropped; its command, if genuine, stays exhausted in the commands stream",
			zap.Int("waiting", n))
		return
	}
	log.Error("DLQ full: an exhausted command waits in the commands stream until the DLQ has room; purge or replay dead letters")
}

// retryHeld retries the held captures every FullRetry, oldest message
// first, until the capture stops; a retry the DLQ refuses as full ends the
// round (the rest would be refused too).
func (c *Capture) retryHeld(ctx context.Context) {
	every := c.FullRetry
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-t.C:
		}
		for _, adv := range c.heldByAge() {
			if full := c.retryOne(ctx, adv); full || ctx.Err() != nil {
				break
			}
		}
	}
}

// heldByAge returns the held advisories in stream order.
func (c *Capture) heldByAge() []MaxDeliveriesAdvisory {
	c.mu.Lock()
	defer c.mu.Unlock()
	advs := slices.Collect(maps.Values(c.held))
	slices.SortFunc(advs, func(a, b MaxDeliveriesAdvisory) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
	return advs
}

// retryOne retries one held capture; full reports that the DLQ refused it
// again. Once stored (or the message is gone) it is announced and released.
func (c *Capture) retryOne(ctx context.Context, adv MaxDeliveriesAdvisory) (full bool) {
	log := c.log.With(zap.String("consumer", clip(adv.Consumer)), zap.Uint64("stream_seq", adv.StreamSeq))
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	stored, err := c.CaptureSeq(hctx, adv)
	cancel()
	switch {
	case IsFull(err):
		return true
	case errors.Is(err, jetstream.ErrMsgNotFound):
		log.Warn("exhausted command waiting for room in the DLQ is gone from the commands stream (its age or size limit); given up")
	case err != nil:
		log.Warn("capture while the DLQ was full failed; retrying", zap.Error(err))
		return false
	case stored != nil:
		log.Error("command exhausted its deliveries without dead-lettering; captured into the DLQ once it had room",
			zap.String("command_type", stored.CommandType), zap.String("command_id", stored.CommandID))
		c.onCaptured(ctx, stored)
	}
	c.mu.Lock()
	delete(c.held, c.keyOf(adv))
	delete(c.inFlight, c.keyOf(adv))
	c.waiting.Store(int64(len(c.held)))
	c.mu.Unlock()
	return false
}
