package wix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/failure"
	"groupflow/internal/wixsim"
)

const (
	testRefresh  = "rt-configured-secret"
	testClientID = "member-client-1"
)

// memberWix serves POST /oauth2/token for the refresh-token grant (access
// tokens mtok-N, refresh tokens rotated to rt-N) and an API that accepts the
// latest member token on rules/questions paths and the API key elsewhere.
type memberWix struct {
	*fakeWix
	n         atomic.Int64
	expiresIn int
	rotate    bool
	gate      chan struct{}
	mu        sync.Mutex
	refresh   string // refresh token the server currently accepts
	memberTok string
}

func newMemberWix(t *testing.T, expiresIn int, rotate bool) *memberWix {
	m := &memberWix{expiresIn: expiresIn, rotate: rotate, refresh: testRefresh}
	m.fakeWix = newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/oauth2/token" {
			if m.gate != nil {
				<-m.gate
			}
			var req memberTokenRequest
			_ = json.Unmarshal(m.requests()[len(m.requests())-1].Body, &req)
			m.mu.Lock()
			defer m.mu.Unlock()
			if req.GrantType != "refresh_token" || req.ClientID != testClientID || req.RefreshToken != m.refresh {
				replyJSON(w, 400, []byte(`{"message":"invalid_grant","details":{"applicationError":{"code":"INVALID_GRANT"}}}`))
				return
			}
			k := m.n.Add(1)
			m.memberTok = fmt.Sprintf("mtok-%d", k)
			if m.rotate {
				m.refresh = fmt.Sprintf("rt-%d", k)
			}
			replyJSON(w, 200, fmt.Appendf(nil, `{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":%d}`, m.memberTok, m.refresh, m.expiresIn))
			return
		}
		auth := r.Header.Get("Authorization")
		m.mu.Lock()
		cur := m.memberTok
		m.mu.Unlock()
		member := strings.Contains(r.URL.Path, "/rules/") || strings.Contains(r.URL.Path, "/membership-questions/")
		switch {
		case member && (auth == "" || auth != cur):
			replyJSON(w, 403, []byte(`{"message":"requires member authentication","details":{"applicationError":{"code":"PERMISSION_DENIED"}}}`))
		case !member && auth != testKey:
			replyJSON(w, 401, []byte(`{"message":"bad key","details":{}}`))
		case member:
			replyJSON(w, 200, []byte(`{"rules":[{"title":"Be kind","description":"x"}]}`))
		default:
			replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
		}
	})
	return m
}

func memberSite(t *testing.T, base string, clock *fakeClock, log *zap.Logger, creds Credentials) *Site {
	t.Helper()
	c := testClient(t, base, func(cfg *Config) { cfg.Logger = log })
	c.now = clock.Now
	if err := c.AddSite(testSite, creds); err != nil {
		t.Fatal(err)
	}
	s, err := c.Site(testSite)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var memberCreds = Credentials{APIKey: testKey, MemberRefreshToken: testRefresh, MemberClientID: testClientID}

// Member endpoints use the member token, everything else the API key; the
// token is renewed before expiry by one request shared by concurrent calls,
// with the refresh token Wix rotated to; no secret reaches the logs.
func TestMemberCredentialRoutingAndRenewal(t *testing.T) {
	m := newMemberWix(t, 30, true)
	clock := newFakeClock()
	core, logs := observer.New(zap.DebugLevel)
	s := memberSite(t, m.srv.URL, clock, zap.New(core), memberCreds)
	ctx := context.Background()

	if _, err := s.ListRules(ctx, "g1"); err != nil {
		t.Fatalf("list rules: %v", err)
	}
	if _, err := s.GetGroup(ctx, "g1"); err != nil {
		t.Fatalf("get group: %v", err)
	}
	reqs := m.requests()
	if len(reqs) != 3 || reqs[0].Path != "/oauth2/token" {
		t.Fatalf("requests %+v", reqs)
	}
	if got := reqs[1].Header.Get("Authorization"); got != "mtok-1" || reqs[1].Header.Get("wix-site-id") != "" {
		t.Fatalf("rules call sent Authorization %q, wix-site-id %q", got, reqs[1].Header.Get("wix-site-id"))
	}
	if got := reqs[2].Header.Get("Authorization"); got != testKey {
		t.Fatalf("groups call sent Authorization %q, want the API key", got)
	}

	// Near expiry: 8 concurrent calls share one renewal, which sends the
	// rotated refresh token rt-1 (the configured one is no longer valid).
	clock.Advance(25 * time.Second)
	m.gate = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := s.ListRules(ctx, "g1"); errs <- err }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for countPath(m.requests(), "/oauth2/token") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll for the renewal request to arrive
	}
	close(m.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent list rules: %v", err)
		}
	}
	if n := countPath(m.requests(), "/oauth2/token"); n != 2 {
		t.Fatalf("%d token requests, want 2 (one renewal for 8 callers)", n)
	}
	var last memberTokenRequest
	for _, r := range m.requests() {
		if r.Path == "/oauth2/token" {
			_ = json.Unmarshal(r.Body, &last)
		}
	}
	if last.RefreshToken != "rt-1" || last.ClientID != testClientID || last.GrantType != "refresh_token" {
		t.Fatalf("renewal sent %+v, want the rotated refresh token rt-1", last)
	}
	for _, e := range logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		for _, secret := range []string{testRefresh, "rt-1", "rt-2", "mtok-1", "mtok-2", testKey} {
			if strings.Contains(line, secret) {
				t.Fatalf("log line leaks %q: %s", secret, line)
			}
		}
	}
	if str := fmt.Sprintf("%v %+v %#v", memberCreds, memberCreds, memberCreds); strings.Contains(str, testRefresh) {
		t.Fatalf("credentials print the refresh token: %s", str)
	}
}

