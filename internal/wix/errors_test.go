package wix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"groupflow/internal/failure"
)

func TestParseAPIError(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       []byte
		want       APIError
		errHas     []string
		permanent  bool
		isNotFound bool
	}{
		{
			name: "validationError", status: 400, body: fixture(t, "error_validation.json"),
			want: APIError{Status: 400, Message: "group.name has size 120, expected 100 or less", FieldViolations: []FieldViolation{
				{Field: "group.name", Description: "must not exceed 100 characters", ViolatedRule: "MAX"},
				{Field: "creatorId", Description: "bad format", ViolatedRule: "FORMAT"},
			}},
			errHas:    []string{"groups.create", "POST /social-groups-proxy/groups/v2/groups", "400 Bad Request", "group.name [MAX]", "creatorId [FORMAT]"},
			permanent: true,
		},
		{
			name: "applicationError", status: 404, body: fixture(t, "error_application.json"),
			want:      APIError{Status: 404, Message: "Group not found", Code: "NOT_FOUND", Description: "Group 0e3a7b4c not found", Data: []byte(`{"groupId": "0e3a7b4c"}`)},
			errHas:    []string{"404 Not Found", "NOT_FOUND", "Group not found", "(Group 0e3a7b4c not found)"},
			permanent: true, isNotFound: true,
		},
		{
			name: "empty 5xx JSON", status: 500, body: fixture(t, "error_empty5xx.json"),
			want: APIError{Status: 500}, errHas: []string{"500 Internal Server Error"},
		},
		{name: "empty body 503", status: 503, want: APIError{Status: 503}, errHas: []string{"503 Service Unavailable"}},
		{
			name: "HTML 502 body dropped", status: 502, body: []byte("<html><body>Bad gateway</body></html>"),
			want: APIError{Status: 502},
		},
		{
			name: "plain text 504", status: 504, body: []byte("upstream request timeout\n"),
			want: APIError{Status: 504, Message: "upstream request timeout"}, errHas: []string{"upstream request timeout"},
		},
		{
			name: "429 Retry-After seconds", status: 429, header: http.Header{"Retry-After": {"7"}},
			body:   []byte(`{"message":"Too many requests","details":{"applicationError":{"code":"RESOURCE_EXHAUSTED"}}}`),
			want:   APIError{Status: 429, Message: "Too many requests", Code: "RESOURCE_EXHAUSTED", RetryAfter: 7 * time.Second},
			errHas: []string{"retry after 7s"},
		},
		{
			name: "429 Retry-After HTTP date", status: 429, header: http.Header{"Retry-After": {now.Add(45 * time.Second).Format(http.TimeFormat)}},
			want: APIError{Status: 429, RetryAfter: 45 * time.Second},
		},
		// A Retry-After longer than Wix's per-minute window would pause the
		// site's every command for that long: at most MaxRetryAfter.
		{
			name: "429 Retry-After of a year", status: 429, header: http.Header{"Retry-After": {"31536000"}},
			want: APIError{Status: 429, RetryAfter: MaxRetryAfter},
		},
		{
			name: "429 Retry-After HTTP date a day ahead", status: 429, header: http.Header{"Retry-After": {now.Add(24 * time.Hour).Format(http.TimeFormat)}},
			want: APIError{Status: 429, RetryAfter: MaxRetryAfter},
		},
		{
			name: "429 Retry-After past float64", status: 429, header: http.Header{"Retry-After": {"1e400"}},
			want: APIError{Status: 429, RetryAfter: MaxRetryAfter},
		},
		{
			name: "429 Retry-After NaN", status: 429, header: http.Header{"Retry-After": {"NaN"}},
			want: APIError{Status: 429},
		},
		{
			name: "429 Retry-After Inf", status: 429, header: http.Header{"Retry-After": {"+Inf"}},
			want: APIError{Status: 429},
		},
		{name: "401", status: 401, body: []byte(`{"message":"","details":{}}`), want: APIError{Status: 401}, permanent: true},
		{name: "409", status: 409, want: APIError{Status: 409}, permanent: true},
		{name: "408", status: 408, want: APIError{Status: 408}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			got := parseAPIError(tt.status, h, tt.body, OpGroupsCreate, "POST", "/social-groups-proxy/groups/v2/groups", now)
			want := tt.want
			want.Op, want.Method, want.Path = OpGroupsCreate, "POST", "/social-groups-proxy/groups/v2/groups"
			if fmt.Sprint(*got) != fmt.Sprint(want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			msg := got.Error()
			for _, s := range tt.errHas {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() = %q, missing %q", msg, s)
				}
			}
			var err error = fmt.Errorf("create group: %w", got)
			if failure.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", !tt.permanent, tt.permanent)
			}
			if IsNotFound(err) != tt.isNotFound || StatusOf(err) != tt.status {
				t.Errorf("IsNotFound/StatusOf = %v/%d", IsNotFound(err), StatusOf(err))
			}
		})
	}
}

