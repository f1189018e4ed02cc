package wixsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"groupflow/internal/sitematch"
)

// DefaultRatePerMinute is Wix's documented budget: 200 requests per minute per
// app instance (site).
const DefaultRatePerMinute = 200

// DemoSiteID is a site id the command-line simulator seeds at start.
const DemoSiteID = "5f1c3a52-7d1e-4c1b-9a0e-000000000001"

// tokenPrefix marks OAuth access tokens issued by the simulator.
const tokenPrefix = "OAUTH2."

// Options configure a Server.
type Options struct {
	// Members and Groups seeded per site: 0 means the default (1000 and 50),
	// a negative number means none.
	Members, Groups int
	// Seed of the deterministic data (default 1). Each site mixes in its id.
	Seed int64
	// RatePerMinute is the per-site token bucket rate; 0 (or negative) means
	// unlimited. Wix's documented budget is DefaultRatePerMinute.
	RatePerMinute float64
	// Burst is the bucket size; 0 means max(1, RatePerMinute).
	Burst int
	// RetryAfter adds a Retry-After header (seconds) to throttled responses.
	RetryAfter bool
	// TokenTTL is the lifetime of OAuth access tokens (default 4h, like Wix).
	TokenTTL time.Duration
	// AuthStrict refuses API keys and app tokens on the endpoints that
	// need member authentication (see auth.go); default off.
	AuthStrict bool
	// MemberTokenTTL is the lifetime of member access tokens (default 4h).
	MemberTokenTTL time.Duration
	// RotateRefreshTokens makes every refresh-token grant answer with a new
	// refresh token and retire the old one (whether Wix does is unconfirmed).
	RotateRefreshTokens bool
	// Logger receives request logs at debug level (default: no logging).
	Logger *zap.Logger
	// StateFile, when set, is loaded at start if it exists, and written by
	// Save and Close.
	StateFile string
	// Modes are the optional live-site behaviours of every site (default:
	// all off); Site.SetModes changes one site's.
	Modes Modes
	// Now is the clock (default time.Now). Tests pass a fake clock to expire
	// tokens and freeze the rate limiter without sleeping.
	Now func() time.Time
	// Sites are the site ids served (each seeded on first use), besides those
	// of the StateFile and those added with AddSite, Site or
	// PUT /_sim/sites/{site}. A request for any other site is refused with
	// 403 PERMISSION_DENIED and creates nothing, so unknown ids cannot grow
	// the simulator's memory.
	Sites []string
	// SitesPattern, when set, also serves every site id it matches (package
	// sitematch: anchored globs), made and seeded on its first request, up
	// to MaxSites sites in all (then 403, as for an unknown site): enough
	// for a bench of thousands of sites without listing them.
	SitesPattern *sitematch.Pattern
	// MaxSites bounds the sites SitesPattern makes (default 10,000).
	MaxSites int
}

// DefaultMaxSites is the default of Options.MaxSites.
const DefaultMaxSites = 10_000

// siteEntry is a site plus its rate limiter and statistics.
type siteEntry struct {
	once    sync.Once
	site    *Site
	limiter *rate.Limiter

	statMu    sync.Mutex
	calls     map[string]int64
	total     int64
	throttled int64
	ring      []RequestLog
	ringNext  int
}

const ringSize = 1000

type tokenInfo struct {
	site    string
	expires time.Time
}

// Server is the simulator. Create it with New; serve it with Handler or Start.
type Server struct {
	opts Options
	log  *zap.Logger
	now  func() time.Time

	mu         sync.Mutex
	sites      map[string]*siteEntry
	tokens     map[string]tokenInfo
	perMinute  float64
	burst      int
	retryAfter bool
	loaded     map[string]*siteSnapshot // from StateFile, consumed on first use

	// Member auth (auth.go).
	refreshTokens map[string]memberGrant
	memberTokens  map[string]memberGrant
	authStrict    atomic.Bool

	faults   atomic.Pointer[faultState]
	handler  http.Handler
	api      *http.ServeMux
	closing  chan struct{}
	closeOne sync.Once
	httpSrv  *http.Server
	saveMu   sync.Mutex
}

