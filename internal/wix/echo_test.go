package wix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// echoBodies are error answers that repeat the request's credential (a proxy
// or a buggy Wix echoing the headers or the body it was sent): JSON fields,
// Data, and a plain-text page whose 200-byte excerpt cuts the secret.
func echoBodies(secret string) map[string][]byte {
	return map[string][]byte{
		"json":     []byte(`{"message":"bad request; Authorization: ` + secret + `","details":{"applicationError":{"code":"X","description":"got ` + secret + `","data":{"authorization":"` + secret + `"}},"validationError":{"fieldViolations":[{"field":"h","description":"` + secret + `"}]}}}`),
		"text cut": []byte(strings.Repeat("x", 190) + " " + secret + " more text"),
	}
}

// assertNoSecret fails when err, its APIError's Data or a log line names
// secret or its first 8 bytes.
func assertNoSecret(t *testing.T, err error, logs *observer.ObservedLogs, secret string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var parts []string
	parts = append(parts, err.Error())
	var ae *APIError
	if errors.As(err, &ae) {
		parts = append(parts, string(ae.Data))
	}
	if logs != nil {
		for _, e := range logs.All() {
			parts = append(parts, e.Message)
			for k, v := range e.ContextMap() {
				parts = append(parts, k, fmt.Sprint(v))
			}
		}
	}
	all := strings.Join(parts, "\n")
	if strings.Contains(all, secret[:8]) {
		t.Fatalf("a credential reached an error or a log:\n%s", all)
	}
}

// Wix's error answers echoing the API key, the app token, the app secret or
// the member refresh token never put them in errors or logs.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	ctx := context.Background()
	t.Run("api key", func(t *testing.T) {
		for name, body := range echoBodies(testKey) {
			t.Run(name, func(t *testing.T) {
				for _, status := range []int{403, 500} {
					f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, status, body) })
					core, logs := observer.New(zap.DebugLevel)
					s := apiKeySite(t, testClient(t, f.srv.URL, func(c *Config) { c.Logger = zap.New(core); c.MaxRetries = 1 }))
					_, err := s.GetGroup(ctx, groupID)
					assertNoSecret(t, err, logs, testKey)
				}
			})
		}
	})
	t.Run("app token", func(t *testing.T) {
		const tok = "app-access-token-0123456789"
		for name, body := range echoBodies(tok) {
			t.Run(name, func(t *testing.T) {
				f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
					if r.URL.Path == oauthTokenPath {
						replyJSON(w, 200, []byte(`{"access_token":"`+tok+`","expires_in":3600}`))
						return
					}
					replyJSON(w, 400, body)
				})
				s := oauthSite(t, f.srv.URL, nil)
				_, err := s.GetGroup(ctx, groupID)
				assertNoSecret(t, err, nil, tok)
			})
		}
	})
	t.Run("app secret", func(t *testing.T) {
		for name, body := range echoBodies(appCreds.AppSecret) {
			t.Run(name, func(t *testing.T) {
				f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, 400, body) })
				s := oauthSite(t, f.srv.URL, nil)
				_, err := s.GetGroup(ctx, groupID)
				assertNoSecret(t, err, nil, appCreds.AppSecret)
			})
		}
	})
	t.Run("member refresh token", func(t *testing.T) {
		for name, body := range echoBodies(testRefresh) {
			t.Run(name, func(t *testing.T) {
				f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, 400, body) })
				s := memberSite(t, f.srv.URL, newFakeClock(), zap.NewNop(), memberCreds)
				_, err := s.ReplaceRules(ctx, "g1", []GroupRule{{Title: "t", Description: "d"}})
				assertNoSecret(t, err, nil, testRefresh)
			})
		}
	})
}
