package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"groupflow/internal/dlq"
	"groupflow/messages"
)

// TestConsoleBearerPurgeReadsItsForm: an API client authorised by the
// bearer header (no session, no CSRF token) purges what its form selects:
// the console read the purge form's filter before anything had parsed the
// body (only the CSRF check of a session did), so every such purge saw an
// empty filter and was refused.
func TestConsoleBearerPurgeReadsItsForm(t *testing.T) {
	ce := startConsole(t, consoleToken)
	keep := ce.deadLetter(t, &dlq.Entry{CommandType: messages.CmdProvisionGroup, CommandID: "prov-keep", Body: []byte(`{}`)})
	ce.deadLetter(t, &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: "rep-gone", Body: []byte(`{}`)})

	form := url.Values{"command": {messages.CmdGenerateReport}, "confirmed": {"1"}}
	req, _ := http.NewRequest("POST", ce.url+"/console/dlq/purge", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=purged&n=1") {
		t.Fatalf("bearer purge of command=%s: %d %q", messages.CmdGenerateReport, resp.StatusCode, resp.Header.Get("Location"))
	}
	left, err := ce.store.List(context.Background(), dlq.Filter{})
	if err != nil || len(left) != 1 || left[0].Seq != keep {
		t.Fatalf("after the purge: %v %+v", err, left)
	}
}
