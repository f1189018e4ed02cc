package messages

// Command headers (all optional).
const (
	// HeaderNatsMsgID is the JetStream de-duplication id; it is the command
	// id when the body has no "id".
	HeaderNatsMsgID = "Nats-Msg-Id"
	// HeaderTraceparent carries the W3C trace context.
	HeaderTraceparent = "traceparent"
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

// Dead-letter headers set on a message moved to Subjects.DLQ(commandType);
// the body is the original command body, untouched.
const (
	HeaderDLQReason          = "Groupflow-Dlq-Reason"           // the error message
	HeaderDLQKind            = "Groupflow-Dlq-Kind"             // FailureInvalid, FailureMalformed, FailurePermanent or FailureExhausted
	HeaderDLQOriginalSubject = "Groupflow-Dlq-Original-Subject" // the subject the command was received on
	HeaderDLQHandler         = "Groupflow-Dlq-Handler"          // the handler that gave up
	HeaderDLQDeliveries      = "Groupflow-Dlq-Deliveries"       // delivery count, decimal
	HeaderDLQFirstFailure    = "Groupflow-Dlq-First-Failure"    // RFC 3339 time of the first failure
	HeaderDLQLastFailure     = "Groupflow-Dlq-Last-Failure"     // RFC 3339 time of the last failure
	HeaderDLQCommandID       = "Groupflow-Dlq-Command-Id"       // the command id
	HeaderDLQFields          = "Groupflow-Dlq-Fields"           // JSON array of FieldError (FailureInvalid)
)
