// Package dlq defines groupflow's dead letters: commands that failed
// permanently or exhausted their deliveries, kept on groups.dlq.<command>
// with their original body untouched and headers saying why, so a person can
// act on them and replay them to the original subject.
package dlq

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"groupflow/internal/oneline"
	"groupflow/messages"
)

// Headers of a dead letter (the contract's, from package messages).
const (
	HeaderReason          = messages.HeaderDLQReason
	HeaderKind            = messages.HeaderDLQKind
	HeaderOriginalSubject = messages.HeaderDLQOriginalSubject
	HeaderOriginalSeq     = messages.HeaderDLQOriginalSeq
	HeaderHandler         = messages.HeaderDLQHandler
	HeaderDeliveries      = messages.HeaderDLQDeliveries
	HeaderFirstFailure    = messages.HeaderDLQFirstFailure
	HeaderLastFailure     = messages.HeaderDLQLastFailure
	HeaderCommandID       = messages.HeaderDLQCommandID
	HeaderCommandType     = messages.HeaderDLQCommandType
	HeaderFields          = messages.HeaderDLQFields
)

// Entry is one dead letter.
type Entry struct {
	// Seq is the entry's sequence in the DLQ stream (0 before it is stored).
	Seq uint64 `json:"seq,omitempty"`
	// Stored is when the DLQ stream stored the entry.
	Stored          time.Time             `json:"stored,omitempty"`
	CommandType     string                `json:"commandType"`
	CommandID       string                `json:"commandId"`
	Kind            string                `json:"kind"`
	Reason          string                `json:"reason"`
	Fields          []messages.FieldError `json:"fields,omitempty"`
	OriginalSubject string                `json:"originalSubject"`
	OriginalSeq     uint64                `json:"originalSeq,omitempty"`
	Handler         string                `json:"handler,omitempty"`
	Deliveries      int                   `json:"deliveries"`
	FirstFailure    time.Time             `json:"firstFailure"`
	LastFailure     time.Time             `json:"lastFailure"`
	// Headers are the original command's headers (secrets removed).
	Headers map[string]string `json:"headers,omitempty"`
	// HeadersDropped says which original headers were left out for size.
	HeadersDropped string `json:"headersDropped,omitempty"`
	// Subject is the DLQ subject the entry is stored on (empty before).
	Subject string `json:"subject,omitempty"`
	// Refused, when set, says why the entry is not replayed (see
	// Store.ReplayTarget): set by the Store's reads.
	Refused string `json:"refused,omitempty"`
	// Body is the original command body, untouched.
	Body []byte `json:"-"`
	// streamCreated is the creation time of the DLQ stream the entry was
	// read from (see ReplayMsgID), set by the Store's reads.
	streamCreated time.Time
}

// MsgID is the dead letter's Nats-Msg-Id: one per original message, so a
// retried dead-lettering is stored once while a replayed command that fails
// again gets an entry of its own.
func (e *Entry) MsgID() string {
	id := fmt.Sprintf("dlq:%s:%d:%s", e.OriginalSubject, e.OriginalSeq, e.CommandID)
	if len(id) > maxMsgID {
		// Still one per original message, and short enough for a header.
		sum := sha256.Sum256([]byte(id))
		id = "dlq:" + hex.EncodeToString(sum[:])
	}
	return id
}

// maxMsgID bounds MsgID; a longer one is replaced by its hash.
const maxMsgID = 256

// maxHeaderValue bounds the DLQ's own header values (ids, subjects) and
// maxFields the JSON of the field errors: with MaxCopiedHeaderBytes and
// maxReason this keeps a dead letter's headers well under JetStream's 64 KiB.
const (
	maxHeaderValue = 1 << 10
	maxFields      = 8 << 10
)

// clip cuts a DLQ header value to maxHeaderValue bytes.
func clip(v string) string {
	if len(v) <= maxHeaderValue {
		return v
	}
	return oneline.Cut(v, maxHeaderValue-len("…")) + "…"
}

// maxReason bounds the reason header (NATS headers are not meant for essays).
const maxReason = 2000

