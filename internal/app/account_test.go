package app_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/sitematch"
	"groupflow/internal/testenv"
	"groupflow/internal/testutil"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestAccountKeySites: with one account API key and --wix-account-sites,
// a command for a site listed nowhere in groupflow's configuration runs
// against that site (wix-site-id), while a site outside the allowlist and
// one over --wix-max-sites are dead-lettered with a permanent error naming
// the flag, and the key shows in neither.
func TestAccountKeySites(t *testing.T) {
	const key = "acct-key-e2e-secret"
	w := testenv.StartWix(t, wixsim.Options{Members: 5, Groups: 3, SitesPattern: sitematch.MustParse("acct-*,zz-*")})
	env := map[string]string{"WIX_API_KEY": key, "WIX_BASE_URL": w.URL}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Parse([]string{"--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--wix-rate-per-minute", "100000", "--wix-preflight=false", "--wix-account-sites", "acct-*", "--wix-max-sites", "2"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg, getenv, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	nc, js := testutil.JetStream(t, a.NATSURL)
	done, err := nc.SubscribeSync("groups.evt.report_generated")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := nc.SubscribeSync("groups.evt.command_failed")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish := func(id, site string) {
		t.Helper()
		if _, err := js.Publish(ctx, "groups.cmd.generate_report", []byte(`{"id":"`+id+`","siteId":"`+site+`","top":1,"idle":1}`)); err != nil {
			t.Fatal(err)
		}
	}

	// Allowed, listed nowhere: runs on its own site.
	publish("r-acct-one", "acct-one")
	m := awaitEvent(t, done, "report of acct-one", eventOf("groups.evt.report_generated", "r-acct-one"))
	var rep messages.ReportGenerated
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SiteID != "acct-one" || rep.TotalGroups != 3 || w.Sim.TotalCalls("acct-one") == 0 {
		t.Errorf("report site %q groups %d, simulator calls %d", rep.SiteID, rep.TotalGroups, w.Sim.TotalCalls("acct-one"))
	}

	// Not allowed (the simulator would serve it: groupflow refuses first),
	// then one over the maximum of 2 account sites.
	publish("r-zz", "zz-not-allowed")
	publish("r-acct-two", "acct-two")
	awaitEvent(t, done, "report of acct-two", eventOf("groups.evt.report_generated", "r-acct-two"))
	publish("r-acct-three", "acct-three")
	want := map[string]string{"r-zz": "--wix-account-sites", "r-acct-three": "--wix-max-sites 2"}
	for range want {
		m := awaitEvent(t, failed, "command_failed", func(*nats.Msg) bool { return true })
		var ev messages.CommandFailed
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		mention, ok := want[ev.CommandID]
		switch {
		case !ok:
			t.Errorf("unexpected command_failed %s: %s", ev.CommandID, ev.Reason)
		case ev.Kind != messages.FailurePermanent || ev.Deliveries != 1 || !strings.Contains(ev.Reason, mention):
			t.Errorf("%s: kind %s after %d deliveries, reason %q (want %q)", ev.CommandID, ev.Kind, ev.Deliveries, ev.Reason, mention)
		case strings.Contains(string(m.Data), key):
			t.Errorf("%s: event leaks the API key", ev.CommandID)
		}
	}
	if n := w.Sim.TotalCalls("zz-not-allowed") + w.Sim.TotalCalls("acct-three"); n != 0 {
		t.Errorf("refused sites reached Wix: %d calls", n)
	}
	letters := deadLetters(t, js)
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	for _, e := range letters {
		if strings.Contains(e.Reason, key) {
			t.Errorf("dead letter %s leaks the API key", e.CommandID)
		}
	}
}
