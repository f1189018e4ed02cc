package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/ops"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

// TestDiscoveryAndProgress asks a running processor (embedded NATS and
// simulator) for the site's groups over request/reply and the admin API,
// then follows a campaign's progress while it runs.
func TestDiscoveryAndProgress(t *testing.T) {
	a := startApp(t, "--wix-rate-per-minute", "60")
	nc, js := testutil.JetStream(t, a.NATSURL)
	cl := &ops.Client{NC: nc, Subjects: messages.Subjects{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	all, err := cl.ListGroups(ctx, ops.ListRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Groups) != 20 || all.Truncated || all.WixCalls != 1 {
		t.Fatalf("ls: %d groups, truncated %t, %d calls; want 20, false, 1", len(all.Groups), all.Truncated, all.WixCalls)
	}
	biggest := all.Groups[0]
	for _, g := range all.Groups {
		if g.MembersCount > biggest.MembersCount {
			biggest = g
		}
	}
	word := strings.Fields(biggest.Name)[0]
	pre, err := cl.ListGroups(ctx, ops.ListRequest{Prefix: strings.ToLower(word)})
	if err != nil || len(pre.Groups) == 0 {
		t.Fatalf("ls --prefix %s: %v %+v", word, err, pre)
	}
	for _, g := range pre.Groups {
		if !strings.HasPrefix(strings.ToLower(g.Name), strings.ToLower(word)) {
			t.Errorf("--prefix %s listed %q", word, g.Name)
		}
	}
	limited, err := cl.ListGroups(ctx, ops.ListRequest{Limit: 3, WithQuestions: true})
	if err != nil || len(limited.Groups) > 3 {
		t.Fatalf("ls --limit 3 --with-questions: %v %+v", err, limited)
	}
	for _, g := range limited.Groups {
		if g.Questions == nil || *g.Questions == 0 {
			t.Errorf("--with-questions listed %s with %v questions", g.Name, g.Questions)
		}
	}
	show, err := cl.ShowGroup(ctx, ops.ShowRequest{Group: biggest.ID})
	if err != nil || show.Group == nil || show.Group.Name != biggest.Name || show.Group.MembersCount != biggest.MembersCount {
		t.Fatalf("show by id: %v %+v", err, show)
	}
	if _, err := cl.ShowGroup(ctx, ops.ShowRequest{Group: "No Such Group"}); err == nil || !strings.Contains(err.Error(), "no group") {
		t.Fatalf("show of a missing group: %v", err)
	}
	code, body := get(t, "http://"+a.AdminAddr+"/api/groups/"+biggest.ID)
	if code != 200 || !strings.Contains(body, biggest.ID) || !strings.Contains(body, `"questionList"`) {
		t.Fatalf("/api/groups/{id} = %d %s", code, body)
	}

	// A campaign at 60 Wix calls a minute runs for seconds: its progress is
	// served while it runs, by request/reply and /api/commands/{id}.
	cmd := `{"id":"camp-progress","campaignId":"c1","groupIds":["` + biggest.ID + `"]}`
	if _, err := js.Publish(ctx, "groups.cmd.send_campaign", []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ans, err := cl.Progress(ctx, "camp-progress", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		snaps := ans.Commands
		if len(snaps) == 1 && snaps[0].WixCalls > 0 && snaps[0].WixCallsBudget > 0 {
			s := snaps[0]
			if s.CommandType != "send_campaign" || s.RatePerMinute != 60 || s.ETASeconds == nil {
				t.Fatalf("snapshot %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress of the running campaign within 30 s")
		}
	}
	code, body = get(t, "http://"+a.AdminAddr+"/api/commands/camp-progress")
	var snaps []map[string]any
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &snaps); err != nil || len(snaps) != 1 || snaps[0]["commandId"] != "camp-progress" {
			t.Fatalf("/api/commands/camp-progress = %s (%v)", body, err)
		}
	} else if code != 404 { // 404: finished in between
		t.Fatalf("/api/commands/camp-progress = %d %s", code, body)
	}
	if code, _ := get(t, "http://"+a.AdminAddr+"/api/commands/no-such"); code != 404 {
		t.Fatalf("/api/commands/no-such = %d, want 404", code)
	}
}

// TestUnreachableNATSFailsStartupInSeconds: an external NATS nobody answers
// on ends the startup after --nats-start-timeout, naming it.
func TestUnreachableNATSFailsStartupInSeconds(t *testing.T) {
	port := testutil.FreePorts(t, 1)[0]
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	cfg, err := config.Parse([]string{"--nats-url", url, "--nats-start-timeout", "1s", "--http-listen", "127.0.0.1:0",
		"--wix-sim-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a, err := app.Start(context.Background(), cfg, func(string) string { return "" }, zap.NewNop())
	if err == nil {
		_ = a.Stop()
		t.Fatal("started without NATS")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("failed after %s", took)
	}
	if msg := err.Error(); !strings.Contains(msg, "unreachable") || !strings.Contains(msg, url) || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line naming the unreachable URL", msg)
	}
}

// TestUnreachableNATSErrorHidesURLSecrets: the startup error of an
// unreachable external NATS names its URLs with their passwords and tokens
// redacted (it went to the log whole).
func TestUnreachableNATSErrorHidesURLSecrets(t *testing.T) {
	ports := testutil.FreePorts(t, 2)
	urls := fmt.Sprintf("nats://gf:pw-s3cret@127.0.0.1:%d,nats://tok-s3cret@127.0.0.1:%d", ports[0], ports[1])
	cfg, err := config.Parse([]string{"--nats-url", urls, "--nats-start-timeout", "1s", "--http-listen", "127.0.0.1:0",
		"--wix-sim-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg, func(string) string { return "" }, zap.NewNop())
	if err == nil {
		_ = a.Stop()
		t.Fatal("started without NATS")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "unreachable") || !strings.Contains(msg, fmt.Sprint(ports[0])) {
		t.Fatalf("error %q: want the unreachable URLs without their secrets", msg)
	}
}
