package admin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"groupflow/internal/dlq"
	"groupflow/internal/netsafe"
)

// The ops console: server-rendered pages under /console/ (overview, DLQ,
// one dead letter, one command), behind the admin token when one is set
// (see console_auth.go). Every value shown comes from commands, Wix or the
// DLQ and is untrusted: html/template escapes it for its context, ids travel
// only in query strings, and the pages run under a CSP that allows only the
// console's own embedded CSS and script (no inline code, no other origin).

//go:embed console
var consoleFS embed.FS

// maxFormBytes bounds a console form post.
const maxFormBytes = 16 << 10

type console struct {
	s     *Server
	src   ConsoleSources
	sess  *sessions
	pages map[string]*template.Template
	log   *zap.Logger
	now   func() time.Time
	// logins bounds sign-in attempts (a token guesser gets 429s).
	logins *loginThrottle
}

// loginThrottle bounds sign-in attempts per client address (10, then one
// per 6 s), so a guesser cannot lock the operator out from elsewhere, and in
// all (100, then 100 a minute) against guessers at many addresses.
type loginThrottle struct {
	mu     sync.Mutex
	per    map[string]*rate.Limiter
	global *rate.Limiter
}

// maxLoginClients bounds the addresses tracked (then all start afresh).
const maxLoginClients = 4096

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{per: map[string]*rate.Limiter{}, global: rate.NewLimiter(rate.Every(600*time.Millisecond), 100)}
}

// allow reports whether the client at remoteAddr may try to sign in now.
func (t *loginThrottle) allow(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.per[host]
	if l == nil {
		if len(t.per) >= maxLoginClients {
			clear(t.per)
		}
		l = rate.NewLimiter(rate.Every(6*time.Second), 10)
		t.per[host] = l
	}
	return l.Allow() && t.global.Allow()
}

// MountConsole serves the ops console at /console/ (and redirects / there).
// Call it before Start.
func (s *Server) MountConsole(src ConsoleSources) {
	c := &console{s: s, src: src, sess: newSessions(), pages: parsePages(), log: s.log.Named("console"), now: time.Now,
		logins: newLoginThrottle()}
	toConsole := func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/console/", http.StatusFound) }
	s.mux.HandleFunc("GET /{$}", toConsole)
	s.mux.HandleFunc("GET /console", toConsole)
	static, _ := fs.Sub(consoleFS, "console/static")
	s.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /console/login", c.loginForm)
	s.mux.HandleFunc("POST /console/login", c.login)
	s.mux.HandleFunc("POST /console/logout", c.guard(c.logout))
	s.mux.HandleFunc("GET /console/{$}", c.guard(c.overview))
	s.mux.HandleFunc("GET /console/command", c.guard(c.command))
	s.mux.HandleFunc("GET /console/dlq", c.guard(c.dlqList))
	s.mux.HandleFunc("GET /console/dlq/{seq}", c.guard(c.dlqShow))
	s.mux.HandleFunc("POST /console/dlq/{seq}/replay", c.guard(c.dlqReplay))
	s.mux.HandleFunc("POST /console/dlq/{seq}/purge", c.guard(c.dlqPurgeOne))
	s.mux.HandleFunc("POST /console/dlq/purge", c.guard(c.dlqPurge))
}

// securityHeaders are set on every console page.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

type consoleHandler func(w http.ResponseWriter, r *http.Request, sess *session)

