package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"

	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/trace"
	"groupflow/messages"
)

// deadLetter decides what a failed attempt becomes: a dead letter (invalid,
// malformed, permanently failing, or on its last delivery) or a nack for a
// delayed redelivery. A dead letter is acknowledged only once it is stored,
// and announced with a command_failed event.
func (r *Runtime) deadLetter(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		// Inner middleware (Timeout) replaces the message's context with one
		// cancelled on return: keep the delivery's own context.
		ctx, slot := withSlot(msg.Context())
		msg.SetContext(ctx)
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		msg.SetContext(ctx)
		return nil, r.failed(ctx, msg, slot, err)
	}
}

// failed handles a failed attempt; it returns nil to acknowledge the
// message, else the error to nack it.
func (r *Runtime) failed(ctx context.Context, msg *message.Message, slot *leaseSlot, err error) error {
	delivery, _ := strconv.Atoi(msg.Metadata.Get(MetaDelivery))
	var held *leaseHeldError
	if errors.As(err, &held) {
		return r.leaseHeld(ctx, msg, held, delivery, err)
	}
	if !failure.IsPermanent(err) && ctx.Err() != nil {
		r.interrupted(ctx, slot, err)
		return err
	}
	if r.catchAllOfKnownType(msg) {
		// The catch-all failed at its own work (deleting a schedule): the
		// command's own consumer has the command, and its record.
		trace.Logger(ctx, r.log).Warn("the catch-all consumer failed on a known command; it will be redelivered to it",
			zap.Int("delivery", delivery), zap.Error(err))
		return err
	}
	return r.deadLetterOrNak(ctx, msg, slot, delivery, err)
}

// catchAllOfKnownType reports whether msg is the catch-all consumer's
// (UnknownCommandsDurable) copy of a command of a known type.
func (r *Runtime) catchAllOfKnownType(msg *message.Message) bool {
	if msg.Metadata.Get(MetaTopic) != r.cfg.Subjects.Commands() {
		return false
	}
	t, ok := r.cfg.Subjects.CommandTypeOf(msg.Metadata.Get(MetaSubject))
	return ok && messages.IsCommandType(t)
}

// leaseHeld acknowledges a second copy of a running command (nil) and gives
// any other held command back (err) until its lease expires.
func (r *Runtime) leaseHeld(ctx context.Context, msg *message.Message, held *leaseHeldError, delivery int, err error) error {
	// Another instance works on it: not a failure of the command.
	log := trace.Logger(ctx, r.log)
	if held.duplicateCopy {
		log.Info("second copy of a command that is running; acknowledged (the running copy publishes the outcome): "+held.Error(),
			zap.Int("delivery", delivery))
		return nil
	}
	log.Info("command given back until its lease expires: "+held.Error(), zap.Int("delivery", delivery))
	msg.Metadata.Set(MetaNakDelay, held.retryIn().String())
	return err
}

// interrupted gives up the lease of a command whose work shutdown
// cancelled, so that it is redelivered and resumes.
func (r *Runtime) interrupted(ctx context.Context, slot *leaseSlot, err error) {
	// Shutdown cancelled the work: not a failure of the command. Its
	// lease is given up so that the next instance starts at once.
	trace.Logger(ctx, r.log).Info("command interrupted by shutdown; it will be redelivered and resume", zap.Error(err))
	if lease := slot.get(); lease != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = lease.Release(rctx) // best effort: otherwise the lease expires
		cancel()
	}
}