// New creates a server. It loads Options.StateFile when that file exists;
// a malformed state file is logged and ignored.
func New(opts Options) *Server {
	if opts.Members == 0 {
		opts.Members = 1000
	}
	if opts.Groups == 0 {
		opts.Groups = 50
	}
	opts.Members, opts.Groups = max(opts.Members, 0), max(opts.Groups, 0)
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 4 * time.Hour
	}
	if opts.MemberTokenTTL <= 0 {
		opts.MemberTokenTTL = 4 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSites <= 0 {
		opts.MaxSites = DefaultMaxSites
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		sites:   map[string]*siteEntry{},
		tokens:  map[string]tokenInfo{},
		closing: make(chan struct{}),

		refreshTokens: map[string]memberGrant{},
		memberTokens:  map[string]memberGrant{},
	}
	s.authStrict.Store(opts.AuthStrict)
	s.perMinute, s.burst, s.retryAfter = opts.RatePerMinute, opts.Burst, opts.RetryAfter
	for _, id := range opts.Sites {
		if id = strings.TrimSpace(id); id != "" {
			s.AddSite(id)
		}
	}
	s.faults.Store(&faultState{})
	if opts.StateFile != "" {
		if err := s.load(opts.StateFile); err != nil {
			s.log.Warn("wixsim: state file not loaded", zap.String("file", opts.StateFile), zap.Error(err))
		}
	}
	s.api = http.NewServeMux()
	s.routes()
	control := s.controlMux()
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			control.ServeHTTP(w, r)
			return
		}
		if _, pattern := s.api.Handler(r); pattern == "" {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "no such endpoint: " + r.Method + " " + r.URL.Path, "details": map[string]any{}})
			return
		}
		s.api.ServeHTTP(w, r)
	})
	return s
}

// Handler returns the HTTP handler serving the Wix APIs and /_sim/ control
// endpoints.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL, e.g. "http://127.0.0.1:40123".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.httpSrv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("wixsim: serve", zap.Error(err))
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close releases hanging requests, stops the listener started by Start and
// saves the state file when one is configured. It is safe to call twice.
func (s *Server) Close() error {
	var err error
	s.closeOne.Do(func() {
		close(s.closing)
		s.mu.Lock()
		srv := s.httpSrv
		s.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if e := srv.Shutdown(ctx); e != nil {
				_ = srv.Close()
			}
			cancel()
		}
		if s.opts.StateFile != "" {
			err = s.Save()
		}
	})
	return err
}

// AddSite makes the simulator serve siteID (seeded on first use; a no-op for
// a site it already serves).
func (s *Server) AddSite(siteID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[siteID]; !ok {
		s.sites[siteID] = &siteEntry{calls: map[string]int64{}, limiter: s.newLimiterLocked()}
	}
}

// lookup returns the entry of a site the simulator serves (configured, added
// or in the state file), seeding it on first use, or nil for any other site:
// a request naming an unknown site creates nothing.
func (s *Server) lookup(siteID string) *siteEntry {
	s.mu.Lock()
	_, known := s.sites[siteID]
	_, saved := s.loaded[siteID]
	s.mu.Unlock()
	if !known && !saved && !s.patternSite(siteID) {
		return nil
	}
	return s.entry(siteID)
}

// patternSite adds siteID if SitesPattern matches it and MaxSites allows.
func (s *Server) patternSite(siteID string) bool {
	if !s.opts.SitesPattern.Match(siteID) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[siteID]; ok {
		return true
	}
	if len(s.sites) >= s.opts.MaxSites {
		return false
	}
	s.sites[siteID] = &siteEntry{calls: map[string]int64{}, limiter: s.newLimiterLocked()}
	return true
}

// unknownSite is the answer to a request for a site the simulator does not
// serve. Wix documents 403 Forbidden for a site-level call whose wix-site-id
// is missing or not owned by the API key's account ("site-level calls only
// work with API keys that belong to the account that owns the site"); the
// exact body and applicationError code are UNCONFIRMED.
func unknownSite() *apiError {
	return appError(http.StatusForbidden, "PERMISSION_DENIED", "the API key has no access to the site named by wix-site-id")
}

// entry returns the site entry, creating and seeding the site on first use.
// Only explicit configuration (AddSite, Site, the state file) reaches it for
// a new site; requests go through lookup.
func (s *Server) entry(siteID string) *siteEntry {
	s.mu.Lock()
	e, ok := s.sites[siteID]
	if !ok {
		e = &siteEntry{calls: map[string]int64{}, limiter: s.newLimiterLocked()}
		s.sites[siteID] = e
	}
	snap := s.loaded[siteID]
	delete(s.loaded, siteID)
	s.mu.Unlock()
	e.once.Do(func() {
		st := newSite(siteID, s.opts.Seed, s.now)
		st.mu.Lock()
		st.modes = s.opts.Modes
		if snap != nil {
			st.restoreLocked(snap)
		} else {
			t0 := time.Now()
			st.seedLocked(s.opts.Members, s.opts.Groups)
			s.log.Debug("wixsim: seeded site", zap.String("site", siteID), zap.Int("members", s.opts.Members),
				zap.Int("groups", s.opts.Groups), zap.Duration("took", time.Since(t0)))
		}
		st.mu.Unlock()
		e.site = st
	})
	return e
}

