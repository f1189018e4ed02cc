package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

func startApp(t *testing.T, extra ...string) *app.App {
	t.Helper()
	args := append([]string{
		"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--wix-sim-listen", "127.0.0.1:0", "--wix-sim-rate-per-minute", "0", "--wix-rate-per-minute", "100000",
		"--wix-sim-members", "300", "--wix-sim-groups", "20",
	}, extra...)
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg, func(string) string { return "" }, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return a
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDefaultRunEndToEnd starts the processor as `make run` does (embedded
// NATS, embedded simulator), checks the admin endpoints and the streams, and
// carries a plain-NATS command through to its completion event.
func TestDefaultRunEndToEnd(t *testing.T) {
	a := startApp(t)

	if code, body := get(t, "http://"+a.AdminAddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	if code, _ := get(t, "http://"+a.AdminAddr+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}

	nc, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var names []string
	for n := range js.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	for _, want := range []string{"GROUPS_COMMANDS", "GROUPS_EVENTS", "GROUPS_DLQ"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("stream %s missing; have %v", want, names)
		}
	}

	sub, err := nc.SubscribeSync("groups.evt.>")
	if err != nil {
		t.Fatal(err)
	}
	// Plain nats.go publish, no Watermill headers: the first group of the demo site gets a report.
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"r-e2e","top":3,"idle":2}`)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no event: %v", err)
	}
	if m.Subject != "groups.evt.report_generated" {
		t.Fatalf("event on %s: %s", m.Subject, m.Data)
	}
	var ev messages.ReportGenerated
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.TotalGroups != 20 || len(ev.Top) != 3 || ev.WixCalls != 3 || ev.SiteID != "demo-site" {
		t.Errorf("report = total %d top %d calls %d site %q", ev.TotalGroups, len(ev.Top), ev.WixCalls, ev.SiteID)
	}

	// The counter is bumped right after the event is out: await it.
	var metrics string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, metrics = get(t, "http://"+a.AdminAddr+"/metrics"); strings.Contains(metrics, `groupflow_commands_total{outcome="completed",type="generate_report"} 1`) {
			break
		}
	}
	for _, want := range []string{
		`groupflow_commands_total{outcome="completed",type="generate_report"} 1`,
		"groupflow_dlq_depth 0",
		`groupflow_consumer_pending{consumer="groupflow_generate_report"} 0`,
		"groupflow_wix_requests_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestOversizedCommandRefusedAtPublish: a command over the broker's payload
// limit never half-arrives; the producer gets a clear error at once.
func TestOversizedCommandRefusedAtPublish(t *testing.T) {
	a := startApp(t, "--max-payload-mb", "1")
	_, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := `{"id":"huge","group":{"name":"x"},"people":[` + strings.Repeat(`{"email":"someone@example.com"},`, 40000) + `{"email":"last@example.com"}]}`
	_, err := js.Publish(ctx, "groups.cmd.provision_group", []byte(big))
	if err == nil || !strings.Contains(err.Error(), "maximum payload exceeded") {
		t.Fatalf("publish of %d bytes: err = %v, want maximum payload exceeded", len(big), err)
	}
}
