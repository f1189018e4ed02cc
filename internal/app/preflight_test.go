package app_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/testenv"
	"groupflow/internal/wixsim"
)

// Against a real (here: a strict simulator) Wix site groupflow logs, at
// startup and at info level, one preflight line per flow, from one read per
// endpoint.
func TestStartupPreflight(t *testing.T) {
	w := testenv.StartWix(t, wixsim.Options{Members: 5, Groups: 2, AuthStrict: true})
	env := map[string]string{"WIX_API_KEY": "secret-key", "WIX_SITE_ID": w.SiteID, "WIX_BASE_URL": w.URL}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Parse([]string{"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--wix-rate-per-minute", "100000"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	a, err := app.Start(context.Background(), cfg, getenv, zap.New(core))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop() })

	deadline := time.Now().Add(30 * time.Second)
	var lines []observer.LoggedEntry
	for time.Now().Before(deadline) {
		lines = logs.FilterMessageSnippet("wix preflight").All()
		if len(lines) >= 6 {
			break
		}
		time.Sleep(10 * time.Millisecond) // poll the log for the preflight lines
	}
	if len(lines) != 6 {
		t.Fatalf("%d preflight lines, want 6", len(lines))
	}
	want := map[string]bool{"provision": true, "campaign": true, "interest campaign": false, "questions": false, "rules": false, "report": true}
	for _, l := range lines {
		m := l.ContextMap()
		flow, _ := m["flow"].(string)
		ok, _ := m["ok"].(bool)
		reason, _ := m["reason"].(string)
		if l.Level != zap.InfoLevel || ok != want[flow] || (!ok && !strings.Contains(reason, "memberRefreshTokenEnv")) {
			t.Errorf("line %s %v", l.Message, m)
		}
	}
	for op, n := range w.Sim.Calls(w.SiteID) {
		if n != 1 {
			t.Errorf("%s read %d times", op, n)
		}
	}
	for _, l := range logs.All() {
		if strings.Contains(l.Message, "secret-key") || strings.Contains(strings.Join(func() []string {
			var s []string
			for _, f := range l.Context {
				s = append(s, f.String)
			}
			return s
		}(), " "), "secret-key") {
			t.Fatalf("log leaks the API key: %v", l)
		}
	}
}