// Site returns the site with the given id, adding it (see AddSite) and
// seeding it on first use. It is the Go API of tests and tools configuring
// their sites; HTTP requests never create a site.
func (s *Server) Site(siteID string) *Site { return s.entry(siteID).site }

// SiteCount returns how many sites the simulator holds.
func (s *Server) SiteCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sites)
}

// SiteIDs returns the ids of the sites created so far.
func (s *Server) SiteIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sites))
	for id := range s.sites {
		out = append(out, id)
	}
	return out
}

// ---- rate limit ----

func (s *Server) newLimiterLocked() *rate.Limiter {
	if s.perMinute <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(s.perMinute/60), s.burstLocked())
}

func (s *Server) burstLocked() int {
	if s.burst > 0 {
		return s.burst
	}
	return max(1, int(math.Round(s.perMinute)))
}

// SetRateLimit changes the per-site rate (requests per minute; 0 = unlimited)
// and burst (0 = the rate) of every site, refilling their buckets.
func (s *Server) SetRateLimit(perMinute float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perMinute, s.burst = perMinute, burst
	for _, e := range s.sites {
		e.limiter = s.newLimiterLocked()
	}
}

// SetRetryAfter switches the Retry-After header on throttled responses.
func (s *Server) SetRetryAfter(on bool) {
	s.mu.Lock()
	s.retryAfter = on
	s.mu.Unlock()
}

// allow takes a token from the site's bucket; it returns the suggested wait
// when the bucket is empty.
func (s *Server) allow(e *siteEntry) (bool, time.Duration) {
	s.mu.Lock()
	lim := e.limiter
	s.mu.Unlock()
	now := s.now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Minute
	}
	d := res.DelayFrom(now)
	if d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// ---- OAuth tokens ----

func (s *Server) issueToken(siteID string) (string, time.Duration) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := tokenPrefix + hex.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = tokenInfo{site: siteID, expires: now.Add(s.opts.TokenTTL)}
	return tok, s.opts.TokenTTL
}

// authenticate resolves the site of a request: an OAuth token carries its
// site; an API key needs wix-site-id.
func (s *Server) authenticate(r *http.Request) (string, *apiError) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	auth = strings.TrimSpace(strings.TrimPrefix(auth, "Bearer "))
	if auth == "" {
		return "", appError(http.StatusUnauthorized, "UNAUTHENTICATED", "missing Authorization header")
	}
	if strings.HasPrefix(auth, tokenPrefix) {
		s.mu.Lock()
		t, ok := s.tokens[auth]
		s.mu.Unlock()
		if !ok {
			return "", appError(http.StatusUnauthorized, "UNAUTHENTICATED", "invalid access token")
		}
		if !s.now().Before(t.expires) {
			return "", appError(http.StatusUnauthorized, "UNAUTHENTICATED", "access token expired")
		}
		return t.site, nil
	}
	site := strings.TrimSpace(r.Header.Get("wix-site-id"))
	if site == "" {
		return "", appError(http.StatusForbidden, "PERMISSION_DENIED", "wix-site-id header is required for site-level APIs")
	}
	return site, nil
}

// ---- statistics ----

func (e *siteEntry) record(l RequestLog, counted, throttled bool) {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	if counted {
		e.calls[l.Op]++
		e.total++
	}
	if throttled {
		e.throttled++
	}
	if len(e.ring) < ringSize {
		e.ring = append(e.ring, l)
	} else {
		e.ring[e.ringNext] = l
	}
	e.ringNext = (e.ringNext + 1) % ringSize
}

func (s *Server) existing(siteID string) *siteEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sites[siteID]
}

// Calls returns, per operation name (e.g. "groups.create", "members.query"),
// the requests of a site that passed authentication and the rate limiter
// (injected faults other than 429 bursts included). Throttled requests are
// counted separately by Throttled.
func (s *Server) Calls(siteID string) map[string]int64 {
	out := map[string]int64{}
	if e := s.existing(siteID); e != nil {
		e.statMu.Lock()
		for k, v := range e.calls {
			out[k] = v
		}
		e.statMu.Unlock()
	}
	return out
}

