// Package events publishes groupflow's events onto JetStream as JSON with
// CloudEvents binary-mode attributes in NATS headers. Every event has a
// deterministic id that is also its Nats-Msg-Id, so a retried publish inside
// the stream's duplicate window is stored once.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	oteltrace "go.opentelemetry.io/otel/trace"

	"groupflow/internal/trace"
	"groupflow/messages"
)

// Header names set on every event (the contract's, from package messages).
const (
	HeaderSpecVersion   = messages.HeaderCESpecVersion
	HeaderID            = messages.HeaderCEID
	HeaderType          = messages.HeaderCEType
	HeaderSource        = messages.HeaderCESource
	HeaderTime          = messages.HeaderCETime
	HeaderSubject       = messages.HeaderCESubject
	HeaderContentType   = messages.HeaderContentType
	HeaderTraceParent   = messages.HeaderTraceparent
	HeaderCommandID     = messages.HeaderCommandID
	HeaderCorrelationID = messages.HeaderCorrelationID
)

// TypePrefix prefixes ce-type: "groupflow.group_provisioned".
const TypePrefix = "groupflow."

// Publisher publishes events through a Watermill publisher (watermill-nats
// over JetStream, one synchronous PubAck per message).
type Publisher struct {
	pub      message.Publisher
	subjects messages.Subjects
	source   string
	now      func() time.Time
}

// NewPublisher returns a Publisher over pub. source is the CloudEvents
// source attribute (e.g. "groupflow").
func NewPublisher(pub message.Publisher, subjects messages.Subjects, source string) *Publisher {
	if source == "" {
		source = "groupflow"
	}
	return &Publisher{pub: pub, subjects: subjects, source: source, now: time.Now}
}

// NewJetStreamPublisher builds the Watermill publisher groupflow uses for
// events and dead letters over its own connection nc (Close closes nc).
func NewJetStreamPublisher(nc *nats.Conn, logger watermill.LoggerAdapter) (message.Publisher, error) {
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         Marshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{AutoProvision: false},
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("watermill nats publisher: %w", err)
	}
	return pub, nil
}

// Subjects returns the subject scheme the publisher uses.
func (p *Publisher) Subjects() messages.Subjects { return p.subjects }

// Publish fills the event's meta from the command in ctx (command id,
// correlation id, site, time) and publishes it on groups.evt.<type>.
func (p *Publisher) Publish(ctx context.Context, e messages.Event) error {
	msg, err := p.Message(ctx, e)
	if err != nil {
		return err
	}
	if err := p.pub.Publish(p.subjects.Event(e.EventType()), msg); err != nil {
		return fmt.Errorf("publish %s event %s: %w", e.EventType(), e.EventID(), err)
	}
	return nil
}

// Message renders e as a Watermill message (UUID = event id, CloudEvents
// attributes in metadata) without publishing it.
func (p *Publisher) Message(ctx context.Context, e messages.Event) (*message.Message, error) {
	info := trace.From(ctx)
	meta := e.Meta()
	if meta.CommandID == "" {
		meta.CommandID = info.CommandID
	}
	if meta.CorrelationID == "" {
		meta.CorrelationID = info.CorrelationID
	}
	if meta.SiteID == "" {
		meta.SiteID = info.SiteID
	}
	if meta.OccurredAt.IsZero() {
		meta.OccurredAt = p.now().UTC()
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.EventType(), err)
	}
	id := e.EventID()
	msg := message.NewMessage(id, body)
	msg.Metadata.Set(HeaderSpecVersion, "1.0")
	msg.Metadata.Set(HeaderID, id)
	msg.Metadata.Set(HeaderType, TypePrefix+e.EventType())
	msg.Metadata.Set(HeaderSource, p.source)
	msg.Metadata.Set(HeaderTime, meta.OccurredAt.Format(time.RFC3339Nano))
	msg.Metadata.Set(HeaderSubject, subjectOf(e, meta))
	msg.Metadata.Set(HeaderContentType, "application/json")
	traceContext(ctx, e.EventType(), info, msg.Metadata)
	msg.Metadata.Set(HeaderCommandID, meta.CommandID)
	if meta.CorrelationID != "" {
		msg.Metadata.Set(HeaderCorrelationID, meta.CorrelationID)
	}
	return msg, nil
}

// subjectOf picks the CloudEvents subject: what the event is about.
func subjectOf(e messages.Event, meta *messages.EventMeta) string {
	if s, ok := e.(interface{ CESubject() string }); ok {
		if v := s.CESubject(); v != "" {
			return v
		}
	}
	return meta.CommandID
}

// Marshaler writes a Watermill message as a NATS message: body as is,
// metadata as headers, and the message UUID as Nats-Msg-Id so JetStream
// deduplicates retried publishes. Unlike watermill-nats' NATSMarshaler it adds
// no Watermill-specific header, so any NATS client reads events natively.
type Marshaler struct{}

// Marshal implements watermill-nats' Marshaler.
func (Marshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	m := nats.NewMsg(topic)
	m.Data = msg.Payload
	for k, v := range msg.Metadata {
		m.Header.Set(k, v)
	}
	if msg.UUID != "" {
		m.Header.Set(nats.MsgIdHdr, msg.UUID)
	}
	return m, nil
}

// PublishMessage publishes a message made by Message.
func (p *Publisher) PublishMessage(eventType string, msg *message.Message) error {
	if err := p.pub.Publish(p.subjects.Event(eventType), msg); err != nil {
		return fmt.Errorf("publish %s event %s: %w", eventType, msg.UUID, err)
	}
	return nil
}

// Republish publishes a stored event payload again, with the same id (so the
// stream deduplicates it inside its window).
func (p *Publisher) Republish(ctx context.Context, eventType string, payload []byte) error {
	e, err := messages.DecodeEvent(eventType, payload)
	if err != nil {
		return fmt.Errorf("republish %s: %w", eventType, err)
	}
	return p.Publish(ctx, e)
}

// traceContext sets the event's traceparent: the span of ctx (the command's,
// see package trace), else a span of its own when a tracer provider is set
// up, else the command's traceparent as it arrived.
func traceContext(ctx context.Context, eventType string, info trace.Info, headers map[string]string) {
	if trace.Inject(ctx, headers) {
		return
	}
	_, span := trace.Tracer().Start(ctx, "publish "+eventType, oteltrace.WithSpanKind(oteltrace.SpanKindProducer),
		oteltrace.WithAttributes(info.Attributes()...))
	defer span.End()
	if !trace.Inject(oteltrace.ContextWithSpan(ctx, span), headers) && trace.ValidTraceParent(info.TraceParent) {
		headers[HeaderTraceParent] = info.TraceParent
	}
}
