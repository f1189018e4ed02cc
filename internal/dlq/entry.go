// Package dlq defines groupflow's dead letters: commands that failed
// permanently or exhausted their deliveries, kept on groups.dlq.<command>
// with their original body untouched and headers saying why, so a person can
// act on them and replay them to the original subject.
package dlq

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"groupflow/messages"
)

// Headers of a dead letter.
const (
	HeaderReason          = "Groupflow-Dlq-Reason"
	HeaderKind            = "Groupflow-Dlq-Kind"
	HeaderOriginalSubject = "Groupflow-Dlq-Original-Subject"
	HeaderOriginalSeq     = "Groupflow-Dlq-Original-Seq"
	HeaderHandler         = "Groupflow-Dlq-Handler"
	HeaderDeliveries      = "Groupflow-Dlq-Deliveries"
	HeaderFirstFailure    = "Groupflow-Dlq-First-Failure"
	HeaderLastFailure     = "Groupflow-Dlq-Last-Failure"
	HeaderCommandID       = "Groupflow-Dlq-Command-Id"
	HeaderCommandType     = "Groupflow-Dlq-Command-Type"
	HeaderFields          = "Groupflow-Dlq-Fields"
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
	// Body is the original command body, untouched.
	Body []byte `json:"-"`
}

// MsgID is the dead letter's Nats-Msg-Id: one per original message, so a
// retried dead-lettering is stored once while a replayed command that fails
// again gets an entry of its own.
func (e *Entry) MsgID() string {
	return fmt.Sprintf("dlq:%s:%d:%s", e.OriginalSubject, e.OriginalSeq, e.CommandID)
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
		reason = reason[:maxReason] + "…"
	}
	m.Metadata.Set(HeaderReason, reason)
	m.Metadata.Set(HeaderKind, e.Kind)
	m.Metadata.Set(HeaderOriginalSubject, e.OriginalSubject)
	if e.OriginalSeq > 0 {
		m.Metadata.Set(HeaderOriginalSeq, strconv.FormatUint(e.OriginalSeq, 10))
	}
	m.Metadata.Set(HeaderHandler, e.Handler)
	m.Metadata.Set(HeaderDeliveries, strconv.Itoa(e.Deliveries))
	m.Metadata.Set(HeaderFirstFailure, e.FirstFailure.UTC().Format(time.RFC3339Nano))
	m.Metadata.Set(HeaderLastFailure, e.LastFailure.UTC().Format(time.RFC3339Nano))
	m.Metadata.Set(HeaderCommandID, e.CommandID)
	m.Metadata.Set(HeaderCommandType, e.CommandType)
	if len(e.Fields) > 0 {
		b, _ := json.Marshal(e.Fields)
		m.Metadata.Set(HeaderFields, string(b))
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
	for k, vs := range h {
		if strings.HasPrefix(k, "Groupflow-Dlq-") || k == nats.MsgIdHdr || len(vs) == 0 {
			continue
		}
		e.Headers[k] = vs[0]
	}
	return e
}

// OriginalHeaders filters a command's headers for keeping in a dead letter:
// transport and internal keys are dropped, and so is anything that looks
// like a credential.
func OriginalHeaders(meta map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range meta {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(k, "_"), k == nats.MsgIdHdr, strings.HasPrefix(k, "Groupflow-Dlq-"):
			continue
		case strings.Contains(lk, "authorization"), strings.Contains(lk, "token"), strings.Contains(lk, "secret"),
			strings.Contains(lk, "password"), strings.Contains(lk, "api-key"), strings.Contains(lk, "apikey"):
			continue
		}
		out[k] = v
	}
	return out
}
