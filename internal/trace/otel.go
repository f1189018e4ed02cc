package trace

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
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

// Inject sets headers' traceparent (and tracestate) from ctx's span; it
// reports false, setting nothing, when ctx has no valid span context.
func Inject(ctx context.Context, headers map[string]string) bool {
	if !oteltrace.SpanContextFromContext(ctx).IsValid() {
		return false
	}
	propagator.Inject(ctx, propagation.MapCarrier(headers))
	return true
}

// Attributes returns the command's identity as span attributes.
func (i Info) Attributes() []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 4)
	for _, a := range []struct {
		k attribute.Key
		v string
	}{{AttrCommandType, i.CommandType}, {AttrCommandID, i.CommandID}, {AttrCorrelationID, i.CorrelationID}, {AttrSiteID, i.SiteID}} {
		if a.v != "" {
			kv = append(kv, a.k.String(a.v))
		}
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
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
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
