package trace_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"groupflow/internal/trace"
)

func TestExtractInject(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := trace.Extract(context.Background(), map[string]string{"traceparent": tp})
	out := map[string]string{}
	if !trace.Inject(ctx, out) || out["traceparent"] != tp {
		t.Fatalf("inject after extract: %v", out)
	}
	for _, bad := range []string{"", "00-zz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		out := map[string]string{}
		if trace.Inject(trace.Extract(context.Background(), map[string]string{"traceparent": bad}), out) || len(out) != 0 {
			t.Errorf("traceparent %q: injected %v", bad, out)
		}
	}
}

// otlpSink counts the OTLP/HTTP trace exports it receives.
func otlpSink(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			n.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestSetupExportsOnlyWithAnEndpoint: without OTEL_EXPORTER_OTLP_ENDPOINT no
// span leaves the process (but spans get ids); with it, spans are posted to
// <endpoint>/v1/traces; an unsupported protocol is refused.
func TestSetupExportsOnlyWithAnEndpoint(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	srv, posts := otlpSink(t)
	ctx := context.Background()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	shutdown, exporting, err := trace.Setup(ctx, "groupflow-test", os.Getenv)
	if err != nil || exporting {
		t.Fatalf("no endpoint: exporting=%v err=%v", exporting, err)
	}
	_, span := trace.Tracer().Start(ctx, "quiet")
	if !span.SpanContext().IsValid() {
		t.Error("without an exporter spans still need ids (events carry them)")
	}
	span.End()
	_ = shutdown(ctx)

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	shutdown, exporting, err = trace.Setup(ctx, "groupflow-test", os.Getenv)
	if err != nil || !exporting {
		t.Fatalf("endpoint set: exporting=%v err=%v", exporting, err)
	}
	_, span = trace.Tracer().Start(ctx, "exported")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 1 {
		t.Fatalf("%d OTLP posts, want 1 (the quiet provider must have sent none)", posts.Load())
	}

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, _, err := trace.Setup(ctx, "groupflow-test", os.Getenv); err == nil || !strings.Contains(err.Error(), "http/protobuf") {
		t.Fatalf("grpc protocol: %v", err)
	}
}

// TestSpansBounded: a span's attribute values are cut at
// trace.MaxAttributeLen unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says less,
// and Fail clips the status text and the exception event's message to
// MaxAttributeLen bytes (the SDK leaves them whole): a hostile
// command or a long Wix answer cannot make a span unbounded.
func TestSpansBounded(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	ctx := context.Background()
	long := strings.Repeat("é", 100_000)
	for env, want := range map[string]int{"": trace.MaxAttributeLen, "64": 64, "1000000": trace.MaxAttributeLen} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
		t.Setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", env)
		shutdown, _, err := trace.Setup(ctx, "groupflow-test", os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		_, span := trace.Tracer().Start(ctx, "bounded", oteltrace.WithAttributes(attribute.String("x", long)))
		trace.Fail(span, errors.New(long))
		ro := span.(sdktrace.ReadOnlySpan)
		if got := len([]rune(ro.Attributes()[0].Value.AsString())); got != want {
			t.Errorf("limit %q: attribute of %d characters, want %d", env, got, want)
		}
		if got := len(ro.Status().Description); got > trace.MaxAttributeLen+8 {
			t.Errorf("limit %q: status of %d bytes", env, got)
		}
		for _, ev := range ro.Events() {
			for _, a := range ev.Attributes {
				if len(a.Value.AsString()) > trace.MaxAttributeLen+len("…") {
					t.Errorf("limit %q: event attribute %s of %d characters", env, a.Key, len([]rune(a.Value.AsString())))
				}
			}
		}
		span.End()
		_ = shutdown(ctx)
	}
}

// TestExtractHostileHeaders: a malformed or oversized tracestate is dropped
// (the traceparent is kept), and an invalid traceparent of any size gives no
// parent.
func TestExtractHostileHeaders(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 200))
	}
	for _, ts := range []string{strings.Join(many, ","), "a=\x00b", strings.Repeat("x", 100_000)} {
		out := map[string]string{}
		if !trace.Inject(trace.Extract(context.Background(), map[string]string{"traceparent": tp, "tracestate": ts}), out) ||
			out["traceparent"] != tp || out["tracestate"] != "" {
			t.Errorf("tracestate %.20q: injected %.80v", ts, out)
		}
	}
	// A valid tracestate of 32 members (about 6 KB) would ride on every
	// event the command publishes: only up to MaxTraceState is passed on.
	valid := make([]string, 32)
	for i := range valid {
		valid[i] = fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 180))
	}
	out := map[string]string{}
	if !trace.Inject(trace.Extract(context.Background(), map[string]string{"traceparent": tp, "tracestate": strings.Join(valid, ",")}), out) ||
		out["traceparent"] != tp || len(out["tracestate"]) > trace.MaxTraceState {
		t.Errorf("32-member tracestate: %d bytes passed on", len(out["tracestate"]))
	}
	out = map[string]string{}
	trace.Inject(trace.Extract(context.Background(), map[string]string{"traceparent": tp, "tracestate": "vendor=abc"}), out)
	if out["tracestate"] != "vendor=abc" {
		t.Errorf("short tracestate not passed on: %v", out)
	}
	out = map[string]string{}
	if trace.Inject(trace.Extract(context.Background(), map[string]string{"traceparent": tp + strings.Repeat("-01", 10_000)}), out) {
		t.Errorf("a long traceparent was taken")
	}
}