// deadLetterOrNak records the failure, then nacks a transient one with
// deliveries left (err) or dead-letters the command (see storeDeadLetter).
func (r *Runtime) deadLetterOrNak(ctx context.Context, msg *message.Message, slot *leaseSlot, delivery int, err error) error {
	info := trace.From(ctx)
	log := trace.Logger(ctx, r.log)
	permanent := failure.IsPermanent(err)
	now := time.Now().UTC()
	rec, lerr := r.recordFailure(context.WithoutCancel(ctx), slot.get(), info, ledger.Failure{
		Err: err.Error(), Delivery: delivery, At: now, Seq: r.commandSeq(msg)})
	if lerr != nil {
		log.Warn("could not record the failure in the ledger", zap.Error(lerr))
	}
	other, herr := r.deps.Ledger.HeldByAnotherDelivery(context.WithoutCancel(ctx), rec, r.holder(ctx, r.commandSeq(msg)))
	if herr != nil {
		// Whether another delivery's lease is live is unknown (the
		// server's clock could not be read): settle nothing, the message
		// comes back after AckWait and this is asked again.
		log.Warn("could not tell whether another delivery of this message holds the command's lease; left to AckWait",
			zap.Int("delivery", delivery), zap.NamedError("ledger_error", herr), zap.Error(err))
		msg.Metadata.Set(MetaAbandon, "true")
		return err
	}
	if other {
		// A redelivery of this very message holds the command: it settles
		// the message (this delivery's ack or nak would settle it under it).
		log.Warn("another delivery of this message holds the command's lease; it is left to settle it",
			zap.Int("delivery", delivery), zap.Error(err))
		msg.Metadata.Set(MetaAbandon, "true")
		return err
	}
	if !permanent && !r.exhausted(rec, delivery) {
		log.Warn("command failed transiently; it will be redelivered",
			zap.Int("delivery", delivery), zap.Int("max_deliver", r.cfg.MaxDeliver),
			zap.Duration("redelivery_in", r.cfg.NakDelay(delivery)), zap.Error(err))
		r.metrics.handled(info.CommandType, "retried", 0)
		return err
	}
	return r.storeDeadLetter(ctx, msg, deadLetterEntry(msg, info, rec, now, permanent, err), delivery, err)
}

// holder names, for the ledger, the message of commands-stream sequence
// seq (0: another stream's) and the lease its attempt held, if any (the
// lease handle leaves in ctx's slot).
func (r *Runtime) holder(ctx context.Context, seq uint64) ledger.Holder {
	by := ledger.Holder{Seq: seq}
	if lease := slotFrom(ctx).get(); lease != nil {
		by.LeaseID = lease.ID()
	}
	return by
}

// commandSeq is msg's commands-stream sequence, the one the ledger knows
// its messages by; 0 for a message of another stream (a fired schedule).
func (r *Runtime) commandSeq(msg *message.Message) uint64 {
	if msg.Metadata.Get(MetaStream) != r.cfg.Subjects.CommandStream() {
		return 0
	}
	return DeliveryOf(msg).Seq
}

// exhausted reports whether the command used up its failed attempts (rec:
// its ledger record, nil if it could not be written) or its deliveries.
func (r *Runtime) exhausted(rec *ledger.Record, delivery int) bool {
	// Failed attempts count, not deliveries: a delivery given back by a
	// shutdown is no failure. The consumer allows more deliveries than
	// MaxDeliver failures (see consumerMaxDeliver); its own limit is the
	// backstop when the ledger cannot be written.
	failures := delivery
	if rec != nil {
		failures = rec.Failures
	}
	return failures >= r.cfg.MaxDeliver || delivery >= r.consumerMaxDeliver()
}

// deadLetterEntry builds the dead letter of msg, which failed with err at now.
func deadLetterEntry(msg *message.Message, info trace.Info, rec *ledger.Record, now time.Time, permanent bool, err error) *dlq.Entry {
	first := now
	if rec != nil && !rec.FirstFailure.IsZero() {
		first = rec.FirstFailure
	}
	kind, fields := classify(err, permanent)
	entry := dlq.NewEntry(DeliveryOf(msg), dlq.Failure{CommandType: info.CommandType, CommandID: info.CommandID,
		Kind: kind, Reason: err.Error(), Fields: fields, Handler: "groupflow_" + info.CommandType, FirstFailure: first, LastFailure: now})
	if !messages.IsCommandType(entry.CommandType) {
		entry.CommandType = messages.UnknownCommandType
	}
	return entry
}

