package wixsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

const testSite = "site-a"

type env struct {
	t     *testing.T
	srv   *Server
	url   string
	clock *testutil.Clock
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clock := testutil.NewClock(time.Time{})
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.Members == 0 {
		opts.Members = 200
	}
	if opts.Groups == 0 {
		opts.Groups = 10
	}
	if opts.Sites == nil {
		// the sites the package's tests name; any other is refused
		opts.Sites = []string{testSite, "site-b", "site-z", "site-1", "site-2"}
	}
	s := New(opts)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return &env{t: t, srv: s, url: hs.URL, clock: clock}
}

type resp struct {
	status int
	body   map[string]any
	header http.Header
}

// call sends a request with an API key and wix-site-id (override with hdr;
// an empty value removes the header).
func (e *env) call(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "test-api-key")
	req.Header.Set("wix-site-id", testSite)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out.body); err != nil {
			e.t.Fatalf("%s %s: non-JSON body %q", method, path, data)
		}
	}
	return out
}

func (e *env) ok(method, path string, body any, hdr ...string) map[string]any {
	e.t.Helper()
	r := e.call(method, path, body, hdr...)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s %s: status %d body %v", method, path, r.status, r.body)
	}
	return r.body
}

// get walks a decoded JSON value: get(v, "group", "id").
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch kk := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[kk]
		case int:
			a, _ := v.([]any)
			if kk >= len(a) {
				return nil
			}
			v = a[kk]
		}
	}
	return v
}

func list(v any, keys ...any) []any {
	a, _ := get(v, keys...).([]any)
	return a
}

func num(v any, keys ...any) int {
	f, _ := get(v, keys...).(float64)
	return int(f)
}

func str(v any, keys ...any) string {
	s, _ := get(v, keys...).(string)
	return s
}

// violation returns the field of the first validationError field violation.
func violation(r resp) string {
	return str(r.body, "details", "validationError", "fieldViolations", 0, "field")
}