// guard admits a request with a console session, or with the admin token as
// a bearer header (API clients; a browser never sends it cross-site, so no
// CSRF token is needed then); a POST from a session must carry its CSRF
// token. A POST's form (at most maxFormBytes) is parsed here, for the
// handlers' r.PostForm. Without an admin token a session is opened on the
// first GET.
func (c *console) guard(h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		tokenSet := c.s.tokenSum != nil
		if !tokenSet && !netsafe.IsLoopbackHostHeader(r.Host) {
			// Without a token the console trusts loopback only; a page of
			// another name resolving to 127.0.0.1 (DNS rebinding) is refused.
			http.Error(w, "the console without an admin token answers only to localhost, 127.0.0.1 or [::1]", http.StatusForbidden)
			return
		}
		var sess *session
		fresh := ""
		if tokenSet {
			sess = c.sess.get(r)
		} else {
			sess, fresh = c.sess.unkept(r)
		}
		switch {
		case sess != nil && fresh == "":
		case tokenSet && bearerMatches(r, c.s.tokenSum):
			sess = &session{bearer: true}
		case tokenSet && r.Method == http.MethodGet:
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		case tokenSet:
			http.Error(w, "not signed in to the console", http.StatusUnauthorized)
			return
		case r.Method != http.MethodGet:
			http.Error(w, "console session expired: reload the page", http.StatusForbidden)
			return
		default:
			setSessionCookie(w, r, fresh, int(sessionTTL/time.Second))
		}
		if r.Method == http.MethodPost {
			// Parsed here for every POST (the handlers read r.PostForm): a
			// bearer request has no CSRF check to parse it on the way.
			if err := r.ParseForm(); err != nil {
				http.Error(w, fmt.Sprintf("unreadable form (at most %d bytes)", maxFormBytes), http.StatusBadRequest)
				return
			}
		}
		if r.Method == http.MethodPost && !sess.bearer && !csrfOK(r, sess) {
			http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	}
}

func (c *console) loginForm(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if c.s.tokenSum == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", page{Title: "Sign in"})
}

// login checks the typed admin token and opens a session.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if c.s.tokenSum == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	if !c.logins.allow(r.RemoteAddr) {
		http.Error(w, "too many sign-in attempts: wait a minute", http.StatusTooManyRequests)
		return
	}
	if !tokenMatches(strings.TrimSpace(r.PostFormValue("token")), c.s.tokenSum) {
		c.log.Warn("console sign-in refused: wrong token", zap.String("remote", r.RemoteAddr))
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "Wrong admin token."})
		return
	}
	id, _ := c.sess.open()
	setSessionCookie(w, r, id, int(sessionTTL/time.Second))
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	c.sess.close(r)
	setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// page is what every template gets.
type page struct {
	Title, Nav string
	CSRF       string
	SignedIn   bool
	Notice     string
	Error      string
	Data       any
}

func (c *console) page(sess *session, title, nav string, data any) page {
	return page{Title: title, Nav: nav, CSRF: sess.csrf, SignedIn: c.s.tokenSum != nil && !sess.bearer, Data: data}
}

func (c *console) render(w http.ResponseWriter, status int, name string, p page) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.log.Warn("console render", zap.String("page", name), zap.Error(err))
	}
}

// fail renders an error page; the error text is escaped like any value.
func (c *console) fail(w http.ResponseWriter, sess *session, status int, what string, err error) {
	p := c.page(sess, "Error", "", nil)
	p.Error = what + ": " + err.Error()
	c.render(w, status, "error", p)
}

func seqParam(r *http.Request) (uint64, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return 0, errors.New("not a dead-letter sequence")
	}
	return seq, nil
}

// ctx bounds one console request's reads.
func (c *console) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 20*time.Second)
}

var errNoDLQ = errors.New("no DLQ store mounted")

func (c *console) store() (*dlq.Store, error) {
	if c.src.DLQ == nil {
		return nil, errNoDLQ
	}
	return c.src.DLQ, nil
}

// parsePages parses the layout with each page's content template.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"clip": func(s string, n int) string {
			r := []rune(s)
			if len(r) <= n {
				return s
			}
			return string(r[:n-1]) + "…"
		},
	}
	layout := template.Must(template.New("layout").Funcs(funcs).ParseFS(consoleFS, "console/layout.tmpl"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "overview", "dlq", "dlqshow", "confirm", "command"} {
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(consoleFS, "console/"+name+".tmpl"))
	}
	return pages
}