func TestClassification(t *testing.T) {
	perm := []int{400, 401, 403, 404, 409, 412, 422, 428}
	trans := []int{408, 425, 429, 500, 501, 502, 503, 504}
	for _, s := range perm {
		if !failure.IsPermanent(&APIError{Status: s}) {
			t.Errorf("%d should be permanent", s)
		}
	}
	for _, s := range trans {
		if failure.IsPermanent(&APIError{Status: s}) {
			t.Errorf("%d should be transient", s)
		}
	}
	others := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"unknown site", fmt.Errorf("handler: %w", ErrUnknownSite), true},
		{"invalid input", invalid("too many"), true},
		{"decode error", &decodeError{op: "x", err: io.ErrUnexpectedEOF}, true},
		{"deadline", fmt.Errorf("wix groups.get: %w", context.DeadlineExceeded), false},
		{"EOF", fmt.Errorf("wix groups.get: %w", io.EOF), false},
		{"conn reset", fmt.Errorf("wix: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), false},
	}
	for _, o := range others {
		if failure.IsPermanent(o.err) != o.permanent {
			t.Errorf("%s: IsPermanent = %v", o.name, !o.permanent)
		}
	}
	if StatusOf(errors.New("x")) != 0 || IsNotFound(nil) {
		t.Error("StatusOf/IsNotFound on non-API errors")
	}
}

// fakeLimiter records calls and never blocks.
type fakeLimiter struct {
	mu        sync.Mutex
	waits     int
	throttled []time.Duration
}

func (f *fakeLimiter) Wait(ctx context.Context) error {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeLimiter) Throttled(d time.Duration) {
	f.mu.Lock()
	f.throttled = append(f.throttled, d)
	f.mu.Unlock()
}

// statusSeq answers the n-th request with seq[n-1] (the last one repeats);
// 200 answers body.
func statusSeq(body string, seq ...int) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, _ *http.Request, n int) {
		st := seq[min(n, len(seq))-1]
		if st == 429 {
			w.Header().Set("Retry-After", "7")
		}
		if st == 200 {
			replyJSON(w, 200, []byte(body))
			return
		}
		replyJSON(w, st, []byte(`{"message":"","details":{}}`))
	}
}