// TotalCalls is the sum of Calls(siteID).
func (s *Server) TotalCalls(siteID string) int64 {
	if e := s.existing(siteID); e != nil {
		e.statMu.Lock()
		defer e.statMu.Unlock()
		return e.total
	}
	return 0
}

// Throttled returns how many requests of a site got a 429 (rate limiter or
// injected 429 burst).
func (s *Server) Throttled(siteID string) int64 {
	if e := s.existing(siteID); e != nil {
		e.statMu.Lock()
		defer e.statMu.Unlock()
		return e.throttled
	}
	return 0
}

// ResetCalls clears all counters and request logs.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	entries := make([]*siteEntry, 0, len(s.sites))
	for _, e := range s.sites {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	for _, e := range entries {
		e.statMu.Lock()
		e.calls, e.total, e.throttled, e.ring, e.ringNext = map[string]int64{}, 0, 0, nil, 0
		e.statMu.Unlock()
	}
}

// RecentRequests returns up to n of the latest requests of a site (oldest
// first), including throttled and faulted ones. At most 1000 are kept.
func (s *Server) RecentRequests(siteID string, n int) []RequestLog {
	e := s.existing(siteID)
	if e == nil || n <= 0 {
		return nil
	}
	e.statMu.Lock()
	defer e.statMu.Unlock()
	var all []RequestLog
	if len(e.ring) < ringSize {
		all = e.ring
	} else {
		all = append(append([]RequestLog{}, e.ring[e.ringNext:]...), e.ring[:e.ringNext]...)
	}
	if n > len(all) {
		n = len(all)
	}
	return append([]RequestLog(nil), all[len(all)-n:]...)
}

// ---- request pipeline ----

// apiHandler serves one operation for one site; a nil error means 200 + v.
type apiHandler func(st *Site, r *http.Request) (any, *apiError)

// handle registers h for method and each path under the operation name op.
func (s *Server) handle(method, op string, h apiHandler, paths ...string) {
	hf := func(w http.ResponseWriter, r *http.Request) { s.serve(op, h, w, r) }
	for _, p := range paths {
		s.api.HandleFunc(method+" "+p, hf)
	}
}

func (s *Server) serve(op string, h apiHandler, w http.ResponseWriter, r *http.Request) {
	start := s.now()
	l := RequestLog{Time: start, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Op: op}
	logDone := func(status int) {
		s.log.Debug("wixsim request", zap.String("op", op), zap.String("method", r.Method),
			zap.String("path", r.URL.Path), zap.Int("status", status))
	}
	siteID, id, aerr := s.identify(r)
	if aerr != nil {
		writeJSON(w, aerr.status, aerr.body)
		logDone(aerr.status)
		return
	}
	e := s.lookup(siteID)
	if e == nil {
		aerr := unknownSite()
		writeJSON(w, aerr.status, aerr.body)
		logDone(aerr.status)
		return
	}
	if ok, wait := s.allow(e); !ok {
		s.throttle(w, wait)
		l.Status = http.StatusTooManyRequests
		e.record(l, false, true)
		logDone(l.Status)
		return
	}
	fs := s.faults.Load()
	if fs.applies(op) && fs.take429(s.now()) {
		s.throttle(w, time.Second)
		l.Status = http.StatusTooManyRequests
		e.record(l, false, true)
		logDone(l.Status)
		return
	}
	status, handled := s.injectFaults(fs, op, w, r)
	if handled {
		l.Status = status
		e.record(l, true, status == http.StatusTooManyRequests)
		logDone(status)
		return
	}
	v, herr := any(nil), s.authorize(op, e.site, id, r)
	if herr == nil {
		v, herr = h(e.site, r)
	}
	if herr != nil {
		writeJSON(w, herr.status, herr.body)
		l.Status = herr.status
	} else {
		writeJSON(w, http.StatusOK, v)
		l.Status = http.StatusOK
	}
	e.record(l, true, false)
	logDone(l.Status)
}

func (s *Server) throttle(w http.ResponseWriter, wait time.Duration) {
	s.mu.Lock()
	ra := s.retryAfter
	s.mu.Unlock()
	if ra {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	e := errTooManyRequests()
	writeJSON(w, e.status, e.body)
}
