package wixsim

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Auth model (see internal/wix/AUTH.md for the evidence).
//
// Every request has an identity: an API key (Authorization + wix-site-id),
// an app (an access token from the client-credentials grant) or a site
// member (an access token from the refresh-token grant of a member refresh
// token, see IssueMemberRefreshToken). The Groups SDK documents Membership
// Questions, Group Rules and List Answers as endpoints that "require visitor
// or member authentication", and only group admins may replace questions or
// rules. In strict mode (Options.AuthStrict, SetAuthStrict, wixsim
// --auth-strict) the simulator enforces that:
//
//   - questions.list, questions.listAnswers, rules.list: member tokens only;
//   - questions.replace, rules.replace: member tokens of an ADMIN of the group;
//
// and refuses anything else with 403 PERMISSION_DENIED (the status and code
// Wix uses for a caller without the permission; unconfirmed for these
// endpoints). Every other endpoint accepts all three identities. Strict mode
// is off by default, so `make run` and the README walkthrough work with an
// API key alone.

// memberTokenPrefix marks member access tokens (a subset of tokenPrefix).
const memberTokenPrefix = tokenPrefix + "M."

// refreshTokenPrefix marks member refresh tokens issued by the simulator.
const refreshTokenPrefix = "RT."

// identityKind is who made a request.
type identityKind int

const (
	identityAPIKey identityKind = iota
	identityApp
	identityMember
)

// identity is the caller of one request.
type identity struct {
	kind     identityKind
	memberID string // identityMember only
}

// memberGrant is what a member refresh or access token stands for.
type memberGrant struct {
	site, memberID, clientID string
	expires                  time.Time // access tokens only
}

// authStrictOps are the operations that need member authentication; the
// value says whether the member must be an admin of the {groupId} group.
var authStrictOps = map[string]bool{
	"questions.list":        false,
	"questions.listAnswers": false,
	"rules.list":            false,
	"questions.replace":     true,
	"rules.replace":         true,
}

// SetAuthStrict switches strict member authentication (see the package auth
// model) on or off.
func (s *Server) SetAuthStrict(on bool) { s.authStrict.Store(on) }

// AuthStrict reports whether strict member authentication is on.
func (s *Server) AuthStrict() bool { return s.authStrict.Load() }

// IssueMemberRefreshToken stands in for a member logging in through a Wix
// OAuth app: it returns a refresh token of memberID on siteID for clientID,
// which POST /oauth2/token (grantType refresh_token) exchanges for member
// access tokens.
func (s *Server) IssueMemberRefreshToken(siteID, memberID, clientID string) string {
	rt := refreshTokenPrefix + randomHex()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshTokens[rt] = memberGrant{site: siteID, memberID: memberID, clientID: clientID}
	return rt
}

func randomHex() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refreshGrant answers the refresh-token grant of POST /oauth2/token:
// {clientId, grantType: refresh_token, refreshToken} → {access_token,
// refresh_token, token_type, expires_in}. With Options.RotateRefreshTokens the
// answer carries a new refresh token and the old one stops working.
func (s *Server) refreshGrant(w http.ResponseWriter, clientID, refresh string) {
	now := s.now()
	s.mu.Lock()
	g, ok := s.refreshTokens[refresh]
	if !ok || g.clientID != clientID {
		s.mu.Unlock()
		e := appError(http.StatusBadRequest, "INVALID_GRANT", "invalid refresh token")
		writeJSON(w, e.status, e.body)
		return
	}
	for k, t := range s.memberTokens {
		if now.After(t.expires) {
			delete(s.memberTokens, k)
		}
	}
	tok := memberTokenPrefix + randomHex()
	ttl := s.opts.MemberTokenTTL
	s.memberTokens[tok] = memberGrant{site: g.site, memberID: g.memberID, clientID: clientID, expires: now.Add(ttl)}
	if s.opts.RotateRefreshTokens {
		delete(s.refreshTokens, refresh)
		refresh = refreshTokenPrefix + randomHex()
		s.refreshTokens[refresh] = g
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "refresh_token": refresh,
		"token_type": "Bearer", "expires_in": int(ttl.Seconds())})
}

// identify resolves the site and the identity of a request.
func (s *Server) identify(r *http.Request) (string, identity, *apiError) {
	auth := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.Header.Get("Authorization")), "Bearer "))
	if strings.HasPrefix(auth, memberTokenPrefix) {
		s.mu.Lock()
		t, ok := s.memberTokens[auth]
		s.mu.Unlock()
		switch {
		case !ok:
			return "", identity{}, appError(http.StatusUnauthorized, "UNAUTHENTICATED", "invalid access token")
		case !s.now().Before(t.expires):
			return "", identity{}, appError(http.StatusUnauthorized, "UNAUTHENTICATED", "access token expired")
		}
		return t.site, identity{kind: identityMember, memberID: t.memberID}, nil
	}
	site, err := s.authenticate(r)
	if err != nil {
		return "", identity{}, err
	}
	if strings.HasPrefix(auth, tokenPrefix) {
		return site, identity{kind: identityApp}, nil
	}
	return site, identity{kind: identityAPIKey}, nil
}

// authorize applies strict member authentication to one request; nil means
// the handler may run (a missing group is left to the handler's 404).
func (s *Server) authorize(op string, st *Site, id identity, r *http.Request) *apiError {
	adminOnly, ok := authStrictOps[op]
	if !ok || !s.authStrict.Load() {
		return nil
	}
	if id.kind != identityMember {
		who := "an API key"
		if id.kind == identityApp {
			who = "an app token"
		}
		return appError(http.StatusForbidden, "PERMISSION_DENIED",
			"This endpoint requires visitor or member authentication; the request was made with "+who)
	}
	if !adminOnly {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, found := st.groupByID[r.PathValue("groupId")]
	if !found {
		return nil
	}
	if m, in := g.index[id.memberID]; !in || m.Role != "ADMIN" {
		return appError(http.StatusForbidden, "PERMISSION_DENIED", "Only group admins can create or replace rules and membership questions")
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// memberRefreshTokenControl serves POST /_sim/member-refresh-token
// {site, memberId?, clientId}: a refresh token for memberId (default the
// site owner, an admin of the groups created with an API key).
func (s *Server) memberRefreshTokenControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Site     string `json:"site"`
		MemberID string `json:"memberId"`
		ClientID string `json:"clientId"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeJSON(w, e.status, e.body)
		return
	}
	if req.Site == "" || req.ClientID == "" {
		e := badRequest("site and clientId are required")
		writeJSON(w, e.status, e.body)
		return
	}
	if req.MemberID == "" {
		req.MemberID = s.Site(req.Site).OwnerID()
	}
	writeJSON(w, http.StatusOK, map[string]any{"refreshToken": s.IssueMemberRefreshToken(req.Site, req.MemberID, req.ClientID), "memberId": req.MemberID})
}

// authControl serves PUT /_sim/auth {strict}.
func (s *Server) authControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Strict bool `json:"strict"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeJSON(w, e.status, e.body)
		return
	}
	s.SetAuthStrict(req.Strict)
	writeJSON(w, http.StatusOK, map[string]any{"strict": req.Strict})
}