// Message renders the entry as a Watermill message for publishing on the
// DLQ subject.
func (e *Entry) Message() *message.Message {
	m := message.NewMessage(e.MsgID(), e.Body)
	for k, v := range e.Headers {
		m.Metadata.Set(k, v)
	}
	reason := strings.ReplaceAll(e.Reason, "\n", " ")
	if len(reason) > maxReason {
		reason = oneline.Cut(reason, maxReason) + "…"
	}
	m.Metadata.Set(HeaderReason, reason)
	m.Metadata.Set(HeaderKind, clip(e.Kind))
	m.Metadata.Set(HeaderOriginalSubject, clip(e.OriginalSubject))
	if e.OriginalSeq > 0 {
		m.Metadata.Set(HeaderOriginalSeq, strconv.FormatUint(e.OriginalSeq, 10))
	}
	m.Metadata.Set(HeaderHandler, clip(e.Handler))
	m.Metadata.Set(HeaderDeliveries, strconv.Itoa(e.Deliveries))
	m.Metadata.Set(HeaderFirstFailure, e.FirstFailure.UTC().Format(time.RFC3339Nano))
	m.Metadata.Set(HeaderLastFailure, e.LastFailure.UTC().Format(time.RFC3339Nano))
	m.Metadata.Set(HeaderCommandID, clip(e.CommandID))
	m.Metadata.Set(HeaderCommandType, clip(e.CommandType))
	for n := len(e.Fields); n > 0; n /= 2 {
		// As many field errors as fit (the reason names them all).
		if b, _ := json.Marshal(e.Fields[:n]); len(b) <= maxFields {
			m.Metadata.Set(HeaderFields, string(b))
			break
		}
	}
	return m
}

// Parse reads a stored dead letter.
func Parse(seq uint64, stored time.Time, h nats.Header, body []byte) *Entry {
	e := &Entry{Seq: seq, Stored: stored, Body: body, Headers: map[string]string{}}
	e.Reason = h.Get(HeaderReason)
	e.Kind = h.Get(HeaderKind)
	e.OriginalSubject = h.Get(HeaderOriginalSubject)
	e.OriginalSeq, _ = strconv.ParseUint(h.Get(HeaderOriginalSeq), 10, 64)
	e.Handler = h.Get(HeaderHandler)
	e.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeliveries))
	e.FirstFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderFirstFailure))
	e.LastFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderLastFailure))
	e.CommandID = h.Get(HeaderCommandID)
	e.CommandType = h.Get(HeaderCommandType)
	if f := h.Get(HeaderFields); f != "" {
		_ = json.Unmarshal([]byte(f), &e.Fields)
	}
	e.HeadersDropped = h.Get(HeaderHeadersDropped)
	for k, vs := range h {
		if strings.HasPrefix(k, messages.HeaderDLQPrefix) || k == messages.HeaderNatsMsgID || len(vs) == 0 {
			continue
		}
		e.Headers[k] = vs[0]
	}
	return e
}

// Bounds of the original headers a dead letter keeps. JetStream refuses a
// message whose headers exceed 64 KiB, and a producer may send up to that
// much: the copy is bounded so that the dead letter, with its own headers,
// is always storable.
const (
	// MaxCopiedHeaderBytes bounds the copied headers' names and values together.
	MaxCopiedHeaderBytes = 16 << 10
	// MaxCopiedHeaderValue bounds one copied value; a longer one is cut.
	MaxCopiedHeaderValue = 1 << 10
	// maxCopiedHeaderName bounds one copied name; a longer one is dropped.
	maxCopiedHeaderName = 128
)

// HeaderHeadersDropped notes which original headers a dead letter left out
// or cut for size.
const HeaderHeadersDropped = messages.HeaderDLQHeadersDropped

// keptHeaders are copied whatever the credential filter says.
var keptHeaders = map[string]bool{
	strings.ToLower(messages.HeaderTraceparent): true, strings.ToLower(messages.HeaderTracestate): true,
	strings.ToLower(messages.HeaderCorrelationID): true, strings.ToLower(messages.HeaderCommandID): true,
}

// credentialWords mark a header name as a possible credential (compared with
// the name lower-cased and '_' read as '-').
var credentialWords = []string{
	"auth", "token", "secret", "key", "pass", "pwd", "cookie", "session",
	"credential", "signature", "jwt", "bearer", "csrf", "xsrf", "nonce", "otp", "seed",
}

// credentialValue reports whether a value looks like a credential whatever
// its header's name: an HTTP authorization scheme followed by a value.
func credentialValue(v string) bool {
	lv := strings.ToLower(strings.TrimSpace(v))
	for _, scheme := range []string{"bearer ", "basic ", "digest ", "token ", "negotiate "} {
		if strings.HasPrefix(lv, scheme) {
			return true
		}
	}
	return false
}

