package wix

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"groupflow/internal/failure"
)

// TestRedirectsAreNotFollowed: a 3xx from the base URL, on an API call or on
// the OAuth token request, is a permanent error naming the status and the
// Location host, and the Location target receives nothing (no API key, no
// client secret).
func TestRedirectsAreNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, mode := range []string{"api-key", "oauth"} {
			t.Run(http.StatusText(status)+"/"+mode, func(t *testing.T) {
				target := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
					replyJSON(w, 200, []byte(`{"access_token":"stolen","expires_in":3600,"group":{"id":"g1"}}`))
				})
				loc, _ := url.Parse(target.srv.URL)
				origin := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
					http.Redirect(w, r, target.srv.URL+r.URL.Path, status)
				})
				c := testClient(t, origin.srv.URL, nil)
				creds := Credentials{APIKey: testKey}
				if mode == "oauth" {
					creds = appCreds
				}
				if err := c.AddSite(testSite, creds); err != nil {
					t.Fatal(err)
				}
				s, _ := c.Site(testSite)
				_, err := s.GetGroup(context.Background(), "g1")
				if err == nil {
					t.Fatal("GetGroup succeeded through a redirect")
				}
				if !failure.IsPermanent(err) {
					t.Errorf("redirect error is not permanent: %v", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, "redirect") || !strings.Contains(msg, strconv.Itoa(status)) {
					t.Errorf("error %q does not explain the redirect and its status %d", msg, status)
				}
				if !strings.Contains(msg, loc.Host) {
					t.Errorf("error %q does not name the Location host %s", msg, loc.Host)
				}
				for _, secret := range []string{testKey, appCreds.AppSecret} {
					if strings.Contains(msg, secret) {
						t.Errorf("error leaks a secret: %q", msg)
					}
				}
				if got := target.requests(); len(got) != 0 {
					t.Errorf("the Location target received %d request(s), first %s %s", len(got), got[0].Method, got[0].Path)
				}
				if got := origin.requests(); len(got) != 1 {
					t.Errorf("origin got %d requests, want 1 (a redirect is not retried)", len(got))
				}
			})
		}
	}
}

// TestValidateBaseURL: plain http is accepted only on loopback or with the
// explicit opt-in; user info, queries and other schemes never.
func TestValidateBaseURL(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://www.wixapis.com", false, true},
		{"https://proxy.example:8443/wix", false, true},
		{"http://127.0.0.1:8090", false, true},
		{"http://localhost:8090", false, true},
		{"http://[::1]:8090", false, true},
		{"http://wixsim:8090", false, false},
		{"http://wixsim:8090", true, true},
		{"http://0.0.0.0:8090", false, false},
		{"http://10.1.2.3", false, false},
		{"https://user:pw@www.wixapis.com", false, false},
		{"https://www.wixapis.com?x=1", false, false},
		{"ftp://www.wixapis.com", true, false},
		{"www.wixapis.com", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		err := ValidateBaseURL(tt.url, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateBaseURL(%q, insecure=%v) = %v, want ok=%v", tt.url, tt.insecure, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
}

// TestInsecureBaseURLSendsNothing: a client built on a refused base URL fails
// every call permanently before any request.
func TestInsecureBaseURLSendsNothing(t *testing.T) {
	c := New(Config{BaseURL: "http://wix.example.invalid"})
	if err := c.AddSite(testSite, Credentials{APIKey: testKey}); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Site(testSite)
	_, err := s.GetGroup(context.Background(), "g1")
	if err == nil || !failure.IsPermanent(err) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("GetGroup on http://wix.example.invalid = %v, want a permanent plain-http refusal", err)
	}
}

// TestMemberTokenRedirectIsPermanent: a 3xx answer to the member-token
// exchange (POST /oauth2/token, refresh-token grant) is the same permanent
// *RedirectError as one to the app token request: it names the status and
// the Location host, is not retried, and the Location target receives
// nothing (no refresh token).
func TestMemberTokenRedirectIsPermanent(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			target := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				replyJSON(w, 200, []byte(`{"access_token":"stolen","expires_in":3600,"rules":[]}`))
			})
			loc, _ := url.Parse(target.srv.URL)
			origin := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, target.srv.URL+r.URL.Path, status)
			})
			s := memberSite(t, origin.srv.URL, newFakeClock(), zap.NewNop(), memberCreds)
			_, err := s.ListRules(context.Background(), "g1")
			if err == nil {
				t.Fatal("ListRules succeeded through a redirect")
			}
			var re *RedirectError
			if !errors.As(err, &re) || re.Status != status || re.Op != opMemberToken {
				t.Errorf("err %v (%T), want a *RedirectError of %s with status %d", err, err, opMemberToken, status)
			}
			if !failure.IsPermanent(err) {
				t.Errorf("redirect error is not permanent: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "redirect") || !strings.Contains(msg, strconv.Itoa(status)) || !strings.Contains(msg, loc.Host) {
				t.Errorf("error %q does not explain the redirect, its status %d and the Location host %s", msg, status, loc.Host)
			}
			if strings.Contains(msg, testRefresh) {
				t.Errorf("error leaks the refresh token: %q", msg)
			}
			if got := target.requests(); len(got) != 0 {
				t.Errorf("the Location target received %d request(s), first %s %s", len(got), got[0].Method, got[0].Path)
			}
			if got := origin.requests(); len(got) != 1 || got[0].Path != oauthTokenPath {
				t.Errorf("origin got %d requests, want 1 token request (a redirect is not retried)", len(got))
			}
		})
	}
}