// storeDeadLetter publishes the dead letter (waiting for room in a full
// DLQ) and announces it (nil: acknowledge); when it cannot be stored it
// returns the error, so that the command stays in the stream.
func (r *Runtime) storeDeadLetter(ctx context.Context, msg *message.Message, entry *dlq.Entry, delivery int, err error) error {
	info := trace.From(ctx)
	log := trace.Logger(ctx, r.log)
	kind := entry.Kind
	dlqSubject := r.cfg.Subjects.DLQ(entry.CommandType)
	perr := r.deps.Publisher.Publish(dlqSubject, entry.Message())
	if IsDLQFull(perr) {
		perr = r.holdForDLQ(ctx, msg, dlqSubject, entry, log)
	}
	if perr != nil {
		// Not stored: keep the message (nack) rather than lose it.
		log.Error("dead-lettering failed; the command stays in the stream", zap.Error(perr))
		return fmt.Errorf("dead-letter: %w", perr)
	}
	if left, _ := r.announce(ctx, entry, info.CorrelationID, info.SiteID); left {
		// A redelivery of this message took the command meanwhile, or may
		// have: it settles the message (this delivery's ack would settle
		// it under it).
		log.Warn("dead letter stored, but another delivery of this message holds the command, or may; it is left to settle it",
			zap.String("dlq_subject", dlqSubject), zap.Error(err))
		msg.Metadata.Set(MetaAbandon, "true")
		return fmt.Errorf("dead-lettered while another delivery holds the command or may: %w", err)
	}
	log.Error("command dead-lettered", zap.String("kind", kind), zap.Int("delivery", delivery),
		zap.String("dlq_subject", dlqSubject), zap.Error(err))
	r.metrics.handled(info.CommandType, "dead_lettered", 0)
	return nil
}

// recordFailure counts a failed attempt in the ledger: through the lease
// when the command was acquired, else on the record (created if none).
func (r *Runtime) recordFailure(ctx context.Context, lease *ledger.Lease, info trace.Info, f ledger.Failure) (*ledger.Record, error) {
	if lease != nil {
		return lease.Fail(ctx, f)
	}
	return r.deps.Ledger.Fail(ctx, info.CommandType, info.CommandID, f)
}

