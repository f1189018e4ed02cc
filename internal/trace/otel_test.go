package trace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"

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
