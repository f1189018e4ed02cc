package mailview_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"groupflow/internal/mailview"
)

// fakeMailpit answers one hostile mail and records the API paths asked.
func fakeMailpit(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		if r.URL.Path == "/api/v1/message/m1" {
			_, _ = io.WriteString(w, `{"ID":"m1","Subject":"<script>alert(1)</script>","HTML":"<script>alert(2)</script><img src=https://evil.example/p.gif>"}`)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), paths...) }
}

func get(t *testing.T, h http.Handler, host, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = host
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestViewerRefusesHostileRequests: the viewer answers only to a loopback
// Host (a page of another name resolving to 127.0.0.1 must not read the
// mails: DNS rebinding) unless AnyHost; a mail id that is not a plain token
// ("..", "." and the like) never reaches Mailpit's API.
func TestViewerRefusesHostileRequests(t *testing.T) {
	mp, paths := fakeMailpit(t)
	h := mailview.New(mp.URL)
	if rec := get(t, h, "evil.example:8026", "/message?id=m1"); rec.Code != http.StatusForbidden {
		t.Errorf("rebinding Host: %d", rec.Code)
	}
	for _, id := range []string{"..", ".", "m1/..", "a%2F..", "m1\\..", "m 1"} {
		if rec := get(t, h, "127.0.0.1:8026", "/message?id="+url.QueryEscape(id)); rec.Code != http.StatusBadRequest {
			t.Errorf("id %q: %d", id, rec.Code)
		}
	}
	if p := paths(); len(p) != 0 {
		t.Errorf("Mailpit asked %v", p)
	}
	h.AnyHost = true
	if rec := get(t, h, "mail.internal:8026", "/message?id=m1"); rec.Code != http.StatusOK {
		t.Errorf("AnyHost: %d", rec.Code)
	}
}

// TestViewerEscapesMail: the subject is escaped on the message page, which
// frames the HTML part in a sandbox; the HTML part itself is served under a
// CSP sandbox that allows no script and no request.
func TestViewerEscapesMail(t *testing.T) {
	mp, _ := fakeMailpit(t)
	h := mailview.New(mp.URL)
	rec := get(t, h, "localhost:8026", "/message?id=m1")
	body := rec.Body.String()
	if rec.Code != 200 || strings.Contains(body, "<script>") || !strings.Contains(body, `<iframe sandbox="" src="/message/html?id=m1"`) {
		t.Fatalf("message page %d: %s", rec.Code, body)
	}
	rec = get(t, h, "localhost:8026", "/message/html?id=m1")
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "sandbox;") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("HTML part CSP %q", csp)
	}
}