func TestRetries(t *testing.T) {
	groupBody := `{"group":{"id":"g1","name":"G"}}`
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter, r *http.Request, n int)
		maxRetries int
		create     bool // call CreateGroup instead of GetGroup
		wantReqs   int
		wantErr    bool
		wantStatus int
		permanent  bool
		throttled  []time.Duration
		minSleep   time.Duration
	}{
		{name: "5xx then success", handler: statusSeq(groupBody, 503, 500, 200), wantReqs: 3},
		{name: "no retry on 400", handler: statusSeq(groupBody, 400, 200), wantReqs: 1, wantErr: true, wantStatus: 400, permanent: true},
		{name: "no retry on 404", handler: statusSeq(groupBody, 404), wantReqs: 1, wantErr: true, wantStatus: 404, permanent: true},
		{name: "retries exhausted", handler: statusSeq(groupBody, 502), maxRetries: 2, wantReqs: 3, wantErr: true, wantStatus: 502},
		{name: "no retries configured", handler: statusSeq(groupBody, 502), maxRetries: -1, wantReqs: 1, wantErr: true, wantStatus: 502},
		{
			name: "429 honours Retry-After", handler: statusSeq(groupBody, 429, 200), wantReqs: 2,
			throttled: []time.Duration{7 * time.Second}, minSleep: 7 * time.Second,
		},
		{name: "create not retried after 503", create: true, handler: statusSeq(groupBody, 503, 200), wantReqs: 1, wantErr: true, wantStatus: 503},
		{
			name: "create retried after 429", create: true, handler: statusSeq(groupBody, 429, 200), wantReqs: 2,
			throttled: []time.Duration{7 * time.Second}, minSleep: 7 * time.Second,
		},
		{
			name: "connection dropped then success",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				replyJSON(w, 200, []byte(groupBody))
			},
			wantReqs: 2,
		},
		{
			name: "truncated body then success",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Content-Length", "100")
					w.WriteHeader(200)
					_, _ = w.Write([]byte(`{"group":`))
					return
				}
				replyJSON(w, 200, []byte(groupBody))
			},
			wantReqs: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWix(t, tt.handler)
			c := testClient(t, f.srv.URL, func(cfg *Config) { cfg.MaxRetries = tt.maxRetries })
			var mu sync.Mutex
			var slept time.Duration
			c.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				slept += d
				mu.Unlock()
				return ctx.Err()
			}
			lim := &fakeLimiter{}
			if err := c.AddSiteWithLimiter(testSite, Credentials{APIKey: testKey}, lim); err != nil {
				t.Fatal(err)
			}
			s, _ := c.Site(testSite)
			var counter CallCounter
			ctx := WithCallCounter(context.Background(), &counter)
			var err error
			if tt.create {
				_, err = s.CreateGroup(ctx, Group{Name: "G"}, "")
			} else {
				_, err = s.GetGroup(ctx, "g1")
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got := len(f.requests()); got != tt.wantReqs || counter.Load() != int64(tt.wantReqs) || lim.waits != tt.wantReqs {
				t.Errorf("requests %d, counter %d, limiter waits %d; want %d", got, counter.Load(), lim.waits, tt.wantReqs)
			}
			if err != nil {
				if StatusOf(err) != tt.wantStatus || failure.IsPermanent(err) != tt.permanent {
					t.Errorf("err = %v (status %d, permanent %v)", err, StatusOf(err), failure.IsPermanent(err))
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error leaks the API key: %v", err)
				}
			}
			if fmt.Sprint(lim.throttled) != fmt.Sprint(tt.throttled) {
				t.Errorf("Throttled calls = %v, want %v", lim.throttled, tt.throttled)
			}
			if slept < tt.minSleep {
				t.Errorf("slept %v, want at least %v", slept, tt.minSleep)
			}
		})
	}
}

