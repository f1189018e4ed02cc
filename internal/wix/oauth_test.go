package wix

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/failure"
)

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var appCreds = Credentials{AppID: "app-123", AppSecret: "shh-app-secret", InstanceID: "inst-456"}

// oauthWix serves /oauth2/token (tokens tok-1, tok-2, ...) and the API,
// which accepts the tokens api says are valid.
type oauthWix struct {
	*fakeWix
	tokens    atomic.Int64
	expiresIn int
	gate      chan struct{} // if set, token requests wait for it
	valid     func(tok string) bool
}

func newOAuthWix(t *testing.T, expiresIn int, valid func(tok string) bool) *oauthWix {
	o := &oauthWix{expiresIn: expiresIn, valid: valid}
	o.fakeWix = newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/oauth2/token" {
			if o.gate != nil {
				<-o.gate
			}
			n := o.tokens.Add(1)
			replyJSON(w, 200, fmt.Appendf(nil, `{"access_token":"tok-%d","expires_in":%d}`, n, o.expiresIn))
			return
		}
		if !o.valid(r.Header.Get("Authorization")) {
			replyJSON(w, 401, []byte(`{"message":"invalid token","details":{}}`))
			return
		}
		replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
	})
	return o
}

func (o *oauthWix) apiRequests() (api []recorded, token []recorded) {
	for _, r := range o.requests() {
		if r.Path == "/oauth2/token" {
			token = append(token, r)
		} else {
			api = append(api, r)
		}
	}
	return api, token
}

func oauthSite(t *testing.T, base string, clock *fakeClock) *Site {
	t.Helper()
	c := testClient(t, base, nil)
	if clock != nil {
		c.now = clock.Now
	}
	if err := c.AddSite(testSite, appCreds); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site(testSite)
	return s
}

func TestOAuthTokenFetchedOnceUnderConcurrency(t *testing.T) {
	o := newOAuthWix(t, 14400, func(tok string) bool { return tok == "tok-1" })
	o.gate = make(chan struct{})
	s := oauthSite(t, o.srv.URL, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := s.GetGroup(context.Background(), "g1")
			errs <- err
		})
	}
	close(o.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	api, token := o.apiRequests()
	if len(token) != 1 || len(api) != 50 {
		t.Fatalf("token requests %d, api requests %d; want 1 and 50", len(token), len(api))
	}
	var body map[string]string
	if err := json.Unmarshal(token[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"client_id": "app-123", "client_secret": "shh-app-secret", "instance_id": "inst-456", "grant_type": "client_credentials"}
	if fmt.Sprint(body) != fmt.Sprint(want) || token[0].Method != "POST" || token[0].Header.Get("Content-Type") != "application/json" {
		t.Errorf("token request %s %s %v", token[0].Method, token[0].Body, token[0].Header)
	}
	for _, r := range api {
		if r.Header.Get("Authorization") != "tok-1" || r.Header.Get("wix-site-id") != "" {
			t.Fatalf("api headers: Authorization %q, wix-site-id %q", r.Header.Get("Authorization"), r.Header.Get("wix-site-id"))
		}
	}
}

func TestOAuthRenewsBeforeExpiry(t *testing.T) {
	o := newOAuthWix(t, 3600, func(tok string) bool { return strings.HasPrefix(tok, "tok-") })
	clock := newFakeClock()
	s := oauthSite(t, o.srv.URL, clock)
	ctx := context.Background()
	steps := []struct {
		advance    time.Duration
		wantTokens int64
		wantAuth   string
	}{
		{0, 1, "tok-1"},
		{47 * time.Minute, 1, "tok-1"}, // < 80% of 1h: cached
		{2 * time.Minute, 2, "tok-2"},  // 49 min: renewed while still valid
		{47 * time.Minute, 2, "tok-2"},
		{10 * time.Minute, 3, "tok-3"},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if _, err := s.GetGroup(ctx, "g1"); err != nil {
			t.Fatal(err)
		}
		api, _ := o.apiRequests()
		if got := o.tokens.Load(); got != st.wantTokens || api[len(api)-1].Header.Get("Authorization") != st.wantAuth {
			t.Errorf("step %d: tokens %d (want %d), auth %q (want %q)", i, got, st.wantTokens, api[len(api)-1].Header.Get("Authorization"), st.wantAuth)
		}
	}
}

func TestOAuth401RefreshesOnce(t *testing.T) {
	t.Run("revoked token is replaced", func(t *testing.T) {
		o := newOAuthWix(t, 14400, func(tok string) bool { return tok == "tok-2" })
		s := oauthSite(t, o.srv.URL, nil)
		var counter CallCounter
		if _, err := s.GetGroup(WithCallCounter(context.Background(), &counter), "g1"); err != nil {
			t.Fatal(err)
		}
		api, token := o.apiRequests()
		if len(api) != 2 || len(token) != 2 || counter.Load() != 4 {
			t.Errorf("api %d, token %d, counted %d; want 2, 2, 4", len(api), len(token), counter.Load())
		}
	})
	t.Run("second 401 is permanent", func(t *testing.T) {
		o := newOAuthWix(t, 14400, func(string) bool { return false })
		s := oauthSite(t, o.srv.URL, nil)
		_, err := s.GetGroup(context.Background(), "g1")
		if StatusOf(err) != 401 || !failure.IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
		api, token := o.apiRequests()
		if len(api) != 2 || len(token) != 2 {
			t.Errorf("api %d, token %d; want 2 and 2", len(api), len(token))
		}
		if strings.Contains(err.Error(), "tok-") || strings.Contains(err.Error(), appCreds.AppSecret) {
			t.Errorf("error leaks a secret: %v", err)
		}
	})
	t.Run("rejected app credentials", func(t *testing.T) {
		f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			replyJSON(w, 400, []byte(`{"message":"invalid client","details":{"applicationError":{"code":"INVALID_CLIENT"}}}`))
		})
		s := oauthSite(t, f.srv.URL, nil)
		_, err := s.GetGroup(context.Background(), "g1")
		if StatusOf(err) != 400 || !failure.IsPermanent(err) || !strings.Contains(err.Error(), "oauth.token") {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("requests = %d, want 1 (token request only)", n)
		}
	})
}

