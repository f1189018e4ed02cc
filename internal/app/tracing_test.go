package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"groupflow/internal/testutil"
	"groupflow/internal/trace"
	"groupflow/messages"
)

// TestTracingOfARosterCommand: a provision_group roster command that arrives
// with a W3C traceparent gives one span "command provision_group" in that
// trace, a child span per Wix call (as many as the event's wixCalls, with
// endpoint, status and the command's ids as attributes), and its event
// carries the command span's traceparent.
func TestTracingOfARosterCommand(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	ended := endOf{name: "command provision_group", ch: make(chan struct{}, 1)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSpanProcessor(ended))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	var people []string
	for _, m := range a.Sim.Site("demo-site").Members()[:3] {
		people = append(people, fmt.Sprintf(`{"email":%q}`, m.LoginEmail))
	}
	sub, err := nc.SubscribeSync("groups.evt.group_provisioned")
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	msg := nats.NewMsg("groups.cmd.provision_group")
	msg.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	msg.Data = []byte(`{"id":"trace-roster","correlationId":"corr-trace","group":{"name":"Traced"},"allowDuplicateName":true,"people":[` + strings.Join(people, ",") + `]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no event: %v", err)
	}
	var ev messages.GroupProvisioned
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Added+ev.AlreadyMembers != 3 {
		t.Fatalf("event: %v %s", err, m.Data)
	}

	// The event is published inside the command's span: await its end.
	select {
	case <-ended.ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the command span did not end")
	}
	var cmd sdktrace.ReadOnlySpan
	spans := exp.GetSpans().Snapshots()
	for _, s := range spans {
		if s.Name() == "command provision_group" {
			cmd = s
		}
	}
	if cmd == nil {
		t.Fatalf("no command span among %d", len(spans))
	}
	if got := cmd.SpanContext().TraceID().String(); got != traceID || cmd.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("command span in trace %s under %s; want the command's traceparent", got, cmd.Parent().SpanID())
	}
	attrs := attrMap(cmd)
	if attrs[string(trace.AttrCommandID)] != "trace-roster" || attrs[string(trace.AttrCorrelationID)] != "corr-trace" {
		t.Errorf("command span attributes %v", attrs)
	}
	wixCalls, checkpoints := 0, 0
	for _, s := range spans {
		if s.Parent().SpanID() != cmd.SpanContext().SpanID() {
			continue
		}
		if strings.HasPrefix(s.Name(), "checkpoint ") {
			checkpoints++
			if at := attrMap(s); at["groupflow.checkpoint"] == "" || at[string(trace.AttrCommandID)] != "trace-roster" {
				t.Errorf("checkpoint span %s attributes %v", s.Name(), at)
			}
			continue
		}
		if !strings.HasPrefix(s.Name(), "wix ") {
			t.Errorf("unexpected child span %q", s.Name())
			continue
		}
		wixCalls++
		at := attrMap(s)
		if at["wix.endpoint"] == "" || at["http.response.status_code"] == "" || at["wix.limiter_wait_ms"] == "" ||
			at[string(trace.AttrCommandID)] != "trace-roster" || at[string(trace.AttrCorrelationID)] != "corr-trace" {
			t.Errorf("wix span %s attributes %v", s.Name(), at)
		}
	}
	if wixCalls == 0 || int64(wixCalls) != ev.WixCalls {
		t.Errorf("%d wix child spans, event counts %d Wix calls", wixCalls, ev.WixCalls)
	}
	// A new group beside any of that name (allowDuplicateName): its creation
	// intent is the one checkpoint.
	if checkpoints != 1 {
		t.Errorf("%d checkpoint child spans, want 1 (the group step)", checkpoints)
	}
	if tp := m.Header.Get("traceparent"); tp != "00-"+traceID+"-"+cmd.SpanContext().SpanID().String()+"-01" {
		t.Errorf("event traceparent %q, want the command span's", tp)
	}
}

func attrMap(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// endOf signals on ch when a span named name ends (after the exporter saw it:
// processors run in registration order).
type endOf struct {
	name string
	ch   chan struct{}
}

func (e endOf) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (e endOf) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.Name() == e.name {
		select {
		case e.ch <- struct{}{}:
		default:
		}
	}
}
func (e endOf) Shutdown(context.Context) error   { return nil }
func (e endOf) ForceFlush(context.Context) error { return nil }
