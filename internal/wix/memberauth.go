package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Member authentication (see AUTH.md for the evidence).
//
// The Groups SDK documents Membership Questions, Group Rules and List Answers
// as endpoints that "require visitor or member authentication", and only
// group admins may replace questions or rules. A site may therefore carry a
// member credential: a Wix OAuth refresh token of a site member who is a
// group admin, plus the client ID of the OAuth app that issued it. The client
// exchanges it at POST /oauth2/token (grantType refresh_token) for a
// short-lived member access token, caches that token, renews it before expiry
// with one request shared by concurrent callers (the oauthAuth machinery),
// and keeps any new refresh token Wix returns, in memory only: after a
// restart the configured refresh token is used again.

const opMemberToken = "oauth.memberToken"

// MemberCredentialHint says how to configure a member credential for site;
// it ends the reason of every refusal that a member credential would fix.
func MemberCredentialHint(site string) string {
	return "set sites[" + site + "].memberRefreshTokenEnv and memberClientId (one site: WIX_MEMBER_REFRESH_TOKEN and WIX_MEMBER_CLIENT_ID)"
}

// memberCred holds a site's member refresh token, replaced when Wix rotates it.
type memberCred struct {
	c        *Client
	site     string
	clientID string

	mu      sync.Mutex
	refresh string
}

// newMemberAuth returns the member authenticator of creds, or nil when creds
// carry no member credential.
func newMemberAuth(c *Client, site string, creds Credentials) authenticator {
	if !creds.hasMember() {
		return nil
	}
	m := &memberCred{c: c, site: site, clientID: creds.MemberClientID, refresh: creds.MemberRefreshToken}
	return &oauthAuth{c: c, site: site, exchange: m.exchange}
}

// authFor returns the authenticator of call c: the member one for member
// endpoints when the site has it, else the site's API key or app token.
func (s *Site) authFor(c call) authenticator {
	if c.member && s.member != nil {
		return s.member
	}
	return s.auth
}

// HasMemberCredential reports whether the site has a member credential.
func (s *Site) HasMemberCredential() bool { return s.member != nil }

// memberTokenRequest is the refresh-token grant of Wix's Retrieve Tokens
// (POST /oauth2/token); the documented field names are camelCase.
type memberTokenRequest struct {
	ClientID     string `json:"clientId"`
	GrantType    string `json:"grantType"`
	RefreshToken string `json:"refreshToken"`
}

// memberTokenResponse accepts the RFC 6749 names and their camelCase forms
// (which one Wix sends is unconfirmed).
type memberTokenResponse struct {
	AccessToken   string  `json:"access_token"`
	AccessToken2  string  `json:"accessToken"`
	RefreshToken  string  `json:"refresh_token"`
	RefreshToken2 string  `json:"refreshToken"`
	ExpiresIn     float64 `json:"expires_in"`
	ExpiresIn2    float64 `json:"expiresIn"`
}

// exchange trades the current refresh token for a member access token and
// keeps the refresh token Wix sends back, if it differs. A 3xx answer is a
// permanent *RedirectError (never followed); another non-2xx one a
// *memberTokenError.
func (m *memberCred) exchange(ctx context.Context) (string, time.Time, error) {
	m.mu.Lock()
	refresh := m.refresh
	m.mu.Unlock()
	body, err := json.Marshal(memberTokenRequest{ClientID: m.clientID, GrantType: "refresh_token", RefreshToken: refresh})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix member token: %w", err)
	}
	c := m.c
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+oauthTokenPath, bytes.NewReader(body))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix member token: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	countCall(ctx)
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		c.metrics.request(m.site, opMemberToken, "error", time.Since(start))
		return "", time.Time{}, fmt.Errorf("wix member token (POST %s): %w", oauthTokenPath, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if isRedirect(resp.StatusCode) {
		// Like the app token (auth.go): a 3xx means a wrong base URL or a
		// proxy, not a bad refresh token, and retrying gets the same answer,
		// so it is the permanent *RedirectError; the redirect is not
		// followed (it would re-send the refresh token).
		c.metrics.request(m.site, opMemberToken, statusLabel(resp.StatusCode), time.Since(start))
		return "", time.Time{}, redirectError(resp, opMemberToken, http.MethodPost, oauthTokenPath)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.metrics.request(m.site, opMemberToken, statusLabel(resp.StatusCode), time.Since(start))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wix member token (POST %s): read body: %w", oauthTokenPath, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := parseAPIError(resp.StatusCode, resp.Header, raw, opMemberToken, http.MethodPost, oauthTokenPath, c.now(), refresh)
		return "", time.Time{}, &memberTokenError{site: m.site, err: ae}
	}
	var tr memberTokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", time.Time{}, fmt.Errorf("wix member token: decode response: %w", err)
	}
	tok, newRefresh, secs := firstNonEmpty(tr.AccessToken, tr.AccessToken2), firstNonEmpty(tr.RefreshToken, tr.RefreshToken2), max(tr.ExpiresIn, tr.ExpiresIn2)
	if tok == "" {
		return "", time.Time{}, errors.New("wix member token: response without access_token")
	}
	rotated := false
	if newRefresh != "" && newRefresh != refresh {
		m.mu.Lock()
		if m.refresh == refresh {
			m.refresh, rotated = newRefresh, true
		}
		m.mu.Unlock()
	}
	ttl := tokenLifetime(secs)
	c.log.Debug("wix member token fetched", zapSite(m.site), zapDuration("ttl", ttl), zap.Bool("refresh_token_rotated", rotated))
	return tok, c.now().Add(ttl), nil
}

