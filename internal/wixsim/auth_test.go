package wixsim

import (
	"net/http"
	"testing"
	"time"
)

// memberToken exchanges a refresh token at POST /oauth2/token.
func (e *env) memberToken(clientID, refresh string) resp {
	e.t.Helper()
	return e.call("POST", "/oauth2/token", map[string]any{"clientId": clientID, "grantType": "refresh_token", "refreshToken": refresh},
		"Authorization", "", "wix-site-id", "")
}

// In strict mode the member endpoints refuse API keys and app tokens with
// 403 PERMISSION_DENIED, accept a member token for reads, and accept replace
// calls only from an admin of the group; other endpoints are unaffected.
func TestAuthStrictMemberEndpoints(t *testing.T) {
	e := newEnv(t, Options{AuthStrict: true, MemberTokenTTL: time.Minute})
	st := e.srv.Site(testSite)
	admin := st.OwnerID()
	other := st.Members()[5].ID
	g := st.AddGroup("Auth group", "PUBLIC", admin, other)
	q := "/social-groups-proxy/questions/v2/membership-questions/" + g.ID
	rules := "/social-groups/v2/rules/" + g.ID
	rulesBody := map[string]any{"rules": []any{map[string]any{"title": "t", "description": "d"}}}

	app := e.call("POST", "/oauth2/token", map[string]any{"client_id": "app", "client_secret": "s", "instance_id": testSite, "grant_type": "client_credentials"})
	appTok := str(app.body, "access_token")
	for _, c := range []struct {
		name string
		hdr  []string
	}{{"API key", nil}, {"app token", []string{"Authorization", appTok, "wix-site-id", ""}}} {
		for _, call := range []struct{ method, path string }{{"GET", q}, {"PUT", q}, {"POST", q + "/answers"}, {"GET", rules}, {"PUT", rules}} {
			r := e.call(call.method, call.path, rulesBody, c.hdr...)
			if r.status != http.StatusForbidden || str(r.body, "details", "applicationError", "code") != "PERMISSION_DENIED" {
				t.Fatalf("%s %s with the %s: %d %v, want 403 PERMISSION_DENIED", call.method, call.path, c.name, r.status, r.body)
			}
		}
		if r := e.call("GET", "/social-groups-proxy/groups/v2/groups/"+g.ID, nil, c.hdr...); r.status != http.StatusOK {
			t.Fatalf("get group with the %s: %d", c.name, r.status)
		}
	}

	// A member's refresh token: the non-admin may read, not replace.
	rt := e.srv.IssueMemberRefreshToken(testSite, other, "client-1")
	if r := e.memberToken("client-2", rt); r.status != http.StatusBadRequest {
		t.Fatalf("refresh token with the wrong client id: %d", r.status)
	}
	tok := e.memberToken("client-1", rt)
	mtok := str(tok.body, "access_token")
	if tok.status != http.StatusOK || mtok == "" || num(tok.body, "expires_in") != 60 || str(tok.body, "refresh_token") != rt {
		t.Fatalf("member token: %d %v", tok.status, tok.body)
	}
	asOther := []string{"Authorization", mtok, "wix-site-id", ""}
	e.ok("GET", rules, nil, asOther...)
	e.ok("GET", q, nil, asOther...)
	e.ok("POST", q+"/answers", map[string]any{}, asOther...)
	if r := e.call("PUT", rules, rulesBody, asOther...); r.status != http.StatusForbidden {
		t.Fatalf("non-admin replaced rules: %d %v", r.status, r.body)
	}

	// The admin may replace.
	atok := str(e.memberToken("client-1", e.srv.IssueMemberRefreshToken(testSite, admin, "client-1")).body, "access_token")
	asAdmin := []string{"Authorization", atok, "wix-site-id", ""}
	e.ok("PUT", rules, rulesBody, asAdmin...)
	e.ok("PUT", q, map[string]any{"questions": []any{map[string]any{"text": "Why?"}}}, asAdmin...)
	if len(st.Rules(g.ID)) != 1 || len(st.Questions(g.ID)) != 1 {
		t.Fatalf("rules %v questions %v", st.Rules(g.ID), st.Questions(g.ID))
	}

	// Member tokens expire.
	e.clock.Advance(61 * time.Second)
	if r := e.call("GET", rules, nil, asAdmin...); r.status != http.StatusUnauthorized {
		t.Fatalf("expired member token: %d", r.status)
	}

	// Permissive mode (the default) accepts the API key again.
	e.srv.SetAuthStrict(false)
	e.ok("GET", rules, nil)
}

// With RotateRefreshTokens every grant returns a new refresh token and the
// old one stops working.
func TestRefreshTokenRotation(t *testing.T) {
	e := newEnv(t, Options{RotateRefreshTokens: true})
	rt := e.srv.IssueMemberRefreshToken(testSite, e.srv.Site(testSite).OwnerID(), "c")
	r := e.memberToken("c", rt)
	next := str(r.body, "refresh_token")
	if r.status != http.StatusOK || next == "" || next == rt {
		t.Fatalf("grant: %d %v", r.status, r.body)
	}
	if r := e.memberToken("c", rt); r.status != http.StatusBadRequest {
		t.Fatalf("old refresh token still works: %d", r.status)
	}
	if r := e.memberToken("c", next); r.status != http.StatusOK {
		t.Fatalf("rotated refresh token refused: %d", r.status)
	}
}
