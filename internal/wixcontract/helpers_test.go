package wixcontract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/failure"
	"groupflow/internal/testutil"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

const (
	siteA  = "contract-site-a"
	siteB  = "contract-site-b"
	apiKey = "contract-test-key"
)

// transport counts requests per path and lets a test tamper with a request
// after the client validated and built it (to send over-limit values the
// client would refuse).
type transport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	paths  map[string]int
	tamper atomic.Pointer[func(*http.Request)]
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.paths[r.URL.Path]++
	t.mu.Unlock()
	if f := t.tamper.Load(); f != nil {
		r = r.Clone(r.Context())
		(*f)(r)
	}
	return t.base.RoundTrip(r)
}

func (t *transport) count(path string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paths[path]
}

// setTamper installs f for the following requests (nil removes it).
func (t *transport) setTamper(f func(*http.Request)) {
	if f == nil {
		t.tamper.Store(nil)
		return
	}
	t.tamper.Store(&f)
}

// env is a running simulator and a client pointed at it.
type env struct {
	t      testing.TB
	sim    *wixsim.Server
	url    string
	clock  *testutil.Clock
	client *wix.Client
	site   *wix.Site
	tr     *transport
}

type envOpt struct {
	sim    wixsim.Options
	cfg    wix.Config
	creds  *wix.Credentials
	noSite bool
}

// newEnv starts a simulator (fake clock, unlimited rate unless opts say
// otherwise) and a client with fast retries, and adds siteA with an API key.
func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	clock := testutil.NewClock(time.Time{})
	if o.sim.Now == nil {
		o.sim.Now = clock.Now
	}
	if o.sim.Members == 0 {
		o.sim.Members = 20
	}
	if o.sim.Groups == 0 {
		o.sim.Groups = 3
	}
	// the simulator serves only the sites it is told about
	o.sim.Sites = append(append([]string{}, o.sim.Sites...), siteA, siteB)
	sim := wixsim.New(o.sim)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	tr := &transport{base: &http.Transport{MaxIdleConnsPerHost: 64}, paths: map[string]int{}}
	t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
	cfg := o.cfg
	cfg.BaseURL = url
	cfg.HTTPClient = &http.Client{Transport: tr}
	if cfg.RequestsPerMinute == 0 {
		cfg.RequestsPerMinute = 6e6
		cfg.Burst = 1000
	}
	if cfg.RetryInitialInterval == 0 {
		cfg.RetryInitialInterval = time.Millisecond
		cfg.RetryMaxInterval = 5 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	c := wix.New(cfg)
	e := &env{t: t, sim: sim, url: url, clock: clock, client: c, tr: tr}
	if !o.noSite {
		creds := wix.Credentials{APIKey: apiKey}
		if o.creds != nil {
			creds = *o.creds
		}
		if err := c.AddSite(siteA, creds); err != nil {
			t.Fatal(err)
		}
		if e.site, err = c.Site(siteA); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// ctx returns a context bounded so that a hung call fails the test.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// raw sends a request straight to the simulator; hdr are name/value pairs,
// an empty value leaves the header out.
func (e *env) raw(method, path string, body any, hdr ...string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// wixErrorBody decodes a Wix error body with the client's FieldViolation type.
type wixErrorBody struct {
	Message string `json:"message"`
	Details struct {
		ApplicationError *struct {
			Code string `json:"code"`
		} `json:"applicationError"`
		ValidationError *struct {
			FieldViolations []wix.FieldViolation `json:"fieldViolations"`
		} `json:"validationError"`
	} `json:"details"`
}

// apiErr asserts err wraps a *wix.APIError with status and returns it.
func apiErr(t testing.TB, err error, status int) *wix.APIError {
	t.Helper()
	var ae *wix.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want *wix.APIError %d, got %v", status, err)
	}
	if ae.Status != status {
		t.Fatalf("want status %d, got %v", status, err)
	}
	return ae
}

// violated asserts err is a permanent 400 whose first field violation is
// field, and that the message names it.
func violated(t testing.TB, err error, field string) {
	t.Helper()
	ae := apiErr(t, err, http.StatusBadRequest)
	if len(ae.FieldViolations) == 0 || ae.FieldViolations[0].Field != field {
		t.Fatalf("want violation of %q, got %+v (%v)", field, ae.FieldViolations, err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("error message does not name %q: %v", field, err)
	}
	if !failure.IsPermanent(err) {
		t.Errorf("400 should be permanent: %v", err)
	}
}

// mutateJSON returns a tamper func that edits the JSON body of a request.
func mutateJSON(f func(m map[string]any)) func(*http.Request) {
	return func(r *http.Request) {
		if r.Body == nil {
			return
		}
		data, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		f(m)
		data, _ = json.Marshal(m)
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.ContentLength = int64(len(data))
	}
}

// mutateQuery returns a tamper func that edits the URL query of a request.
func mutateQuery(key string, vals ...string) func(*http.Request) {
	return func(r *http.Request) {
		q := r.URL.Query()
		q[key] = vals
		r.URL.RawQuery = q.Encode()
	}
}

func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

// memberIDs returns the ids of the simulator's members of site, in creation
// order.
func (e *env) memberIDs(site string) []string {
	var ids []string
	for _, m := range e.sim.Site(site).Members() {
		ids = append(ids, m.ID)
	}
	return ids
}

// publicMemberIDs is memberIDs without the members with a private profile
// (Add Group Members makes public members members at once; private ones
// are only invited).
func (e *env) publicMemberIDs(site string) []string {
	var ids []string
	for _, m := range e.sim.Site(site).Members() {
		if m.PrivacyStatus != "PRIVATE" {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
