package wix

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
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

// startSpan starts the attempt's span. Its attributes are built only for a
// span that records (no tracer provider, or one that samples it out: none;
// they were ~750 bytes a call).
func (s *Site) startSpan(ctx context.Context, c call) (context.Context, *callSpan) {
	ctx, span := trace.Tracer().Start(ctx, spanName(c.op), spanKindClient)
	if span.IsRecording() {
		attrs := trace.From(ctx).AppendAttributes(make([]attribute.KeyValue, 0, 7))
		span.SetAttributes(append(attrs, attribute.String("wix.endpoint", c.op), attribute.String("http.request.method", c.method), attribute.String("wix.site", s.id))...)
	}
	return ctx, &callSpan{span: span}
}

var spanKindClient = oteltrace.WithSpanKind(oteltrace.SpanKindClient)

// spanNames caches "wix " + op for each endpoint name (a fixed set).
var spanNames sync.Map

func spanName(op string) string {
	if n, ok := spanNames.Load(op); ok {
		return n.(string)
	}
	n, _ := spanNames.LoadOrStore(op, "wix "+op)
	return n.(string)
}

// end records the outcome and ends the span.
func (cs *callSpan) end(err error) {
	wait := attribute.Float64("wix.limiter_wait_ms", float64(cs.wait.Microseconds())/1000)
	if cs.status != 0 {
		cs.span.SetAttributes(wait, attribute.Int("http.response.status_code", cs.status))
	} else {
		cs.span.SetAttributes(wait)
	}
	if err != nil {
		trace.Fail(cs.span, err)
	}
	cs.span.End()
}
