package trace

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// Spans and propagation are OpenTelemetry's: the W3C traceparent of a
// command's headers is the parent of the command's span (runtime), each Wix
// call is a child span of it (package wix), and every event carries the
// traceparent of the span that published it (package events). Without
// Setup, otel's globals are no-ops: nothing is recorded and events carry the
// command's own traceparent, if any.

// TracerName names groupflow's tracer.
const TracerName = "groupflow"

// Attribute keys set on groupflow's spans.
const (
	AttrCommandType   = attribute.Key("groupflow.command.type")
	AttrCommandID     = attribute.Key("groupflow.command.id")
	AttrCorrelationID = attribute.Key("groupflow.correlation.id")
	AttrSiteID        = attribute.Key("groupflow.site.id")
)

// Tracer returns groupflow's tracer from otel's global provider (resolved at
// each call, so a provider installed later, by Setup or a test, is used).
func Tracer() oteltrace.Tracer { return otel.Tracer(TracerName) }

// propagator is W3C trace context, whatever otel's global is.
var propagator = propagation.TraceContext{}

// Extract returns ctx with the remote span context of headers' traceparent
// (ctx unchanged when it is absent or malformed).
func Extract(ctx context.Context, headers map[string]string) context.Context {
	return propagator.Extract(ctx, propagation.MapCarrier(headers))
}

// MaxTraceState bounds the tracestate Inject passes on (W3C lets a
// propagator cut it at 512 characters): a command's producer chooses it, and
// it would ride on every event the command publishes.
const MaxTraceState = 512

// Inject sets headers' traceparent (and tracestate, if at most
// MaxTraceState bytes) from ctx's span; it reports false, setting nothing,
// when ctx has no valid span context.
func Inject(ctx context.Context, headers map[string]string) bool {
	sc := oteltrace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return false
	}
	if len(sc.TraceState().String()) > MaxTraceState {
		ctx = oteltrace.ContextWithSpanContext(ctx, sc.WithTraceState(oteltrace.TraceState{}))
	}
	propagator.Inject(ctx, propagation.MapCarrier(headers))
	return true
}

// MaxAttributeLen bounds a span attribute's value (in characters; the SDK
// cuts longer ones) unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT sets less. Fail clips a span's
// status text to it too.
const MaxAttributeLen = 1024

// Fail records err on span as an exception event and marks it failed, the
// message clipped to MaxAttributeLen bytes in both (the SDK bounds neither
// an event's attributes nor the status text).
func Fail(span oteltrace.Span, err error) {
	msg := err.Error()
	if len(msg) > MaxAttributeLen {
		msg = strings.ToValidUTF8(msg[:MaxAttributeLen], "") + "…"
	}
	span.AddEvent("exception", oteltrace.WithAttributes(
		attribute.String("exception.type", fmt.Sprintf("%T", err)), attribute.String("exception.message", msg)))
	span.SetStatus(codes.Error, msg)
}

// spanLimits are the SDK's (from the OTEL_*_LIMIT variables) with attribute
// values bounded by MaxAttributeLen.
func spanLimits() sdktrace.SpanLimits {
	l := sdktrace.NewSpanLimits()
	if l.AttributeValueLengthLimit < 0 || l.AttributeValueLengthLimit > MaxAttributeLen {
		l.AttributeValueLengthLimit = MaxAttributeLen
	}
	return l
}

// Attributes returns the command's identity as span attributes.
func (i Info) Attributes() []attribute.KeyValue {
	return i.AppendAttributes(make([]attribute.KeyValue, 0, 4))
}

// AppendAttributes appends Attributes to kv (a caller adding attributes
// of its own sizes kv for all of them: one allocation).
func (i Info) AppendAttributes(kv []attribute.KeyValue) []attribute.KeyValue {
	if i.CommandType != "" {
		kv = append(kv, AttrCommandType.String(i.CommandType))
	}
	if i.CommandID != "" {
		kv = append(kv, AttrCommandID.String(i.CommandID))
	}
	if i.CorrelationID != "" {
		kv = append(kv, AttrCorrelationID.String(i.CorrelationID))
	}
	if i.SiteID != "" {
		kv = append(kv, AttrSiteID.String(i.SiteID))
	}
	return kv
}

// Setup installs the W3C trace-context propagator and an SDK tracer
// provider as otel's globals, so every command has a span and every event a
// traceparent. Spans leave the process only when an OTLP endpoint is
// configured by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, and not OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none. The exporter (OTLP over HTTP, http/protobuf:
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc is an error) reads the other
// OTEL_EXPORTER_OTLP_* variables itself (headers, timeout, certificates),
// the sampler OTEL_TRACES_SAMPLER*, the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service.name defaults to service). exporting
// says whether spans are exported; shutdown flushes those still buffered.
func Setup(ctx context.Context, service string, getenv func(string) string) (shutdown func(context.Context) error, exporting bool, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, false, fmt.Errorf("otel resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(spanLimits())}
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	exporting = endpoint != "" && !strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") &&
		!strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none")
	if exporting {
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is supported", proto)
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("otlp trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, exporting, nil
}
