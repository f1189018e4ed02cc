package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlagsAndEnvironment(t *testing.T) {
	o, err := parse([]string{"--smtp-port", "2525", "--rate", "5"}, env(map[string]string{
		"GROUPMAIL_FROM": "news@acme.example", "GROUPMAIL_SMTP_PORT": "587", "GROUPMAIL_SMTP_PASSWORD": "pw",
		"GROUPMAIL_CONCURRENCY": "8", "GROUPMAIL_SMTP_TLS": "starttls", "GROUPMAIL_NATS_INBOX_PREFIX": "_INBOX_mailer",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.From != "news@acme.example" || o.SMTPPort != 2525 || o.Rate != 5 || o.Concurrency != 8 || o.SMTPPassword != "pw" ||
		o.SMTPTLS != "starttls" || o.passwordOnCommandLine || o.NATSURL != "nats://127.0.0.1:4222" ||
		o.HTTPListen != "127.0.0.1:8081" || o.Templates != "deploy/templates" || o.NATSInboxPrefix != "_INBOX_mailer" {
		t.Errorf("options = %+v", o)
	}
	if o, err := parse([]string{"--from", "a@b.example", "--nats-inbox-prefix", "_INBOX_m2"}, env(map[string]string{"GROUPMAIL_NATS_INBOX_PREFIX": "_INBOX_m1"}), io.Discard); err != nil || o.NATSInboxPrefix != "_INBOX_m2" {
		t.Errorf("--nats-inbox-prefix over the environment: %+v %v", o, err)
	}
	if o, err := parse([]string{"--from", "a@b.example"}, env(nil), io.Discard); err != nil || o.NATSInboxPrefix != "" {
		t.Errorf("default inbox prefix: %+v %v", o, err)
	}
	if o, err := parse([]string{"--from", "a@b.example", "--smtp-password", "x"}, env(nil), io.Discard); err != nil || !o.passwordOnCommandLine {
		t.Errorf("password flag: %+v %v", o, err)
	}
	if _, err := parse(nil, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("missing --from: %v", err)
	}
	if _, err := parse(nil, env(map[string]string{"GROUPMAIL_FROM": "a@b.example", "GROUPMAIL_RATE": "fast"}), io.Discard); err == nil {
		t.Error("bad env value accepted")
	}
	if _, err := parse([]string{"--from", "a@b.example", "extra"}, env(nil), io.Discard); err == nil {
		t.Error("extra argument accepted")
	}
}

func TestRunRejectsBadSMTPConfig(t *testing.T) {
	err := run(context.Background(), []string{"--from", "a@b.example", "--smtp-tls", "none", "--smtp-user", "u"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in clear") {
		t.Errorf("run = %v", err)
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunEndToEnd runs the command against a real broker and Mailpit. With
// --nats-inbox-prefix the events it pulls arrive on that prefix, never on
// the shared _INBOX.> (what per-user inbox permissions rely on).
func TestRunEndToEnd(t *testing.T) {
	e := testenv.Start(t, testenv.Quiet())
	mp := mailpittest.Start(t, 0)
	spyNC, err := nats.Connect(e.Server.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer spyNC.Close()
	ownInbox, err := spyNC.SubscribeSync("_INBOX_mailer.>")
	if err != nil {
		t.Fatal(err)
	}
	sharedInbox, err := spyNC.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spyNC.Flush(); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", mailpittest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--nats-url", e.Server.URL, "--nats-inbox-prefix", "_INBOX_mailer", "--http-listen", httpAddr, "--log-level", "warn",
			"--templates", filepath.Join("..", "..", "deploy", "templates"),
			"--smtp-port", fmt.Sprint(mp.SMTPPort), "--smtp-auth", "plain-noenc", "--smtp-user", "demo",
			"--unsubscribe-url", "https://acme.example/unsub?m={{.MemberID}}&c={{.CampaignID}}",
		}, env(map[string]string{"GROUPMAIL_FROM": "Acme <news@acme.example>", "GROUPMAIL_SMTP_PASSWORD": "pw"}), io.Discard)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := httpGet("http://" + httpAddr + "/readyz"); code == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 20s")
		}
		time.Sleep(20 * time.Millisecond) // readiness polling
	}
	if code, body := httpGet("http://" + httpAddr + "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d %s", code, body)
	}

	evts, _ := e.EventPublisher()
	ev := &messages.MemberSelected{CampaignID: "spring", MemberID: "m1", Email: "ann@example.com", FirstName: "Ann",
		Content: json.RawMessage(`{"templateId":"spring-offer","variables":{"discount":"15%","validUntil":"June 1","code":"C","shopUrl":"https://shop.example"}}`)}
	if err := evts.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	mp.WaitCount(1, 20*time.Second)
	list, _ := mp.Messages()
	if list[0].Subject != "Ann, your spring offer: 15% off" || list[0].Username != "demo" {
		t.Errorf("message %+v", list[0])
	}
	// carries reports whether a message on sub held the event's email address.
	carries := func(sub *nats.Subscription) bool {
		seen := false
		for {
			m, err := sub.NextMsg(300 * time.Millisecond)
			if err != nil {
				return seen
			}
			if strings.Contains(string(m.Data), "ann@example.com") {
				seen = true
			}
		}
	}
	if !carries(ownInbox) {
		t.Error("the pulled event did not arrive on _INBOX_mailer.>")
	}
	if carries(sharedInbox) {
		t.Error("with --nats-inbox-prefix, the pulled event still travelled on _INBOX.>")
	}
	_, metrics := httpGet("http://" + httpAddr + "/metrics")
	for _, want := range []string{"groupmail_sent_total 1", `groupmail_failed_total{reason="template"} 0`, "groupmail_retried_total",
		"groupmail_rate_limited_total", "groupmail_rate_limit_wait_seconds_bucket", "groupmail_duplicates_skipped_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

// TestRunExitsWhenConnectionClosedForGood (issue 12 item 1): a NATS
// connection closed for good (nats.go never reconnects it) used to leave
// groupmail up with /healthz "ok" and nothing to do. /healthz must fail
// with the reason and run must return an error (exit status 1).
func TestRunExitsWhenConnectionClosedForGood(t *testing.T) {
	e := testenv.Start(t, testenv.Quiet())
	mp := mailpittest.Start(t, 0)
	conns := make(chan *nats.Conn, 1)
	testHookConnected = func(nc *nats.Conn) { conns <- nc }
	t.Cleanup(func() { testHookConnected = nil })
	httpAddr := fmt.Sprintf("127.0.0.1:%d", mailpittest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--nats-url", e.Server.URL, "--http-listen", httpAddr, "--log-level", "error",
			"--templates", filepath.Join("..", "..", "deploy", "templates"),
			"--smtp-port", fmt.Sprint(mp.SMTPPort), "--smtp-auth", "none",
		}, env(map[string]string{"GROUPMAIL_FROM": "Acme <news@acme.example>"}), io.Discard)
	}()
	var nc *nats.Conn
	select {
	case nc = <-conns:
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no connection after 20s")
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling readiness
		if code, _ := httpGet("http://" + httpAddr + "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 20s")
		}
	}
	nc.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed for good") {
			t.Fatalf("run = %v, want the closed connection", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after the connection closed for good")
	}
}

// groupmail checks its --subject-prefix as groupflow does
// (messages.CheckPrefix): '*' or '>' would consume every prefix's events.
func TestSubjectPrefixChecked(t *testing.T) {
	for _, p := range []string{"*", ">", "a..b", "$JS", "two words"} {
		if _, err := parse([]string{"--from", "a@b.example", "--subject-prefix", p}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--subject-prefix") {
			t.Errorf("--subject-prefix %q: err = %v, want refused naming the flag", p, err)
		}
	}
	if _, err := parse([]string{"--from", "a@b.example", "--subject-prefix", "acme.prod-1"}, env(nil), io.Discard); err != nil {
		t.Errorf("--subject-prefix acme.prod-1: %v", err)
	}
}