// announce marks the command dead-lettered in the ledger and publishes the
// command_failed event of its stored dead letter, unless the ledger says the
// command itself did not fail: another copy of it is in progress, or it
// completed (its recorded outcome event is republished instead: the copy
// that completed it may have run out of deliveries publishing it). It
// reports whether another delivery of the dead letter's own message holds
// the command (Record.HeldByAnotherDelivery), or may (ledger.ErrUnjudged):
// that one settles the message, this one must not. unjudged says the
// latter: nothing was recorded nor announced, and asking again may decide.
func (r *Runtime) announce(ctx context.Context, entry *dlq.Entry, correlationID, siteID string) (leftToAnother, unjudged bool) {
	log := trace.Logger(ctx, r.log)
	failed := &failedEvent{
		CommandFailed: &messages.CommandFailed{
			EventMeta:   messages.EventMeta{CommandID: entry.CommandID, CorrelationID: correlationID, SiteID: siteID, OccurredAt: entry.LastFailure},
			CommandType: entry.CommandType,
			Subject:     entry.OriginalSubject,
			Kind:        entry.Kind,
			Reason:      entry.Reason,
			Fields:      entry.Fields,
			Deliveries:  entry.Deliveries,
			DLQSubject:  r.cfg.Subjects.DLQ(entry.CommandType),
		},
		id: entry.MsgID(),
	}
	var seq uint64
	if _, ok := r.cfg.Subjects.CommandTypeOf(entry.OriginalSubject); ok {
		seq = entry.OriginalSeq // a commands-stream sequence (not a fired schedule's)
	}
	by := r.holder(ctx, seq)
	rec, err := r.deps.Ledger.DeadLetter(context.WithoutCancel(ctx), entry.CommandType, entry.CommandID, by, entry.Reason)
	switch {
	case errors.Is(err, ledger.ErrUnjudged):
		// Another lease may be live beside this message (a redelivery of
		// it, or another copy): announcing would report a failure of a
		// command it runs, and an ack would settle its message. The entry
		// stays stored; the message comes back after AckWait.
		log.Warn("dead letter stored, not announced: whether another lease on the command is live cannot be told; left to AckWait (or, captured, asked again)",
			zap.Error(err))
		return true, true
	case err != nil:
		log.Warn("could not record the dead letter in the ledger", zap.Error(err))
	case rec.CommandType == entry.CommandType && rec.CommandID == entry.CommandID && rec.Status != ledger.StatusDeadLettered:
		log.Info("dead letter of one copy of a command that is "+rec.Status+": stored, not announced (the command's own outcome stands)",
			zap.String("dlq_subject", r.cfg.Subjects.DLQ(entry.CommandType)))
		if rec.Status == ledger.StatusCompleted && len(rec.Event) > 0 {
			// Its outcome may never have been published (the copy that
			// completed it ran out of deliveries publishing it).
			if err := r.deps.Events.Republish(ctx, rec.EventType, rec.Event); err != nil {
				log.Warn("recorded outcome event not republished", zap.Error(err))
			}
		}
		other, err := r.deps.Ledger.HeldByAnotherDelivery(context.WithoutCancel(ctx), rec, by)
		if err != nil {
			// Unknown (the server's clock could not be read): the message
			// is left to AckWait, and whoever has it then settles it.
			log.Warn("could not tell whether another delivery of this message holds the command's lease", zap.Error(err))
			return true, false
		}
		return other, false
	}
	// Recorded first, announced second: whoever reacts to the event (a
	// replay, say) finds the ledger already saying dead-lettered.
	if err := r.deps.Events.Publish(ctx, failed); err != nil {
		log.Warn("command_failed event not published", zap.Error(err))
	}
	return false, false
}

// AnnounceCaptured announces a dead letter stored outside the router (a
// command whose deliveries ran out while no processor could dead-letter it,
// captured from the max-deliveries advisory), so whoever waits for the
// command hears of it.
func (r *Runtime) AnnounceCaptured(ctx context.Context, entry *dlq.Entry) {
	meta := messages.PeekMeta(entry.Body)
	corr := firstNonEmpty(entry.Headers[events.HeaderCorrelationID], meta.CorrelationID)
	site := firstNonEmpty(meta.SiteID, r.cfg.DefaultSiteID)
	// Held to the contract's limits as commands are (see checkMeta), so
	// that the event and the ledger key can be written.
	if messages.CommandIDProblem(entry.CommandID) != "" {
		entry.CommandID = messages.InvalidCommandID(entry.CommandID)
	}
	if messages.CorrelationIDProblem(corr) != "" {
		corr = ""
	}
	if messages.SiteIDProblem(site) != "" {
		site = r.cfg.DefaultSiteID
	}
	ctx = trace.With(ctx, trace.Info{CommandType: entry.CommandType, CommandID: entry.CommandID, CorrelationID: firstNonEmpty(corr, entry.CommandID), SiteID: site})
	if !r.leaseLapsed(ctx, entry) {
		return
	}
	// Nothing redelivers a captured message: an announcement the ledger
	// could not judge (the server's clock unreadable) is asked again,
	// capturedAnnounceTries times in all, rather than left unannounced.
	bo := &backoff.ExponentialBackOff{InitialInterval: leaseSlack, Multiplier: 2, MaxInterval: time.Minute}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if _, unjudged := r.announce(ctx, entry, firstNonEmpty(corr, entry.CommandID), site); unjudged {
			return struct{}{}, ledger.ErrUnjudged
		}
		return struct{}{}, nil
	}, backoff.WithBackOff(bo), backoff.WithMaxTries(capturedAnnounceTries), backoff.WithMaxElapsedTime(0))
	if errors.Is(err, ledger.ErrUnjudged) {
		trace.Logger(ctx, r.log).Error("captured dead letter not announced: whether another lease on the command is live could not be told; it stays in the DLQ",
			zap.Int("tries", capturedAnnounceTries))
	}
}

