package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"groupflow/internal/browsertest"
	"groupflow/internal/dlq"
	"groupflow/messages"
)

// TestConsoleInBrowser drives the console in headless chromium: sign in,
// the overview, the DLQ page, a dead letter, a command; replays a dead
// letter by clicking its button and accepting the confirmation dialog, then
// checks the page's notice, the DLQ and the commands stream. Screenshots of
// each page go to docs/screenshots/console-*.png.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Options{Width: 1200, Height: 820})
	ce := startConsole(t, consoleToken)
	for i := range 3 {
		ce.deadLetter(t, &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: fmt.Sprintf("report-%d", i+1),
			Kind: messages.FailureExhausted, Reason: "wix: 503 UNAVAILABLE: upstream timeout (10 deliveries)",
			Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			Body:    []byte(`{"id":"report-` + fmt.Sprint(i+1) + `","top":5}`)})
	}
	ce.deadLetter(t, hostileLetter())
	ce.event(t, messages.EvtGroupProvisioned, `{"commandId":"prov-yoga","siteId":"demo-site","occurredAt":"2026-12-01T10:00:00Z"}`)
	ce.event(t, messages.EvtCommandFailed, `{"commandId":"report-1","commandType":"generate_report","siteId":"demo-site",`+
		`"kind":"exhausted","reason":"wix: 503 UNAVAILABLE: upstream timeout (10 deliveries)","occurredAt":"2026-12-01T10:01:00Z"}`)

	dialogs := browsertest.AcceptDialogs(ctx)

	browsertest.Do(ctx, t, "sign in",
		chromedp.Navigate(ce.url+"/"),
		chromedp.WaitVisible(chromedp.ID(`token`)),
	)
	browsertest.Screenshot(ctx, t, "console-login")
	browsertest.Do(ctx, t, "submit the token",
		chromedp.SendKeys(chromedp.ID(`token`), consoleToken),
		chromedp.Submit(chromedp.ID(`token`)),
		chromedp.WaitVisible(chromedp.ID(`inflight`)),
	)
	overview := browsertest.Get(ctx, t, "read the overview", chromedp.Text(chromedp.CSS(`main`)))
	for _, want := range []string{"roster-autumn", "rowsResolved 420", "demo-site", "generate_report 3", "provision_group 1",
		"group_provisioned", "prov-yoga", "exhausted wix: 503 UNAVAILABLE"} {
		if !strings.Contains(overview, want) {
			t.Errorf("overview lacks %q:\n%s", want, overview)
		}
	}
	browsertest.Screenshot(ctx, t, "console-overview")
	// The overview refreshes its live sections in place (console.js).
	ce.event(t, messages.EvtReportGenerated, `{"commandId":"live-report","siteId":"demo-site"}`)
	browsertest.Do(ctx, t, "await the live refresh of the recent outcomes",
		chromedp.WaitVisible(chromedp.Search(`//section[@id="recent"]//a[contains(., "live-report")]`)))

	browsertest.Do(ctx, t, "open the DLQ",
		chromedp.Click(chromedp.CSS(`a[href="/console/dlq"]`)),
		chromedp.WaitVisible(chromedp.ID(`letters`)),
	)
	browsertest.Screenshot(ctx, t, "console-dlq")

	browsertest.Do(ctx, t, "open dead letter #4",
		chromedp.Click(chromedp.CSS(`a[href="/console/dlq/4"]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.body`)),
	)
	scripts := browsertest.Get(ctx, t, "count injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`))
	if scripts != 0 {
		t.Errorf("the hostile dead letter injected %d element(s) into the page", scripts)
	}
	browsertest.Screenshot(ctx, t, "console-deadletter")

	browsertest.Do(ctx, t, "replay #2 from the DLQ page",
		chromedp.Navigate(ce.url+"/console/dlq"),
		chromedp.WaitVisible(chromedp.ID(`letters`)),
		chromedp.Click(chromedp.CSS(`tr[data-seq="2"] button.replay`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	notice := browsertest.Get(ctx, t, "read the notice", chromedp.Text(chromedp.CSS(`p.notice`)))
	if dialogs() != 1 || !strings.Contains(notice, "#2 replayed") {
		t.Fatalf("after the click: %d dialog(s), notice %q", dialogs(), notice)
	}
	rows := browsertest.Get(ctx, t, "count rows", chromedp.Evaluate[int](`document.querySelectorAll("#letters tbody tr").length`))
	left, err := ce.store.List(context.Background(), dlq.Filter{})
	if err != nil || len(left) != 3 || rows != 3 {
		t.Fatalf("after replay: %d entries in the DLQ (%v), %d rows on the page; want 3", len(left), err, rows)
	}
	for _, e := range left {
		if e.CommandID == "report-2" {
			t.Fatal("report-2 is still in the DLQ")
		}
	}
	replayed := ce.env.Read(ce.env.Subjects.CommandStream(), ce.env.Subjects.Command(messages.CmdGenerateReport))
	if len(replayed) != 1 || !strings.Contains(string(replayed[0].Data), `"report-2"`) {
		t.Fatalf("commands stream after replay: %v", replayed)
	}
	browsertest.Screenshot(ctx, t, "console-replayed")

	browsertest.Do(ctx, t, "open a command",
		chromedp.Navigate(ce.url+"/console/command?type=generate_report&id=report-1"),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)),
	)
	browsertest.Screenshot(ctx, t, "console-command")
}