// TestTokenLifetimeIsBounded: whatever expires_in a token answer carries
// (absent or zero, tiny, negative, years), the app and member tokens are
// fetched once by concurrent callers, reused by the calls of the next ten
// seconds (a tiny lifetime does not cost a token request per call), and
// renewed within Wix's documented 4 hours (a huge lifetime does not keep a
// token cached past it).
func TestTokenLifetimeIsBounded(t *testing.T) {
	for _, kind := range []string{"app", "member"} {
		for _, expiresIn := range []int{0, 1, 29, -60, 1e8} {
			t.Run(fmt.Sprintf("%s/expires_in=%d", kind, expiresIn), func(t *testing.T) {
				clock := newFakeClock()
				var (
					s      *Site
					tokens func() int
					call   func() error
					gate   = make(chan struct{})
				)
				ctx := context.Background()
				switch kind {
				case "app":
					o := newOAuthWix(t, expiresIn, func(tok string) bool { return strings.HasPrefix(tok, "tok-") })
					o.gate = gate
					s = oauthSite(t, o.srv.URL, clock)
					tokens = func() int { _, tr := o.apiRequests(); return len(tr) }
					call = func() error { _, err := s.GetGroup(ctx, "g1"); return err }
				default:
					m := newMemberWix(t, expiresIn, false)
					m.gate = gate
					s = memberSite(t, m.srv.URL, clock, zap.NewNop(), memberCreds)
					tokens = func() int { return countPath(m.requests(), oauthTokenPath) }
					call = func() error { _, err := s.ListRules(ctx, "g1"); return err }
				}

				var wg sync.WaitGroup
				errs := make(chan error, 20)
				for range 20 {
					wg.Go(func() { errs <- call() })
				}
				close(gate)
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				if n := tokens(); n != 1 {
					t.Fatalf("%d token requests for 20 concurrent calls, want 1", n)
				}
				for range 10 {
					clock.Advance(time.Second)
					if err := call(); err != nil {
						t.Fatal(err)
					}
				}
				if n := tokens(); n != 1 {
					t.Fatalf("%d token requests for calls spread over 10s, want 1 (the token is reused)", n)
				}
				clock.Advance(4 * time.Hour)
				if err := call(); err != nil {
					t.Fatal(err)
				}
				if n := tokens(); n != 2 {
					t.Fatalf("%d token requests 4h after the first, want 2 (renewed within the documented lifetime)", n)
				}
			})
		}
	}
}

// TestTokenLifetime: the cached lifetime of an expires_in claim.
func TestTokenLifetime(t *testing.T) {
	for _, tt := range []struct {
		secs float64
		want time.Duration
	}{
		{0, 5 * time.Minute}, {-1, 5 * time.Minute}, {math.NaN(), 5 * time.Minute}, {math.Inf(-1), 5 * time.Minute},
		{0.5, MinTokenLifetime}, {1, MinTokenLifetime}, {30, 30 * time.Second}, {3600, time.Hour},
		{14400, 4 * time.Hour}, {14401, MaxTokenLifetime}, {1e300, MaxTokenLifetime}, {math.Inf(1), MaxTokenLifetime},
	} {
		if got := tokenLifetime(tt.secs); got != tt.want {
			t.Errorf("tokenLifetime(%v) = %v, want %v", tt.secs, got, tt.want)
		}
	}
}

// TestTokenRequestsDoNotWaitOnSiteLimiter pins a decision (AUTH.md, "Token
// requests and the rate limit"): the Wix reference does not say whether
// POST /oauth2/token counts toward a site's 200 requests a minute, so a
// token request, app or member, takes no slot of the site's limiter of its
// own: it is made within the slot of the API call that needed it. It is
// still counted by the call's CallCounter.
func TestTokenRequestsDoNotWaitOnSiteLimiter(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"app", "member"} {
		t.Run(kind, func(t *testing.T) {
			var (
				srv   string
				reqs  func() []recorded
				creds = appCreds
			)
			if kind == "app" {
				o := newOAuthWix(t, 14400, func(tok string) bool { return tok == "tok-1" })
				srv, reqs = o.srv.URL, o.requests
			} else {
				m := newMemberWix(t, 14400, false)
				srv, reqs, creds = m.srv.URL, m.requests, memberCreds
			}
			c := testClient(t, srv, nil)
			lim := &fakeLimiter{}
			if err := c.AddSiteWithLimiter(testSite, creds, lim); err != nil {
				t.Fatal(err)
			}
			s, _ := c.Site(testSite)
			var counter CallCounter
			cctx := WithCallCounter(ctx, &counter)
			var err error
			if kind == "app" {
				_, err = s.GetGroup(cctx, "g1")
			} else {
				_, err = s.ListRules(cctx, "g1")
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, tok := len(reqs()), countPath(reqs(), oauthTokenPath); n != 2 || tok != 1 {
				t.Fatalf("%d requests (%d token requests), want 2 (1)", n, tok)
			}
			lim.mu.Lock()
			waits := lim.waits
			lim.mu.Unlock()
			if waits != 1 || counter.Load() != 2 {
				t.Fatalf("limiter waited %d times, call counter %d; want 1 (the API call only) and 2", waits, counter.Load())
			}
		})
	}
}