// capturedAnnounceTries bounds AnnounceCaptured's announcements of one
// captured dead letter the ledger could not judge (ledger.ErrUnjudged),
// leaseSlack apart and doubling: about half a minute in all.
const capturedAnnounceTries = 5

// leaseSlack is how long past a lease's end (on the server's clock:
// ledger.Ledger.LeaseLeft) leaseLapsed waits before it reads the record
// again, for the owner's renewal in flight.
const leaseSlack = time.Second

// leaseLapsed waits for a live lease on a captured command to end and
// reports whether it ended unrenewed (or there was none): only then is the
// captured dead letter announced. A genuine max-deliveries advisory means
// the owner of the message's last delivery stopped keeping it alive (it
// crashed or was cut off), so its lease lapses; a lease renewed meanwhile
// is a command still running — the advisory was forged (a core NATS
// message anyone allowed on its subject can publish) — and marking it
// dead-lettered would cut its lease and announce a failure it does not
// have. It is left alone: the entry stays in the DLQ, unannounced (a replay
// of it is answered from the ledger). Costs two ledger reads and, on a
// lease that may be live, a probe of the server's clock, and waits at
// most the lease's term (AckWait) plus leaseSlack, or until ctx ends (the
// capture closes): then it is not announced either, and says so.
func (r *Runtime) leaseLapsed(ctx context.Context, entry *dlq.Entry) bool {
	log := trace.Logger(ctx, r.log)
	rec, rev, err := r.deps.Ledger.RecordRev(ctx, entry.CommandType, entry.CommandID)
	if err != nil || rec == nil {
		return true // announce reads the record again and decides
	}
	left, err := r.deps.Ledger.LeaseLeft(ctx, rec)
	if err != nil {
		// The server's clock could not be read: wait as if the lease had
		// just been written (its whole term), never as if it had ended.
		log.Warn("could not read the server's clock to judge the command's lease; waiting out its whole term", zap.Error(err))
		left = rec.Term()
	}
	if left <= 0 {
		return true
	}
	t := time.NewTimer(left + leaseSlack)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		log.Error("captured dead letter not announced: the command's lease was live when the capture stopped; it stays in the DLQ",
			zap.Duration("lease_left", left))
		return false
	}
	now, at, err := r.deps.Ledger.RecordRev(ctx, entry.CommandType, entry.CommandID)
	if err != nil || now == nil || at == rev {
		return true
	}
	live, err := r.deps.Ledger.Live(ctx, now)
	if err != nil || live {
		log.Warn("max-deliveries advisory for a command whose lease was renewed since (a forged advisory, or the command runs again) or cannot be judged: stored in the DLQ, not announced",
			zap.String("owner", now.Owner), zap.NamedError("ledger_error", err))
		return false
	}
	return true
}

// classify names the failure kind for the dead letter and the event.
func classify(err error, permanent bool) (string, []messages.FieldError) {
	var verr *messages.ValidationError
	if errors.As(err, &verr) {
		return messages.FailureInvalid, verr.Fields
	}
	var derr *messages.DecodeError
	if errors.As(err, &derr) {
		return messages.FailureMalformed, nil
	}
	var uerr *messages.UnknownCommandError
	if errors.As(err, &uerr) {
		return messages.FailureMalformed, nil
	}
	if permanent {
		return messages.FailurePermanent, nil
	}
	return messages.FailureExhausted, nil
}

// failedEvent gives each dead-lettering its own command_failed event id, so a
// replayed command that fails again is announced again.
type failedEvent struct {
	*messages.CommandFailed
	id string
}

func (f *failedEvent) EventID() string { return "command_failed:" + f.id }
