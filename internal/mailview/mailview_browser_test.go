package mailview_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/browsertest"
	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/internal/mailview"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

var demoPeople = []struct{ first, last string }{
	{"Ann", "Lee"}, {"Bruno", "Costa"}, {"Chloé", "Martin"}, {"Dev", "Patel"}, {"Eva", "Novak"}, {"Femi", "Ade"},
}

// sendCampaign sends the demo campaign's mails as `make demo` does: the
// member_selected events of campaign spring-demo, rendered from
// deploy/templates by the mailer and delivered to Mailpit over SMTP.
func sendCampaign(t *testing.T, mp *mailpittest.Server) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	content, err := os.ReadFile(filepath.Join("..", "..", "deploy", "demo-content.json"))
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: "127.0.0.1", Port: mp.SMTPPort, TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	evts, pub := env.EventPublisher()
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	m, err := mailer.New(mailer.Config{Templates: filepath.Join("..", "..", "deploy", "templates"), From: "Demo Club <news@demo.example>",
		UnsubscribeURL: "https://demo.example/unsub?m={{.MemberID}}&c={{.CampaignID}}"},
		mailer.Deps{JS: env.JS, Publisher: pub, Sender: sender, Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-done })
	if err := m.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { done <- m.Run(ctx) }()
	for i, p := range demoPeople {
		ev := &messages.MemberSelected{EventMeta: messages.EventMeta{CommandID: "spring-demo", SiteID: "demo-site"},
			CampaignID: "spring-demo", MemberID: fmt.Sprintf("member-%d", i+1), ContactID: fmt.Sprintf("contact-%d", i+1),
			Email: strings.ToLower(p.first[:1]+p.last) + "@example.com", FirstName: p.first, LastName: p.last,
			GroupIDs: []string{"group-1"}, Content: json.RawMessage(content)}
		if err := evts.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := mp.WaitCount(len(demoPeople), 30*time.Second); n != len(demoPeople) {
		t.Fatalf("%d mails in Mailpit, want %d", n, len(demoPeople))
	}
}

// TestDemoInboxInBrowser: the demo's mails, sent by the mailer to Mailpit,
// are listed by the viewer in a real browser, and one opens with its HTML
// part in a sandboxed frame. Screenshots: docs/screenshots/demo-inbox.png
// and demo-mail.png.
func TestDemoInboxInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Options{Width: 1200, Height: 700})
	mp := mailpittest.Start(t, 0)
	sendCampaign(t, mp)
	srv := httptest.NewServer(mailview.New(mp.API))
	defer srv.Close()

	browsertest.Do(ctx, t, "open the inbox", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("mails")))
	rows := browsertest.Get(ctx, t, "count mails", chromedp.Evaluate[int](`document.querySelectorAll("#mails tbody tr").length`))
	text := browsertest.Get(ctx, t, "read the inbox", chromedp.Text(chromedp.CSS("main")))
	if rows != len(demoPeople) || !strings.Contains(text, "Ann Lee") || !strings.Contains(text, "Chloé Martin") {
		t.Fatalf("inbox: %d rows, want %d:\n%s", rows, len(demoPeople), text)
	}
	browsertest.Screenshot(ctx, t, "demo-inbox")

	browsertest.Do(ctx, t, "open a mail", chromedp.Click(chromedp.CSS("td.subj a")), chromedp.WaitVisible(chromedp.CSS("iframe")))
	sandbox := browsertest.Get(ctx, t, "read the frame's sandbox", chromedp.Evaluate[string](`document.querySelector("iframe").getAttribute("sandbox")`))
	if sandbox != "" {
		t.Errorf("iframe sandbox = %q, want the empty (strictest) sandbox", sandbox)
	}
	// The frame's document is of an opaque origin: its load is seen in the
	// parent's resource timing, or awaited.
	loaded := browsertest.Get(ctx, t, "await the HTML part", chromedp.Evaluate[bool](`new Promise(done => {
		if (performance.getEntriesByType("resource").some(e => e.initiatorType === "iframe")) return done(true);
		document.querySelector("iframe").addEventListener("load", () => done(true));
	})`, chromedp.EvalAwaitPromise))
	if !loaded {
		t.Fatal("the HTML part did not load")
	}
	browsertest.Screenshot(ctx, t, "demo-mail")
}
