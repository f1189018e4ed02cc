package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleTokenModeWantsAKeptSession: with an admin token, a cookie of
// the tokenless form (48 hex digits, any value a browser may carry from a
// tokenless run or a sibling localhost page) is no session: GETs go to the
// login form and POSTs are refused, whatever csrf they carry.
func TestConsoleTokenModeWantsAKeptSession(t *testing.T) {
	ce := startConsole(t, consoleToken)
	ce.deadLetter(t, hostileLetter())
	forged := strings.Repeat("ab", 24)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", ce.url+"/console/dlq", nil)
	req.AddCookie(&http.Cookie{Name: "groupflow_console", Value: forged})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("GET with a forged cookie: %d %q %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Set-Cookie"))
	}
	req, _ = http.NewRequest("POST", ce.url+"/console/dlq/1/purge", strings.NewReader(url.Values{"csrf": {strings.Repeat("0", 48)}, "confirmed": {"1"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "groupflow_console", Value: forged})
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST with a forged cookie: %d, want 401", resp.StatusCode)
	}
}
