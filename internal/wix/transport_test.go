package wix

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"groupflow/internal/failure"
)

// countingTransport counts the requests it sends.
type countingTransport struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.rt.RoundTrip(r)
}

// TestInjectedHTTPClientSendsAndStillRefusesRedirects: a caller's
// Config.HTTPClient carries the requests (its transport sees them), yet a
// redirect is still refused, and the caller's client is left as it was.
func TestInjectedHTTPClientSendsAndStillRefusesRedirects(t *testing.T) {
	target := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
	})
	origin := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, target.srv.URL+r.URL.Path, http.StatusFound)
	})
	rt := &countingTransport{rt: http.DefaultTransport}
	hc := &http.Client{Transport: rt} // nil CheckRedirect: Go would follow
	s := apiKeySite(t, testClient(t, origin.srv.URL, func(c *Config) { c.HTTPClient = hc }))
	_, err := s.GetGroup(context.Background(), "g1")
	if err == nil || !failure.IsPermanent(err) {
		t.Fatalf("GetGroup through a redirect = %v, want a permanent refusal", err)
	}
	if n := rt.n.Load(); n != 1 {
		t.Errorf("the injected transport sent %d requests, want 1", n)
	}
	if got := target.requests(); len(got) != 0 {
		t.Errorf("the Location target received %d request(s)", len(got))
	}
	if hc.CheckRedirect != nil {
		t.Error("the caller's client was modified")
	}
}