// memberTokenError is a refused refresh-token exchange. It is permanent for
// 4xx (a revoked or wrong refresh token does not heal by retrying) and names
// what to configure; it never contains the token.
type memberTokenError struct {
	site string
	err  *APIError
}

func (e *memberTokenError) Error() string {
	return fmt.Sprintf("Wix refused the member refresh token of site %s (%d %s): issue a new one for a group admin and %s",
		e.site, e.err.Status, e.err.Code, MemberCredentialHint(e.site))
}
func (e *memberTokenError) Unwrap() error   { return e.err }
func (e *memberTokenError) Permanent() bool { return e.err.Permanent() }

// endpointNames are the Wix doc titles of the member endpoints.
var endpointNames = map[string]string{
	OpQuestionsList:    "List Membership Questions",
	OpQuestionsReplace: "Create Or Replace All Membership Questions",
	OpQuestionsAnswers: "List Answers",
	OpRulesList:        "List Rules",
	OpRulesReplace:     "Create Or Replace All Rules",
}

// AuthRefusedError is a 401/403 from a member endpoint (questions, rules,
// answers). Its message is the reason a command reports: which endpoint,
// which site, which credential was refused and what to configure. It is
// permanent and unwraps to the *APIError.
type AuthRefusedError struct {
	// Site and GroupID of the refused call; Endpoint is Wix's name of it.
	Site, GroupID, Endpoint string
	// Credential is what was sent: "API key", "app token" or "member credential".
	Credential string
	// Err is Wix's answer.
	Err *APIError
}

// NeedsMemberCredential reports whether adding a member credential is the fix
// (the call was made with the API key or app token).
func (e *AuthRefusedError) NeedsMemberCredential() bool { return e.Credential != "member credential" }

func (e *AuthRefusedError) Error() string {
	head := fmt.Sprintf("Wix refused %s for site %s with the %s (%d %s)", e.Endpoint, e.Site, e.Credential, e.Err.Status, e.Err.Code)
	if e.NeedsMemberCredential() {
		return head + ": these endpoints need a group admin member's credential; " + MemberCredentialHint(e.Site)
	}
	return head + fmt.Sprintf(": the member must be an admin of group %s", e.GroupID)
}
func (e *AuthRefusedError) Unwrap() error   { return e.Err }
func (e *AuthRefusedError) Permanent() bool { return true }

// doMember runs a call of a member endpoint on groupID and turns an auth
// refusal into an *AuthRefusedError.
func (s *Site) doMember(ctx context.Context, c call, groupID string) error {
	c.member = true
	err := s.do(ctx, c)
	var ae *APIError
	if err == nil || !errors.As(err, &ae) || ae.Op != c.op || (ae.Status != http.StatusForbidden && ae.Status != http.StatusUnauthorized) {
		return err
	}
	cred := "API key"
	switch {
	case s.member != nil:
		cred = "member credential"
	case s.auth != nil:
		if _, ok := s.auth.(*oauthAuth); ok {
			cred = "app token"
		}
	}
	return &AuthRefusedError{Site: s.id, GroupID: groupID, Endpoint: endpointNames[c.op], Credential: cred, Err: ae}
}