func countPath(rs []recorded, path string) int {
	n := 0
	for _, r := range rs {
		if r.Path == path {
			n++
		}
	}
	return n
}

// Without a member credential a refused member endpoint is a permanent
// error that names the endpoint, the site, the credential and what to set.
func TestMemberEndpointRefusedNamesCredential(t *testing.T) {
	m := newMemberWix(t, 30, false)
	s := memberSite(t, m.srv.URL, newFakeClock(), zap.NewNop(), Credentials{APIKey: testKey})
	_, err := s.ListRules(context.Background(), "g1")
	var ae *AuthRefusedError
	if !errors.As(err, &ae) || !failure.IsPermanent(err) || !ae.NeedsMemberCredential() {
		t.Fatalf("err %v (%T), want a permanent AuthRefusedError", err, err)
	}
	want := "Wix refused List Rules for site " + testSite + " with the API key (403 PERMISSION_DENIED): these endpoints need a group admin member's credential; set sites[" + testSite + "].memberRefreshTokenEnv and memberClientId"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("reason %q\nwant it to contain %q", err, want)
	}
	if n := len(m.requests()); n != 1 {
		t.Fatalf("%d requests, want 1 (no retry of a permanent refusal)", n)
	}
}

// A refresh token Wix refuses is a permanent error that says to issue a new
// one, without the token.
func TestMemberRefreshTokenRefused(t *testing.T) {
	m := newMemberWix(t, 30, false)
	creds := memberCreds
	creds.MemberRefreshToken = "rt-revoked-secret"
	s := memberSite(t, m.srv.URL, newFakeClock(), zap.NewNop(), creds)
	_, err := s.ReplaceRules(context.Background(), "g1", []GroupRule{{Title: "t", Description: "d"}})
	if err == nil || !failure.IsPermanent(err) || !strings.Contains(err.Error(), "Wix refused the member refresh token of site "+testSite) ||
		strings.Contains(err.Error(), "rt-revoked-secret") {
		t.Fatalf("err %v", err)
	}
	if countPath(m.requests(), "/social-groups/v2/rules/g1") != 0 {
		t.Fatal("rules replaced without a member token")
	}
}

func TestMemberCredentialValidation(t *testing.T) {
	c := New(Config{})
	if err := c.AddSite("s", Credentials{APIKey: "k", MemberRefreshToken: "rt"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("refresh token without client id: %v", err)
	}
	if err := c.AddSite("s", Credentials{APIKey: "k", MemberRefreshToken: "rt", MemberClientID: "c"}); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site("s")
	if !s.HasMemberCredential() {
		t.Fatal("member credential not kept")
	}
}

// Against the simulator in strict mode, with rotating refresh tokens and a
// 30s member token: the renewal near expiry is one request shared by 8
// concurrent callers (a second exchange would present the retired refresh
// token and be refused), and admin writes go through.
func TestMemberCredentialAgainstStrictSimulator(t *testing.T) {
	clock := newFakeClock()
	sim := wixsim.New(wixsim.Options{Members: 3, Groups: 1, AuthStrict: true, RotateRefreshTokens: true,
		MemberTokenTTL: 30 * time.Second, Now: clock.Now})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	st := sim.Site(testSite)
	g := st.AddGroup("Strict", "PUBLIC", st.OwnerID())
	rt := sim.IssueMemberRefreshToken(testSite, st.OwnerID(), testClientID)
	s := memberSite(t, srv.URL, clock, zap.NewNop(), Credentials{APIKey: testKey, MemberRefreshToken: rt, MemberClientID: testClientID})
	ctx := context.Background()
	if _, err := s.ReplaceRules(ctx, g.ID, []GroupRule{{Title: "Be kind", Description: "x"}}); err != nil {
		t.Fatalf("replace rules: %v", err)
	}
	clock.Advance(20 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := s.ListRules(ctx, g.ID); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent list rules after renewal: %v", err)
		}
	}
	clock.Advance(40 * time.Second) // past the first renewal's expiry too
	if _, err := s.ListMembershipQuestions(ctx, g.ID); err != nil {
		t.Fatalf("after a second renewal: %v", err)
	}
	if n := sim.Calls(testSite)[OpRulesList]; n != 8 {
		t.Fatalf("%d rules.list calls, want 8", n)
	}
}
