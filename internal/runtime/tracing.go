package runtime

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"groupflow/internal/trace"
	"groupflow/messages"
)

var spanKindConsumer = oteltrace.WithSpanKind(oteltrace.SpanKindConsumer)

// tracing runs each command in an OpenTelemetry span "command <type>",
// child of the W3C traceparent the command arrived with (a new trace
// without one), with the command's identity as attributes. It sits inside
// correlation (which resolves the identity) and outside dead-lettering and
// retries, so the span covers every in-process attempt; the Wix calls are
// its children (package wix) and the events carry its traceparent (package
// events). A failed handling marks the span as an error. The copies of known
// commands that the unknown-types consumer only acknowledges get no span.
func (r *Runtime) tracing(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		info := trace.From(msg.Context())
		if message.HandlerNameFromCtx(msg.Context()) == UnknownCommandsDurable && info.CommandType != messages.UnknownCommandType {
			return h(msg)
		}
		ctx := trace.Extract(msg.Context(), msg.Metadata)
		ctx, span := trace.Tracer().Start(ctx, "command "+info.CommandType, spanKindConsumer)
		defer span.End()
		if span.IsRecording() { // attributes only for a span that keeps them
			span.SetAttributes(append(info.AppendAttributes(make([]attribute.KeyValue, 0, 7)),
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", msg.Metadata.Get(MetaSubject)),
				attribute.String("groupflow.delivery", msg.Metadata.Get(MetaDelivery)))...)
		}
		msg.SetContext(ctx)
		out, err := h(msg)
		if err != nil {
			trace.Fail(span, err)
		}
		return out, err
	}
}
