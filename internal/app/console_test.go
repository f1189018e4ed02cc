package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

// TestConsoleMounted: the processor serves the ops console at / (no token on
// loopback), fed by its runtime, ledger, events and Wix sites.
func TestConsoleMounted(t *testing.T) {
	a := startApp(t)
	nc, js := testutil.JetStream(t, a.NATSURL)
	sub, err := nc.SubscribeSync("groups.evt.report_generated")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"console-report","top":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("no event: %v", err)
	}
	code, body := get(t, "http://"+a.AdminAddr+"/")
	for _, want := range []string{"In flight", "Wix rate limiters", "demo-site", "report_generated", "console-report"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/ = %d, lacks %q:\n%s", code, want, body)
		}
	}
	if code, body := get(t, "http://"+a.AdminAddr+"/console/command?type=generate_report&id=console-report"); code != 200 || !strings.Contains(body, "completed") {
		t.Fatalf("command page = %d:\n%s", code, body)
	}
}