// CopyableHeader reports whether an original header may travel from one
// publish to another (into a dead letter, or from a dead letter into its
// replay). Refused: every Nats-* header (the server interprets them:
// Nats-Expected-*, Nats-Msg-Id, Nats-Rollup, Nats-TTL, Nats-Schedule*, …),
// groupflow's DLQ and replay headers, Watermill's internal ("_") keys, and
// anything whose name or value looks like a credential. Names compare
// case-insensitively, '_' read as '-'; traceparent, tracestate and the
// command and correlation id headers are always kept.
func CopyableHeader(name, value string) bool {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")
	switch {
	case n == "", strings.HasPrefix(name, "_"):
		return false
	case keptHeaders[n]:
		return true
	case strings.HasPrefix(n, "nats-"), strings.HasPrefix(n, strings.ToLower(messages.HeaderDLQPrefix)),
		n == strings.ToLower(HeaderReplayOf):
		return false
	case credentialValue(value):
		return false
	}
	compact := strings.ReplaceAll(n, "-", "")
	for _, w := range credentialWords {
		if strings.Contains(n, w) || strings.Contains(compact, w) {
			return false
		}
	}
	return true
}

// OriginalHeaders filters a message's headers for copying into another
// publish: a dead letter (runtime, capture, mailer) or the replay of one.
// It keeps what CopyableHeader allows, cuts values to MaxCopiedHeaderValue
// and keeps at most MaxCopiedHeaderBytes (traceparent and the id headers
// first, then by name); when it cut or left out anything for size it adds
// HeaderHeadersDropped saying what.
func OriginalHeaders(meta map[string]string) map[string]string {
	names := make([]string, 0, len(meta))
	for k, v := range meta {
		if CopyableHeader(k, v) {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		ka, kb := keptHeaders[strings.ToLower(a)], keptHeaders[strings.ToLower(b)]
		if ka != kb {
			if ka {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	out := map[string]string{}
	budget := MaxCopiedHeaderBytes
	var dropped, cut int
	for _, k := range names {
		v := meta[k]
		if len(k) > maxCopiedHeaderName {
			dropped++
			continue
		}
		if len(v) > MaxCopiedHeaderValue {
			v = oneline.Cut(v, MaxCopiedHeaderValue-len("…")) + "…"
			cut++
		}
		if len(k)+len(v) > budget {
			dropped++
			continue
		}
		budget -= len(k) + len(v)
		out[k] = v
	}
	if dropped > 0 || cut > 0 {
		out[HeaderHeadersDropped] = fmt.Sprintf("%d original header(s) left out and %d cut to %d bytes (copied headers are limited to %d bytes)",
			dropped, cut, MaxCopiedHeaderValue, MaxCopiedHeaderBytes)
	}
	return out
}

// Delivery is the message a consumer gives up on, as the consumer runtime
// (runtime.Source) hands it over: see runtime.DeliveryOf.
type Delivery struct {
	Subject    string            // the subject it was received on
	Seq        uint64            // its sequence in its stream
	Deliveries int               // delivery count
	Headers    map[string]string // its headers (and the runtime's metadata, which is not copied)
	Body       []byte
}

// Failure is why a consumer gives up on a delivery.
type Failure struct {
	CommandType, CommandID string // for an event: its type and id
	Kind                   string // messages.Failure*
	Reason                 string
	Fields                 []messages.FieldError
	Handler                string // the consumer that gave up
	// FirstFailure and LastFailure default to now.
	FirstFailure, LastFailure time.Time
}

// NewEntry builds the dead letter of d, the one way groupflow and groupmail
// build theirs: the body untouched, the original headers copied within
// bounds and without credentials (OriginalHeaders).
func NewEntry(d Delivery, f Failure) *Entry {
	now := time.Now().UTC()
	if f.LastFailure.IsZero() {
		f.LastFailure = now
	}
	if f.FirstFailure.IsZero() {
		f.FirstFailure = f.LastFailure
	}
	return &Entry{
		CommandType:     f.CommandType,
		CommandID:       f.CommandID,
		Kind:            f.Kind,
		Reason:          f.Reason,
		Fields:          f.Fields,
		OriginalSubject: d.Subject,
		OriginalSeq:     d.Seq,
		Handler:         f.Handler,
		Deliveries:      d.Deliveries,
		FirstFailure:    f.FirstFailure,
		LastFailure:     f.LastFailure,
		Headers:         OriginalHeaders(d.Headers),
		Body:            d.Body,
	}
}