func TestRetryStopsWhenContextCancelled(t *testing.T) {
	f := newFakeWix(t, statusSeq("", 503))
	c := testClient(t, f.srv.URL, func(cfg *Config) { cfg.MaxRetries = 100 })
	s := apiKeySite(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(sctx context.Context, d time.Duration) error {
		cancel() // the caller gives up while we back off
		<-sctx.Done()
		return sctx.Err()
	}
	_, err := s.GetGroup(ctx, "g1")
	if !errors.Is(err, context.Canceled) || StatusOf(err) != 503 {
		t.Fatalf("err = %v, want 503 wrapped with context.Canceled", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
	// An already cancelled context sends nothing.
	if _, err := s.GetGroup(ctx, "g1"); !errors.Is(err, context.Canceled) || len(f.requests()) != 1 {
		t.Errorf("cancelled ctx: err %v, requests %d", err, len(f.requests()))
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-r.Context().Done() // hang until the client's per-attempt timeout
			return
		}
		replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
	})
	c := testClient(t, f.srv.URL, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
	s := apiKeySite(t, c)
	g, err := s.GetGroup(context.Background(), "g1")
	if err != nil || g.ID != "g1" || len(f.requests()) != 2 {
		t.Fatalf("g = %+v, err = %v, requests %d", g, err, len(f.requests()))
	}
}

func TestInputValidation(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("m%d", i)
		}
		return out
	}
	f := newFakeWix(t, statusSeq("{}", 200))
	s := apiKeySite(t, testClient(t, f.srv.URL, nil))
	ctx := context.Background()
	long := strings.Repeat("é", MaxGroupNameLen+1)
	tests := map[string]func() error{
		"add 101 members":     func() error { _, err := s.AddGroupMembers(ctx, "g", ids(101)); return err },
		"add empty member id": func() error { _, err := s.AddGroupMembers(ctx, "g", []string{"a", ""}); return err },
		"remove 101 members":  func() error { return s.RemoveGroupMembers(ctx, "g", ids(101)) },
		"empty group id":      func() error { _, err := s.GetGroup(ctx, ""); return err },
		"update without id":   func() error { _, err := s.UpdateGroup(ctx, Group{Name: "x"}); return err },
		"create without name": func() error { _, err := s.CreateGroup(ctx, Group{}, ""); return err },
		"create long name":    func() error { _, err := s.CreateGroup(ctx, Group{Name: long}, ""); return err },
		"page size 101":       func() error { _, err := s.ListGroups(ctx, Paging{Limit: 101}); return err },
		"query page size 101": func() error { _, err := s.QueryMembers(ctx, MembersQuery{Paging: &Paging{Limit: 101}}); return err },
		"4 fieldsets": func() error {
			_, err := s.GetMember(ctx, "m", FieldsetPublic, FieldsetExtended, FieldsetFull, FieldsetFull)
			return err
		},
		"101 emails":  func() error { _, err := s.QueryEmailSubscriptions(ctx, ids(101), Paging{}); return err },
		"501 answers": func() error { _, err := s.ListAnswers(ctx, "g", ids(501), Paging{}); return err },
		"51 questions": func() error {
			_, err := s.ReplaceMembershipQuestions(ctx, "g", make([]MembershipQuestion, 51))
			return err
		},
		"empty question": func() error {
			_, err := s.ReplaceMembershipQuestions(ctx, "g", []MembershipQuestion{{Text: " "}})
			return err
		},
		"long question": func() error {
			_, err := s.ReplaceMembershipQuestions(ctx, "g", []MembershipQuestion{{Text: strings.Repeat("a", 301)}})
			return err
		},
		"101 rules": func() error { _, err := s.ReplaceRules(ctx, "g", make([]GroupRule, 101)); return err },
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			err := fn()
			if !errors.Is(err, ErrInvalidInput) || !failure.IsPermanent(err) {
				t.Errorf("err = %v, want permanent ErrInvalidInput", err)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("invalid input sent %d requests", n)
	}
	// Limits themselves are fine, and empty batches are no-ops without a call.
	if _, err := s.AddGroupMembers(ctx, "g", ids(100)); err != nil {
		t.Errorf("100 ids: %v", err)
	}
	if _, err := s.ListAnswers(ctx, "g", ids(500), Paging{}); err != nil {
		t.Errorf("500 ids: %v", err)
	}
	if err := s.RemoveGroupMembers(ctx, "g", nil); err != nil {
		t.Errorf("remove none: %v", err)
	}
	if ms, err := s.AddGroupMembers(ctx, "g", nil); err != nil || ms != nil {
		t.Errorf("add none: %v %v", ms, err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestSites(t *testing.T) {
	c := New(Config{})
	if _, err := c.Site("nope"); !errors.Is(err, ErrUnknownSite) || !failure.IsPermanent(err) {
		t.Errorf("unknown site err = %v", err)
	}
	bad := []Credentials{{}, {APIKey: "k", AppID: "a"}, {AppID: "a", AppSecret: "s"}}
	for _, cr := range bad {
		if err := c.AddSite("s", cr); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("AddSite(%v) = %v", cr, err)
		}
	}
	if err := c.AddSite("", Credentials{APIKey: "k"}); err == nil {
		t.Error("empty site id accepted")
	}
	if err := c.AddSiteWithLimiter("b", Credentials{APIKey: "k"}, nil); err == nil {
		t.Error("nil limiter accepted")
	}
	for _, id := range []string{"b", "a"} {
		if err := c.AddSite(id, Credentials{APIKey: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	a1, _ := c.Site("a")
	if err := c.AddSite("a", Credentials{AppID: "app", AppSecret: "sec", InstanceID: "inst"}); err != nil {
		t.Fatal(err)
	}
	a2, _ := c.Site("a")
	if a1.Limiter() != a2.Limiter() || a2.ID() != "a" {
		t.Error("re-adding a site must keep its limiter")
	}
	if got := fmt.Sprint(c.SiteIDs()); got != "[a b]" {
		t.Errorf("SiteIDs = %s", got)
	}
}

func TestNoRetryPastDeadline(t *testing.T) {
	f := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", "3600")
		replyJSON(w, 429, []byte(`{"message":"","details":{}}`))
	})
	c := testClient(t, f.srv.URL, nil)
	slept := false
	c.sleep = func(ctx context.Context, d time.Duration) error { slept = true; return nil }
	if err := c.AddSiteWithLimiter(testSite, Credentials{APIKey: testKey}, &fakeLimiter{}); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site(testSite)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.GetGroup(ctx, "g1")
	if StatusOf(err) != 429 || failure.IsPermanent(err) || slept || len(f.requests()) != 1 {
		t.Fatalf("err %v, slept %v, requests %d", err, slept, len(f.requests()))
	}
}

// failingLimiter fails like rate.Limiter does when the deadline is too
// close: with an error that is not ctx.Err().
type failingLimiter struct{ fakeLimiter }

func (f *failingLimiter) Wait(context.Context) error {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	return errors.New("rate: Wait(n=1) would exceed context deadline")
}

func TestLimiterFailureNotRetried(t *testing.T) {
	f := newFakeWix(t, statusSeq("{}", 200))
	c := testClient(t, f.srv.URL, nil)
	lim := &failingLimiter{}
	if err := c.AddSiteWithLimiter(testSite, Credentials{APIKey: testKey}, lim); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site(testSite)
	if _, err := s.GetGroup(context.Background(), "g1"); err == nil || lim.waits != 1 || len(f.requests()) != 0 {
		t.Fatalf("err %v, waits %d, requests %d", err, lim.waits, len(f.requests()))
	}
}

// An error body's texts are untrusted: each is one line without control
// characters and bounded, at most MaxFieldViolations violations are kept
// (the rest counted), and a huge Data is dropped.
func TestAPIErrorTextIsBounded(t *testing.T) {
	huge := strings.Repeat("é\x1b[2J\r\n\x00\u0085", 1<<16)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	long := q(huge[:4<<10])
	var vs []string
	for range 1000 {
		vs = append(vs, `{"field":`+long+`,"description":`+long+`,"violatedRule":`+long+`,"ruleName":`+long+`}`)
	}
	body := `{"message":` + q(huge) + `,"details":{"applicationError":{"code":` + q(huge) + `,"description":` + q("other"+huge) +
		`,"data":{"x":` + q(huge) + `}},"validationError":{"fieldViolations":[` + strings.Join(vs, ",") + `]}}}`
	e := parseAPIError(400, http.Header{}, []byte(body), OpGroupsCreate, "POST", "/g", time.Now())
	msg := e.Error()
	if len(msg) > 8<<10 || strings.ContainsAny(msg, "\x1b\r\n\x00\u0085") || !utf8.ValidString(msg) {
		t.Fatalf("Error() of %d bytes: %q...", len(msg), msg[:min(len(msg), 200)])
	}
	if len(e.FieldViolations) != MaxFieldViolations || e.MoreFieldViolations != 1000-MaxFieldViolations ||
		!strings.Contains(msg, fmt.Sprintf("and %d more", 1000-MaxFieldViolations)) {
		t.Fatalf("%d violations kept, %d more: %q", len(e.FieldViolations), e.MoreFieldViolations, msg[len(msg)-100:])
	}
	if e.Data != nil {
		t.Fatalf("Data of %d bytes kept", len(e.Data))
	}
	if !strings.HasPrefix(e.Message, "é [2J é") {
		t.Fatalf("Message %q", e.Message[:20])
	}
}

// TestRedactionForms: a secret JSON never escapes is redacted as is only; one
// with characters it may escape also in each escaped form, longest first.
func TestRedactionForms(t *testing.T) {
	if got := redactionForms([]string{"", "plain-KEY.123_x", "plain-KEY.123_x"}); !slices.Equal(got, []string{"plain-KEY.123_x"}) {
		t.Errorf("plain secret: forms %q, want only itself", got)
	}
	got := redactionForms([]string{`a/"<é😀`})
	for _, want := range []string{`a/"<é😀`, `a/\"\u003cé😀`, `a\/\"\u003cé😀`, `a/\"<é😀`, `a\/\"<é😀`,
		`a/\"\u003c\u00e9\ud83d\ude00`, `a\/\"<\u00E9\uD83D\uDE00`} {
		if !slices.Contains(got, want) {
			t.Errorf("forms %q lack %q", got, want)
		}
	}
	if !slices.IsSortedFunc(got, func(a, b string) int { return len(b) - len(a) }) {
		t.Errorf("forms %q are not longest first", got)
	}
}
