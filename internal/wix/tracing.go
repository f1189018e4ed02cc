package wix

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"

	"groupflow/internal/trace"
)

// callSpan is the OpenTelemetry span of one HTTP attempt to Wix ("wix
// <endpoint>"), a child of the command's span: one per attempt, as counted
// by CallCounter (a retried call has a span per attempt). Its attributes are
// the endpoint, method, site, answer status, time waited on the limiter and
// the command's identity; never a URL, id or body.
type callSpan struct {
	span   oteltrace.Span
	status int
	wait   time.Duration
}

func (s *Site) startSpan(ctx context.Context, c call) (context.Context, *callSpan) {
	attrs := append(trace.From(ctx).Attributes(),
		attribute.String("wix.endpoint", c.op), attribute.String("http.request.method", c.method), attribute.String("wix.site", s.id))
	ctx, span := trace.Tracer().Start(ctx, "wix "+c.op, oteltrace.WithSpanKind(oteltrace.SpanKindClient), oteltrace.WithAttributes(attrs...))
	return ctx, &callSpan{span: span}
}

// end records the outcome and ends the span.
func (cs *callSpan) end(err error) {
	cs.span.SetAttributes(attribute.Float64("wix.limiter_wait_ms", float64(cs.wait.Microseconds())/1000))
	if cs.status != 0 {
		cs.span.SetAttributes(attribute.Int("http.response.status_code", cs.status))
	}
	if err != nil {
		cs.span.RecordError(err)
		cs.span.SetStatus(codes.Error, err.Error())
	}
	cs.span.End()
}
