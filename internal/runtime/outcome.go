package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"groupflow/internal/events"
	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/trace"
	"groupflow/messages"
)

// outcomeSlack is room kept free in every completion message for what the
// measurement below cannot see exactly: the record's timestamps, which the
// ledger sets, and the headers of the KV publish.
const outcomeSlack = 2048

// maxPayload is the largest message the broker takes (headers included):
// Config.MaxPayload, else what the server announced to the connection; 0
// when unknown.
func (r *Runtime) maxPayload() int64 {
	if r.cfg.MaxPayload > 0 {
		return r.cfg.MaxPayload
	}
	if r.deps.JS == nil || r.deps.JS.Conn() == nil {
		return 0
	}
	return r.deps.JS.Conn().MaxPayload()
}

// checkEchoSize refuses, before any work, a command whose fields are copied
// as they are into events that cannot be truncated (messages.Echoer, e.g. a
// send_campaign's content in every member_selected) when those copies could
// never fit in one message: the error is a *messages.ValidationError, so the
// command is dead-lettered as invalid with the field and the limit.
func (r *Runtime) checkEchoSize(commandType string, cmd messages.Command) error {
	e, ok := cmd.(messages.Echoer)
	limit := r.maxPayload()
	if !ok || limit <= 0 {
		return nil
	}
	field, size := e.EchoSize()
	if allowed := limit - messages.EchoReserve; int64(size) > allowed {
		return &messages.ValidationError{CommandType: commandType, Fields: []messages.FieldError{{
			Field: field,
			Message: fmt.Sprintf("copied into every %s event it takes %d bytes there; at most %d fit (the broker's max payload of %d bytes less %d for the rest of the event)",
				e.EchoEvent(), size, max(allowed, 0), limit, messages.EchoReserve),
		}}}
	}
	return nil
}

// completion renders evt, the handler's completion event, as the message to
// publish and the outcome to record (through lease.Complete). The message
// and the ledger record holding it each fit in one broker message: when they
// would not, the full event is stored first in the outcomes object store
// (Deps.Outcomes) and the event's lists are truncated to fit, with their
// totals and a pointer to the stored object (messages.Truncation). A
// redelivery after a crash at any point stores the same object again and
// records the same event, so the command still completes with one event.
//
// The returned event is the one the message carries. The error is
// permanent when the event cannot be made to fit, transient when the object
// store fails.
func (r *Runtime) completion(ctx context.Context, lease *ledger.Lease, evt messages.Event) (*message.Message, messages.Event, ledger.Outcome, error) {
	var none ledger.Outcome
	wm, err := r.deps.Events.Message(ctx, evt)
	if err != nil {
		return nil, nil, none, failure.Permanent(err)
	}
	out := ledger.Outcome{EventType: evt.EventType(), EventID: evt.EventID()}
	rec := lease.Completed(out)
	budget, limited := r.outcomeBudget(&rec, wm)
	if !limited || len(wm.Payload) <= budget {
		out.Event = json.RawMessage(wm.Payload)
		return wm, evt, out, nil
	}

	te, ok := evt.(messages.Truncatable)
	if !ok {
		return nil, nil, none, failure.Permanent(fmt.Errorf("%s event of %d bytes exceeds the %d bytes one message can hold, and has no list to truncate: %w",
			evt.EventType(), len(wm.Payload), budget, events.ErrTooLarge))
	}
	if r.deps.Outcomes == nil {
		return nil, nil, none, failure.Permanent(fmt.Errorf("%s event of %d bytes exceeds the %d bytes one message can hold, and no outcomes store is configured: %w",
			evt.EventType(), len(wm.Payload), budget, events.ErrTooLarge))
	}
	ref := r.deps.Outcomes.Ref(rec.CommandType, rec.CommandID)
	small, err := events.Fit(te, budget, ref)
	if err != nil {
		return nil, nil, none, failure.Permanent(err)
	}
	// The full body is stored before the truncated event is recorded.
	if err := r.deps.Outcomes.Put(ctx, ref, evt.EventType(), wm.Payload); err != nil {
		return nil, nil, none, err
	}
	full := len(wm.Payload)
	if wm, err = r.deps.Events.Message(ctx, small); err != nil {
		return nil, nil, none, failure.Permanent(err)
	}
	if len(wm.Payload) > budget {
		return nil, nil, none, failure.Permanent(fmt.Errorf("truncated %s event takes %d bytes, over %d: %w", evt.EventType(), len(wm.Payload), budget, events.ErrTooLarge))
	}
	out.Event = json.RawMessage(wm.Payload)
	trace.Logger(ctx, r.log).Warn("outcome too large for one message: event truncated, full outcome stored",
		zap.Int("full_bytes", full), zap.Int("event_bytes", len(wm.Payload)), zap.Int("budget", budget),
		zap.String("bucket", ref.Bucket), zap.String("object", ref.Object))
	return wm, small, out, nil
}

// outcomeBudget returns how many bytes the completion event's body may take
// so that both its message (with wm's headers) and rec, the ledger record
// holding it, fit in the broker's max payload; limited is false when the
// limit is unknown.
func (r *Runtime) outcomeBudget(rec *ledger.Record, wm *message.Message) (budget int, limited bool) {
	limit := r.maxPayload()
	if limit <= 0 {
		return 0, false
	}
	probe := *rec
	probe.Event = json.RawMessage("0")
	if probe.StartedAt.IsZero() {
		probe.StartedAt = time.Now().UTC()
	}
	probe.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(&probe)
	if err != nil {
		return 0, false
	}
	recordOverhead := len(b) - 1
	return int(limit) - max(natsHeaderSize(wm), recordOverhead) - outcomeSlack, true
}

// natsHeaderSize is the size of the NATS header block events.Marshaler
// builds for wm: "NATS/1.0\r\n", one "Key: value\r\n" per metadata entry and
// for Nats-Msg-Id, and a closing "\r\n". The broker counts it in the
// payload limit.
func natsHeaderSize(wm *message.Message) int {
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, v := range wm.Metadata {
		n += len(k) + len(v) + 4
	}
	if wm.UUID != "" {
		n += len(messages.HeaderNatsMsgID) + len(wm.UUID) + 4
	}
	return n
}
