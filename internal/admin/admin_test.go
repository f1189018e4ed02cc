package admin

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func newTestServer(addr string) *Server {
	return New(addr, func(context.Context) error { return nil }, prometheus.NewRegistry(), zap.NewNop())
}

// TestServerTimeouts: the admin server bounds how long a client may take to
// send its headers and body, to read the answer and to idle, and how big its
// headers may be.
func TestServerTimeouts(t *testing.T) {
	s := newTestServer("127.0.0.1:0").srv
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts: read header %s, read %s, write %s, idle %s; want all set",
			s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want a bound under the 1 MiB default", s.MaxHeaderBytes)
	}
}

// TestStalledRequestIsClosed: a client that never finishes its headers
// (slowloris) is disconnected by the server.
func TestStalledRequestIsClosed(t *testing.T) {
	srv := newTestServer("127.0.0.1:0")
	srv.srv.ReadHeaderTimeout = 200 * time.Millisecond
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	// The test's own bound only; the server is expected to close far sooner.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a stalled request open")
	}
}

// TestNonLoopbackWithoutTokenRefusesToStart: a protected server (one that
// mounts the DLQ API) on a non-loopback address without a token does not
// listen, unless the insecure opt-out is given; loopback may run without a
// token.
func TestNonLoopbackWithoutTokenRefusesToStart(t *testing.T) {
	tests := []struct {
		addr, token string
		optOut      bool
		wantErr     bool
	}{
		{"0.0.0.0:0", "", false, true},
		{":0", "", false, true},
		{"[::]:0", "", false, true},
		{"0.0.0.0:0", "tok", false, false},
		{"0.0.0.0:0", "", true, false},
		{"127.0.0.1:0", "", false, false},
		{"localhost:0", "", false, false},
	}
	for _, tt := range tests {
		srv := newTestServer(tt.addr)
		srv.Protect(tt.token, tt.optOut)
		srv.Handle("/dlq", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("secret")) }))
		addr, err := srv.Start()
		if err == nil {
			_ = srv.Shutdown(context.Background())
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("Start(%s, token %q, opt-out %v) = %q, %v; want error %v", tt.addr, tt.token, tt.optOut, addr, err, tt.wantErr)
		}
		if err != nil && (!strings.Contains(err.Error(), "GROUPFLOW_ADMIN_TOKEN") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("refusal %q: want one line naming GROUPFLOW_ADMIN_TOKEN", err)
		}
	}
}

// TestProtectedHandlersNeedTheToken: with a token, mounted handlers (the DLQ
// API: reads with PII, replay, purge) answer 401 without it or with a wrong
// one; /healthz stays open for probes.
func TestProtectedHandlersNeedTheToken(t *testing.T) {
	srv := newTestServer("127.0.0.1:0")
	// Mounted before and after Protect: both are behind the token.
	srv.Handle("/dlq/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("entries")) }))
	srv.Protect("s3cret-token", false)
	srv.Handle("/dlq2", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("entries")) }))
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	do := func(method, path, auth string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/dlq/", "", 401},
		{"GET", "/dlq/", "Bearer wrong", 401},
		{"POST", "/dlq/replay", "", 401},
		{"POST", "/dlq/purge", "Bearer s3cret-tokenX", 401},
		{"GET", "/dlq/", "Bearer s3cret-token", 200},
		{"GET", "/dlq2", "", 401},
		{"GET", "/dlq2", "Bearer s3cret-token", 200},
		{"GET", "/healthz", "", 200},
	} {
		if got := do(c.method, c.path, c.auth); got != c.want {
			t.Errorf("%s %s (auth %q) = %d, want %d", c.method, c.path, c.auth, got, c.want)
		}
	}
}

// TestTokenlessAPIRefusesBrowsers: without a token the DLQ API trusts the
// loopback interface, so a web page the operator visits must not use it. A
// cross-site form post (text/plain, body `{"all":true}=`: a JSON decoder
// reads the object and stops) carries an Origin of another site and is
// refused; a page of another name resolving to 127.0.0.1 (DNS rebinding)
// sends its own Host and is refused. curl and groupctl (no Origin, a
// loopback Host) still work.
func TestTokenlessAPIRefusesBrowsers(t *testing.T) {
	srv := newTestServer("127.0.0.1:0")
	srv.Protect("", false)
	calls := 0
	srv.Handle("/dlq/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls++; _, _ = w.Write([]byte("entries")) }))
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		name, method, host, origin, fetchSite string
		want                                  int
	}{
		{"curl", "POST", "", "", "", 200},
		{"curl localhost", "GET", "localhost:" + port, "", "", 200},
		{"same origin", "POST", "", "http://" + addr, "same-origin", 200},
		{"cross-site form", "POST", "", "http://evil.example", "cross-site", 403},
		{"opaque origin", "POST", "", "null", "", 403},
		{"cross-site, no origin", "POST", "", "", "cross-site", 403},
		{"rebinding", "GET", "evil.example:" + port, "", "", 403},
		{"rebinding, same origin", "POST", "evil.example:" + port, "http://evil.example:" + port, "same-origin", 403},
	} {
		before := calls
		req, _ := http.NewRequest(c.method, "http://"+addr+"/dlq/purge", strings.NewReader(`{"all":true}=`))
		req.Header.Set("Content-Type", "text/plain")
		if c.host != "" {
			req.Host = c.host
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", c.fetchSite)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want != 200 && calls != before) {
			t.Errorf("%s: %d (handler called %v), want %d", c.name, resp.StatusCode, calls != before, c.want)
		}
	}
}
