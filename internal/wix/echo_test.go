package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
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

// escapedEchoes are the JSON-escaped forms in which an answer may echo
// secret, by name: encoding/json's (`\"`, `\\`, `\u003c`...),
// JavaScript's (no HTML escaping), ASCII-only (`\u00e9` or `\u00E9`,
// Python's and Java's), and each with `/` written `\/` (PHP's). They are
// built here independently of the client's redaction.
func escapedEchoes(t *testing.T, secret string) map[string]string {
	t.Helper()
	quoted := func(html bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(secret); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(b.String()), `"`), `"`)
	}
	ascii := func(s, format string) string {
		var b strings.Builder
		for _, r := range s {
			if r < 0x80 {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, format, r) // the secret has no rune past U+FFFF
			}
		}
		return b.String()
	}
	js := quoted(false)
	forms := map[string]string{}
	for name, f := range map[string]string{"go": quoted(true), "js": js, "ascii": ascii(js, `\u%04x`), "ASCII": ascii(js, `\u%04X`)} {
		forms[name] = f
		forms[name+` \/`] = strings.ReplaceAll(f, "/", `\/`)
	}
	return forms
}

// Wix's error answers echoing a secret in a JSON-escaped form (the app
// secret or member refresh token of the JSON body it was sent, with `/`,
// `"`, `<`, `>`, `&`, `\` and non-ASCII) never put it, in any form, in the
// error or its Data: neither in a JSON error body (fields, Data, a JSON
// document quoted in the message) nor in a plain-text excerpt.
func TestJSONEscapedEchoesAreRedacted(t *testing.T) {
	const secret = `s3cr/t"q<a>&é\x-0123`
	ctx := context.Background()
	forms := escapedEchoes(t, secret)
	bodies := map[string][]byte{}
	for form, f := range forms {
		quoted, _ := json.Marshal(`sent {"client_secret":"` + f + `"}`)
		bodies["json/"+form] = []byte(`{"message":"bad secret ` + f + `","details":{"applicationError":{"code":"X","description":"got ` + f + `","data":{"client_secret":"` + f + `"}},"validationError":{"fieldViolations":[{"field":"client_secret","description":"` + f + `"}]}}}`)
		bodies["json in message/"+form] = []byte(`{"message":` + string(quoted) + `}`)
		bodies["text/"+form] = []byte(`upstream refused {"client_secret":"` + f + `"`)
	}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		all := err.Error()
		var ae *APIError
		if errors.As(err, &ae) {
			all += "\n" + string(ae.Data)
		}
		for _, f := range append(slices.Collect(maps.Values(forms)), secret, "s3cr") {
			if strings.Contains(all, f) {
				t.Fatalf("the secret (as %q) reached the error:\n%s", f, all)
			}
		}
	}
	for name, body := range bodies {
		t.Run("app secret/"+name, func(t *testing.T) {
			f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, 400, body) })
			c := testClient(t, f.srv.URL, nil)
			creds := appCreds
			creds.AppSecret = secret
			if err := c.AddSite(testSite, creds); err != nil {
				t.Fatal(err)
			}
			s, _ := c.Site(testSite)
			_, err := s.GetGroup(ctx, groupID)
			check(t, err)
		})
		t.Run("member refresh token/"+name, func(t *testing.T) {
			f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, 400, body) })
			creds := memberCreds
			creds.MemberRefreshToken = secret
			s := memberSite(t, f.srv.URL, newFakeClock(), zap.NewNop(), creds)
			_, err := s.ReplaceRules(ctx, "g1", []GroupRule{{Title: "t", Description: "d"}})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v, want an APIError", err)
			}
			check(t, ae) // memberTokenError names only status and code
		})
	}
}
