package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Console sessions: the admin token is typed once into the login form and
// never put in a URL or a page; the browser then holds an opaque session id
// in an HttpOnly, SameSite=Strict cookie. Every state-changing form carries
// the session's CSRF token. Without an admin token (loopback only, see
// Protect) the first visit gets a random session id, and its CSRF token is
// an HMAC of that id under a key of this process (csrfFor): nothing is
// kept, so no number of visits (a hostile page's requests to localhost
// among them) can evict the operator's session.
const (
	sessionCookie = "groupflow_console"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 1000
)

type session struct {
	csrf    string
	expires time.Time
	// bearer marks a request authorised by its Authorization header (no
	// cookie, no CSRF token).
	bearer bool
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
	// key signs the CSRF tokens of sessions kept nowhere (no admin token).
	key []byte
}

func newSessions() *sessions {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return &sessions{m: map[string]*session{}, now: time.Now, key: key}
}

// unkept returns the session of r's cookie without looking it up (no admin
// token: any well-formed id is a session), or nil; fresh opens one when r
// has none, with the id to set in its cookie.
func (ss *sessions) unkept(r *http.Request) (s *session, fresh string) {
	if c, err := r.Cookie(sessionCookie); err == nil && validSessionID(c.Value) {
		return &session{csrf: ss.csrfFor(c.Value)}, ""
	}
	id := randomToken()
	return &session{csrf: ss.csrfFor(id)}, id
}

// csrfFor is the CSRF token of session id id when no session is kept.
func (ss *sessions) csrfFor(id string) string {
	m := hmac.New(sha256.New, ss.key)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:24])
}

// validSessionID is whether id has randomToken's form (48 hex digits).
func validSessionID(id string) bool {
	if len(id) != 48 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// open starts a session, dropping expired ones (and, past maxSessions, the
// one closest to expiry).
func (ss *sessions) open() (id string, s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	var oldestID string
	for k, v := range ss.m {
		if now.After(v.expires) {
			delete(ss.m, k)
		} else if oldestID == "" || v.expires.Before(ss.m[oldestID].expires) {
			oldestID = k
		}
	}
	if len(ss.m) >= maxSessions {
		delete(ss.m, oldestID)
	}
	id, s = randomToken(), &session{csrf: randomToken(), expires: now.Add(sessionTTL)}
	ss.m[id] = s
	return id, s
}

// get returns the live session of r's cookie, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 64 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil || ss.now().After(s.expires) {
		return nil
	}
	return s
}

func (ss *sessions) close(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, c.Value)
		ss.mu.Unlock()
	}
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// tokenMatches compares a typed token with the admin token's hash in constant time.
func tokenMatches(got string, want *[sha256.Size]byte) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// csrfOK reports whether the form's csrf field is the session's token.
func csrfOK(r *http.Request, s *session) bool {
	return s != nil && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) == 1
}
