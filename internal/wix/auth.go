package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// authenticator sets the auth headers of one request.
type authenticator interface {
	// apply sets the headers and returns the token it used ("" for API keys).
	apply(ctx context.Context, req *http.Request, siteID string) (string, error)
	// invalidate drops the cached token if it is still tok; it reports
	// whether a fresh token can be tried (false for API keys).
	invalidate(tok string) bool
}

// apiKeyAuth implements API-key mode. Its header values are made once and
// shared by the site's requests (read-only: Header.Set replaces a slice,
// it never writes into one).
type apiKeyAuth struct {
	header []string // {API key}
	site   []string // {site id}
}

func newAPIKeyAuth(key, siteID string) apiKeyAuth {
	return apiKeyAuth{header: []string{key}, site: []string{siteID}}
}

func (a apiKeyAuth) apply(_ context.Context, req *http.Request, siteID string) (string, error) {
	req.Header["Authorization"] = a.header
	if a.site[0] == siteID {
		req.Header["Wix-Site-Id"] = a.site
	} else {
		req.Header.Set("wix-site-id", siteID)
	}
	return "", nil
}

func (apiKeyAuth) invalidate(string) bool { return false }

// tokenFetch is one in-flight token request shared by concurrent callers.
type tokenFetch struct {
	done   chan struct{}
	tok    string
	expiry time.Time
	err    error
}

// oauthAuth implements app OAuth mode: it caches the access token of one app
// instance, renews it before expiry and makes concurrent callers share a
// single token request.
type oauthAuth struct {
	c     *Client
	creds Credentials
	site  string
	// exchange, if set, replaces the client-credentials request (member
	// OAuth uses a refresh token instead; see memberauth.go).
	exchange func(ctx context.Context) (string, time.Time, error)

	mu       sync.Mutex
	tok      string
	expiry   time.Time // token no longer usable
	renewAt  time.Time // fetch a new one from here on
	inflight *tokenFetch
}

func (a *oauthAuth) apply(ctx context.Context, req *http.Request, _ string) (string, error) {
	tok, err := a.token(ctx)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", tok)
	return tok, nil
}

func (a *oauthAuth) invalidate(tok string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok == tok {
		a.tok, a.expiry, a.renewAt = "", time.Time{}, time.Time{}
	}
	return true
}

// token returns a cached token or waits for the shared fetch.
func (a *oauthAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	now := a.c.now()
	if a.tok != "" && now.Before(a.renewAt) {
		tok := a.tok
		a.mu.Unlock()
		return tok, nil
	}
	f := a.inflight
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		a.inflight = f
		// The fetch outlives a caller that gives up: other callers may be
		// waiting for it. It keeps ctx's values (the call counter) only.
		go a.fetch(context.WithoutCancel(ctx), f)
	}
	a.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return "", fmt.Errorf("wix oauth token: %w", ctx.Err())
	}
	if f.err != nil {
		// A failed renewal still leaves a usable, unexpired token.
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.tok != "" && a.c.now().Before(a.expiry) {
			return a.tok, nil
		}
		return "", f.err
	}
	return f.tok, nil
}

func (a *oauthAuth) fetch(ctx context.Context, f *tokenFetch) {
	ctx, cancel := context.WithTimeout(ctx, a.c.cfg.Timeout)
	defer cancel()
	if a.exchange != nil {
		f.tok, f.expiry, f.err = a.exchange(ctx)
	} else {
		f.tok, f.expiry, f.err = a.request(ctx)
	}

	a.mu.Lock()
	if f.err == nil {
		now := a.c.now()
		a.tok, a.expiry = f.tok, f.expiry
		life := f.expiry.Sub(now)
		// Renew at 80% of the lifetime, and at least 60s before expiry,
		// but not before half of it: with the lifetime at least
		// MinTokenLifetime (tokenLifetime), a token is reused for at least
		// MinTokenLifetime/2 and renewAt is never in the past.
		early := max(life/5, time.Minute)
		if early > life/2 {
			early = life / 2
		}
		a.renewAt = f.expiry.Add(-early)
	}
	a.inflight = nil
	a.mu.Unlock()
	close(f.done)
}

