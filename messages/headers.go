package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
)

// Command headers (all optional).
const (
	// HeaderNatsMsgID is the JetStream de-duplication id; it is the command
	// id when the body has no "id" and no HeaderCommandID is set.
	HeaderNatsMsgID = "Nats-Msg-Id"
	// HeaderTraceparent and HeaderTracestate carry the W3C trace context.
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	// HeaderCommandID carries a command's id when the body has none and the
	// Nats-Msg-Id cannot be reused: a dead letter replayed within the
	// commands stream's duplicate window keeps its original id this way.
	// Every event carries it too (the id of the command that caused it).
	HeaderCommandID = "Groupflow-Command-Id"
	// HeaderCorrelationID carries the correlation id on commands (when the
	// body has none) and on every event.
	HeaderCorrelationID = "Groupflow-Correlation-Id"
	// HeaderReplayOf is the DLQ sequence of the dead letter a replayed
	// command comes from.
	HeaderReplayOf = "Groupflow-Replay-Of"
)

// CloudEvents headers (binary content mode) set on every event.
const (
	HeaderCESpecVersion = "ce-specversion" // always CESpecVersion
	HeaderCEID          = "ce-id"          // Event.EventID(), also the Nats-Msg-Id
	HeaderCEType        = "ce-type"        // CEType(eventType), e.g. "groupflow.group_provisioned"
	HeaderCESource      = "ce-source"      // the emitting service, e.g. "groupflow/<site id>"
	HeaderCETime        = "ce-time"        // EventMeta.OccurredAt, RFC 3339
	HeaderCESubject     = "ce-subject"     // what the event is about: group id, campaign id, command id
	HeaderContentType   = "content-type"   // always ContentTypeJSON
)

// Header values.
const (
	// CESpecVersion is the CloudEvents version used.
	CESpecVersion = "1.0"
	// ContentTypeJSON is the content type of every command and event body.
	ContentTypeJSON = "application/json"
)

// HeaderDLQPrefix starts the name of every dead-letter header.
const HeaderDLQPrefix = "Groupflow-Dlq-"

// Dead-letter headers set on a message moved to Subjects.DLQ(commandType);
// the body is the original command body, untouched.
const (
	HeaderDLQReason          = "Groupflow-Dlq-Reason"           // the error message
	HeaderDLQKind            = "Groupflow-Dlq-Kind"             // FailureInvalid, FailureMalformed, FailurePermanent or FailureExhausted
	HeaderDLQOriginalSubject = "Groupflow-Dlq-Original-Subject" // the subject the command was received on
	HeaderDLQOriginalSeq     = "Groupflow-Dlq-Original-Seq"     // its sequence in the original stream, decimal
	HeaderDLQHandler         = "Groupflow-Dlq-Handler"          // the handler that gave up
	HeaderDLQDeliveries      = "Groupflow-Dlq-Deliveries"       // delivery count, decimal
	HeaderDLQFirstFailure    = "Groupflow-Dlq-First-Failure"    // RFC 3339 time of the first failure
	HeaderDLQLastFailure     = "Groupflow-Dlq-Last-Failure"     // RFC 3339 time of the last failure
	HeaderDLQCommandID       = "Groupflow-Dlq-Command-Id"       // the command id
	HeaderDLQCommandType     = "Groupflow-Dlq-Command-Type"     // the command type
	HeaderDLQFields          = "Groupflow-Dlq-Fields"           // JSON array of FieldError (FailureInvalid)
	HeaderDLQHeadersDropped  = "Groupflow-Dlq-Headers-Dropped"  // original headers left out or cut for size
)

// HeaderGetter reads one header value (nats.Header, http.Header).
type HeaderGetter interface {
	Get(key string) string
}

// CommandIDOf derives a command's id, the same way everywhere: the body's
// "id" (a non-empty string), else the Groupflow-Command-Id header, else the
// id of a message fired by a JetStream message schedule (FiredCommandID:
// the server strips Nats-Msg-Id from fired messages), else the
// Nats-Msg-Id header, else "<stream>-<seq>" from the message's place in the
// stream it was read from (stable across redeliveries; "" when stream is
// "" too). h may be nil. The id is not validated here (see
// CommandIDProblem).
func CommandIDOf(body []byte, h HeaderGetter, stream string, seq uint64) string {
	return CommandIDFrom(PeekMeta(body).ID, h, stream, seq)
}

// CommandIDFrom is CommandIDOf for a caller that has peeked the body
// already (PeekMeta): bodyID is the body's "id" ("" when absent or not a
// string). It reads no JSON.
func CommandIDFrom(bodyID string, h HeaderGetter, stream string, seq uint64) string {
	if bodyID != "" {
		return bodyID
	}
	if h != nil {
		if id := h.Get(HeaderCommandID); id != "" {
			return id
		}
		if id := FiredCommandID(h); id != "" {
			return id
		}
		if id := h.Get(HeaderNatsMsgID); id != "" {
			return id
		}
	}
	if stream == "" {
		return ""
	}
	return stream + "-" + strconv.FormatUint(seq, 10)
}

// Headers of JetStream message schedules (nats-server 2.14+): the server
// sets HeaderScheduler and HeaderScheduleNext on each message it fires;
// HeaderScheduleNonce is groupflow's, set on the schedule when it is made.
const (
	HeaderScheduler     = "Nats-Scheduler"
	HeaderScheduleNext  = "Nats-Schedule-Next"
	HeaderScheduleNonce = "Groupflow-Schedule-Nonce"
)

// FiredIDPrefix starts the id of every command fired by a schedule.
const FiredIDPrefix = "sched-"

// ScheduleNameMax bounds a schedule's name; ScheduleNameRE is its form.
const ScheduleNameMax = 64

// ScheduleNameRE is the form of a schedule's name.
var ScheduleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// FiredCommandID is the command id of a message the server fired from a
// schedule: "sched-<name>-<24 hex digits of SHA-256(scheduler, nonce,
// next)>", or "" when h is not a fired message's header (no
// Nats-Scheduler). The same fire always gives the same id; two fires, or
// two creations of a schedule with the same name, never do.
func FiredCommandID(h HeaderGetter) string {
	scheduler := h.Get(HeaderScheduler)
	if scheduler == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(scheduler + "\n" + h.Get(HeaderScheduleNonce) + "\n" + h.Get(HeaderScheduleNext)))
	name := scheduler[strings.LastIndexByte(scheduler, '.')+1:]
	if len(name) > ScheduleNameMax || !ScheduleNameRE.MatchString(name) {
		name = "x"
	}
	return FiredIDPrefix + name + "-" + hex.EncodeToString(sum[:12])
}