// Bounds of the lifetime a token is cached for, whatever expires_in its
// answer claims. Wix documents it as "Always 14400 (4 hours)" for app
// tokens (Create Access Token,
// https://dev.wix.com/docs/rest/app-management/oauth-2/create-access-token)
// and member access tokens as "valid for 4 hours" (AUTH.md, "Evidence").
// The 5-minute tokens of Wix's legacy custom authentication are not used
// here.
const (
	// MaxTokenLifetime caps the cached lifetime at the documented 4 hours: a
	// longer claim (a proxy's or a buggy answer: years) would keep a token
	// past the life Wix gives it.
	MaxTokenLifetime = 4 * time.Hour
	// MinTokenLifetime floors it: a shorter claim (1s) would make nearly
	// every call fetch a token first, an extra request against the site's
	// 200 a minute. Renewed half-way, a token then costs at most 4 requests
	// a minute per credential. Should Wix really retire it sooner, the 401
	// path (Site.do) drops it and fetches a fresh one once.
	MinTokenLifetime = 30 * time.Second
	// unknownTokenLifetime is assumed when expires_in is absent, zero or
	// negative: conservative, well under the documented lifetime.
	unknownTokenLifetime = 5 * time.Minute
)

// tokenLifetime is how long a token whose answer said expires_in (seconds)
// is cached: unknownTokenLifetime when it is not positive, else expires_in
// within [MinTokenLifetime, MaxTokenLifetime]. The bounds apply in seconds,
// before the conversion, so no claim overflows a time.Duration.
func tokenLifetime(expiresIn float64) time.Duration {
	if !(expiresIn > 0) { // absent, zero, negative (or NaN)
		return unknownTokenLifetime
	}
	secs := min(max(expiresIn, MinTokenLifetime.Seconds()), MaxTokenLifetime.Seconds())
	return time.Duration(secs * float64(time.Second))
}

type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	InstanceID   string `json:"instance_id"`
	GrantType    string `json:"grant_type"`
}

type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"`
}

const (
	opOAuthToken   = "oauth.token"
	oauthTokenPath = "/oauth2/token"
)

// request performs POST /oauth2/token once.
func (a *oauthAuth) request(ctx context.Context) (string, time.Time, error) {
	if a.c.baseErr != nil {
		return "", time.Time{}, fmt.Errorf("wix oauth token: %w", a.c.baseErr)
	}
	body, err := json.Marshal(tokenRequest{
		ClientID: a.creds.AppID, ClientSecret: a.creds.AppSecret,
		InstanceID: a.creds.InstanceID, GrantType: "client_credentials",
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix oauth token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.c.cfg.BaseURL+oauthTokenPath, bytes.NewReader(body))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix oauth token: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	countCall(ctx)
	start := time.Now()
	resp, err := a.c.cfg.HTTPClient.Do(req)
	if err != nil {
		a.c.metrics.request(a.site, opOAuthToken, "error", time.Since(start))
		return "", time.Time{}, fmt.Errorf("wix oauth token (POST %s): %w", oauthTokenPath, err)
	}
	defer resp.Body.Close()
	if isRedirect(resp.StatusCode) {
		// The body named the client secret: it must not travel further.
		a.c.metrics.request(a.site, opOAuthToken, statusLabel(resp.StatusCode), time.Since(start))
		return "", time.Time{}, redirectError(resp, opOAuthToken, http.MethodPost, oauthTokenPath)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	a.c.metrics.request(a.site, opOAuthToken, statusLabel(resp.StatusCode), time.Since(start))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix oauth token (POST %s): read body: %w", oauthTokenPath, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", time.Time{}, parseAPIError(resp.StatusCode, resp.Header, raw, opOAuthToken, http.MethodPost, oauthTokenPath, a.c.now(), a.creds.AppSecret)
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", time.Time{}, fmt.Errorf("wix oauth token: decode response: %w", err)
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("wix oauth token: response without access_token")
	}
	ttl := tokenLifetime(tr.ExpiresIn)
	a.c.log.Debug("wix oauth token fetched", zapSite(a.site), zapDuration("ttl", ttl))
	return tr.AccessToken, a.c.now().Add(ttl), nil
}
