// Package wix is groupflow's production client for the Wix REST APIs it uses:
// Groups, Group Members, Membership Questions, Group Rules, Members, Contacts
// and Email Subscriptions (see https://dev.wix.com/docs/rest).
//
// A Client holds many sites. Each Site has its own credentials (API key or
// app OAuth) and its own rate Limiter (Wix allows about 200 requests per
// minute per site). Every method of Site sends one HTTP request, plus retries
// of transient failures (429, 408, 5xx, timeouts, connection errors) with
// exponential backoff and jitter, bounded by ctx and Config.MaxRetries. Every
// attempt waits on the site's limiter and is counted by the CallCounter in
// ctx (see WithCallCounter). CreateGroup, which is not idempotent, retries only
// 429s and failed connections.
//
// Errors: Wix answers become *APIError, which declares itself permanent for
// 4xx (except 408/429) so that groupflow/internal/failure classifies it;
// input rejected before any call wraps ErrInvalidInput (permanent).
package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/failure"
	"groupflow/internal/netsafe"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultBaseURL              = "https://www.wixapis.com"
	DefaultGroupsPrefix         = "/social-groups-proxy/groups/v2"
	DefaultGroupMembersPrefix   = "/social-groups-proxy/members/v2"
	DefaultQuestionsPrefix      = "/social-groups-proxy/questions/v2"
	DefaultRulesPrefix          = "/social-groups/v2"
	DefaultGroupRequestsPrefix  = "/social-groups/v2"
	LegacyGroupsPrefix          = "/social-groups/v2" // older published spec, same sub-paths
	LegacyGroupMembersPrefix    = "/social-groups/v2"
	DefaultRequestsPerMinute    = 200.0
	DefaultBurst                = 5
	DefaultTimeout              = 30 * time.Second
	DefaultMaxRetries           = 5
	DefaultRetryInitialInterval = 500 * time.Millisecond
	DefaultRetryMaxInterval     = 30 * time.Second
)

// MaxConnsPerHost bounds the default client's connections to the Wix host
// (idle ones kept too). Over HTTP/1.1 a connection carries one call at a
// time: 256 carry thousands of calls a second at Wix's latencies.
const MaxConnsPerHost = 256

// maxBody caps how much of a response body is read.
const maxBody = 32 << 20

// Config configures a Client. Zero fields get the defaults above.
type Config struct {
	// BaseURL of the Wix APIs, default "https://www.wixapis.com".
	BaseURL string
	// GroupsPrefix, default "/social-groups-proxy/groups/v2" (legacy "/social-groups/v2").
	GroupsPrefix string
	// GroupMembersPrefix, default "/social-groups-proxy/members/v2" (legacy "/social-groups/v2").
	GroupMembersPrefix string
	// QuestionsPrefix, default "/social-groups-proxy/questions/v2".
	QuestionsPrefix string
	// RulesPrefix, default "/social-groups/v2".
	RulesPrefix string
	// GroupRequestsPrefix, default "/social-groups/v2": the REST docs' URL
	// (https://www.wixapis.com/social-groups/v2/group-requests); the SDK
	// calls "/_api/social-groups-proxy/group-requests/v2". Unconfirmed on a
	// live site.
	GroupRequestsPrefix string
	// RequestsPerMinute per site for the default limiter, default 200.
	RequestsPerMinute float64
	// Burst of the default limiter, default 5.
	Burst int
	// Timeout of one HTTP attempt (request and body), default 30s.
	Timeout time.Duration
	// MaxRetries of transient errors per call, default 5. Negative means no
	// retries.
	MaxRetries int
	// RetryInitialInterval is the first backoff interval, default 500ms.
	RetryInitialInterval time.Duration
	// RetryMaxInterval caps one backoff interval, default 30s.
	RetryMaxInterval time.Duration
	// HTTPClient sends the requests, default a new client without timeout
	// (Timeout applies per attempt through the context).
	HTTPClient *http.Client
	// Logger receives debug and warning logs; default no-op. The client
	// never logs credentials, tokens or request bodies.
	Logger *zap.Logger
	// Registerer receives the client's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// NewLimiter, if set, makes the limiter of each site added with AddSite
	// (default NewAdaptiveLimiter(RequestsPerMinute, Burst)).
	NewLimiter func(siteID string) Limiter
	// AllowInsecureHTTP accepts an http:// BaseURL on a host other than
	// loopback (e.g. a simulator on a container network). Without it such a
	// base URL fails every call (see ValidateBaseURL).
	AllowInsecureHTTP bool
}

// ValidateBaseURL checks a Wix base URL: https://host[:port][/path], or
// http:// on a loopback host (localhost, 127.0.0.0/8, ::1) or with
// allowInsecureHTTP; no user info, query or fragment. The error wraps
// ErrInvalidInput and never repeats user info.
func ValidateBaseURL(raw string, allowInsecureHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("wix base URL does not parse")
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return invalid("wix base URL %q: want https://host", u.Redacted())
	case u.User != nil:
		return invalid("wix base URL of host %q carries user info: give credentials through WIX_API_KEY or OAuth", u.Host)
	case u.RawQuery != "" || u.Fragment != "":
		return invalid("wix base URL %q: no query or fragment allowed", u.Scheme+"://"+u.Host+u.Path)
	case u.Scheme == "http" && !allowInsecureHTTP && !netsafe.IsLoopbackHost(u.Hostname()):
		return invalid("wix base URL %q is plain http on a non-loopback host (credentials would travel unencrypted): use https, or allow it explicitly (--wix-allow-insecure-http)", u.String())
	}
	return nil
}

// MaxPathPrefixLen bounds an API path prefix (Config.GroupsPrefix and the
// others), in bytes.
const MaxPathPrefixLen = 200

// ValidatePathPrefix checks an API path prefix (e.g. "/social-groups/v2";
// "" is the default): at most MaxPathPrefixLen bytes of letters, digits and
// '/', '_', '-', '.', with no ".." segment. A prefix is joined to the base
// URL as a path (a leading '/' is added), so it cannot name another host;
// this refuses a query, fragment, escape or blank that would make every
// call of that API fail in a way that does not name the setting.
func ValidatePathPrefix(p string) error {
	if len(p) > MaxPathPrefixLen {
		return invalid("path prefix of %d bytes: want at most %d", len(p), MaxPathPrefixLen)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_-.", r)) {
			return invalid("path prefix %q: %q not allowed (letters, digits, '/', '_', '-', '.')", p, r)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return invalid("path prefix %q: no '..' segment", p)
		}
	}
	return nil
}

// noRedirect makes an http.Client return a 3xx answer instead of following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (cfg Config) withDefaults() Config {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&cfg.BaseURL, DefaultBaseURL)
	def(&cfg.GroupsPrefix, DefaultGroupsPrefix)
	def(&cfg.GroupMembersPrefix, DefaultGroupMembersPrefix)
	def(&cfg.QuestionsPrefix, DefaultQuestionsPrefix)
	def(&cfg.RulesPrefix, DefaultRulesPrefix)
	def(&cfg.GroupRequestsPrefix, DefaultGroupRequestsPrefix)
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	for _, p := range []*string{&cfg.GroupsPrefix, &cfg.GroupMembersPrefix, &cfg.QuestionsPrefix, &cfg.RulesPrefix, &cfg.GroupRequestsPrefix} {
		*p = "/" + strings.Trim(*p, "/")
	}
	if cfg.RequestsPerMinute <= 0 {
		cfg.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.RetryInitialInterval <= 0 {
		cfg.RetryInitialInterval = DefaultRetryInitialInterval
	}
	if cfg.RetryMaxInterval <= 0 {
		cfg.RetryMaxInterval = DefaultRetryMaxInterval
	}
	if cfg.HTTPClient == nil {
		// Go's default transport keeps 2 idle connections per host: with many
		// calls in flight to the one Wix host, every other call would pay a
		// new TCP and TLS handshake. Connections are capped too: when
		// thousands of sites' tokens come due at once, calls wait for one of
		// MaxConnsPerHost connections (HTTP/2 multiplexes its streams on
		// them) rather than each dialling its own, only to close it after
		// (a dial costs more CPU than the call, and each connection two
		// goroutines and their buffers).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxConnsPerHost = MaxConnsPerHost
		t.MaxIdleConns = MaxConnsPerHost
		t.MaxIdleConnsPerHost = MaxConnsPerHost
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	// Never follow a redirect, not even with a caller's client: it would
	// re-send the credentials to the host Location names.
	hc := *cfg.HTTPClient
	hc.CheckRedirect = noRedirect
	cfg.HTTPClient = &hc
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// Client calls Wix for many sites. It is safe for concurrent use.
type Client struct {
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	// baseErr is the ValidateBaseURL verdict; when set, every call fails
	// with it before sending anything.
	baseErr error

	// Test hooks.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.RWMutex
	sites   map[string]*Site
	account *account // nil unless UseAccount
}

// New returns a Client for cfg (zero fields get defaults).
func New(cfg Config) *Client {
	cfg = cfg.withDefaults()
	return &Client{
		cfg:     cfg,
		log:     cfg.Logger.Named("wix"),
		metrics: newMetrics(cfg.Registerer),
		baseErr: ValidateBaseURL(cfg.BaseURL, cfg.AllowInsecureHTTP),
		now:     time.Now,
		sleep:   sleepCtx,
		sites:   map[string]*Site{},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// AddSite registers siteID with creds and the default limiter (or
// Config.NewLimiter). Adding a site again replaces its credentials and keeps
// its limiter; Site values obtained before keep the old credentials.
func (c *Client) AddSite(siteID string, creds Credentials) error {
	return c.addSite(siteID, creds, nil)
}

// AddSiteWithLimiter is AddSite with an explicit limiter for the site (for
// example a cluster-wide one).
func (c *Client) AddSiteWithLimiter(siteID string, creds Credentials, l Limiter) error {
	if l == nil {
		return fmt.Errorf("add site %q: nil limiter: %w", siteID, ErrInvalidInput)
	}
	return c.addSite(siteID, creds, l)
}

func (c *Client) addSite(siteID string, creds Credentials, l Limiter) error {
	if strings.TrimSpace(siteID) == "" {
		return invalid("add site: empty site id")
	}
	if err := creds.validate(); err != nil {
		return fmt.Errorf("add site %q: %w", siteID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.sites[siteID]; ok && l == nil {
		l = old.limiter
	}
	c.sites[siteID] = c.newSite(siteID, creds, l)
	return nil
}

// newSite makes a Site with creds and l (nil: Config.NewLimiter or the
// default limiter).
func (c *Client) newSite(siteID string, creds Credentials, l Limiter) *Site {
	if l == nil && c.cfg.NewLimiter != nil {
		l = c.cfg.NewLimiter(siteID)
	}
	if l == nil {
		l = newAdaptiveLimiter(c.cfg.RequestsPerMinute, c.cfg.Burst, time.Now)
	}
	s := &Site{c: c, id: siteID, limiter: l, member: newMemberAuth(c, siteID, creds)}
	if creds.oauth() {
		s.auth = &oauthAuth{c: c, creds: creds, site: siteID}
	} else {
		s.auth = newAPIKeyAuth(creds.APIKey, siteID)
	}
	return s
}

// Site returns the site added under siteID or, in the account-key mode
// (UseAccount), the account site siteID, made on first use. Errors (all
// permanent, none naming a credential) wrap ErrUnknownSite (no such site,
// no account mode), ErrSiteNotAllowed (the allowlist does not match) or
// ErrTooManySites (MaxSites account sites in use).
func (c *Client) Site(siteID string) (*Site, error) {
	c.mu.RLock()
	s, ok := c.sites[siteID]
	acc := c.account
	c.mu.RUnlock()
	switch {
	case ok:
		return s, nil
	case acc != nil:
		return c.accountSite(acc, siteID)
	}
	return nil, fmt.Errorf("site %q: %w", shortID(siteID), ErrUnknownSite)
}

// SiteIDs returns the IDs of all added sites (not the account sites), sorted.
func (c *Client) SiteIDs() []string {
	c.mu.RLock()
	ids := make([]string, 0, len(c.sites))
	for id := range c.sites {
		ids = append(ids, id)
	}
	c.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Site calls Wix for one site. It is safe for concurrent use.
type Site struct {
	c       *Client
	id      string
	auth    authenticator
	limiter Limiter
	// member authenticates the calls that need a site member (a group
	// admin); nil without a member credential. See memberauth.go.
	member authenticator
	stats  siteStats

	// Account sites (registry.go): made on demand, released when idle.
	onDemand bool
	inflight atomic.Int32
	lastUsed atomic.Int64 // unix ns
	evicted  atomic.Bool
}

// ID returns the site ID.
func (s *Site) ID() string { return s.id }

// Limiter returns the site's rate limiter.
func (s *Site) Limiter() Limiter { return s.limiter }

// call describes one API operation.
type call struct {
	op     string // stable endpoint name for metrics, logs and errors
	method string
	path   string // without base URL, IDs already escaped
	query  url.Values
	body   any // JSON-encoded if non-nil
	out    any // JSON-decoded from a 2xx body if non-nil
	// unsafeRetry marks non-idempotent calls (create): they are retried only
	// when the request surely did not reach Wix (429, connection refused).
	unsafeRetry bool
	// member marks the endpoints that need visitor or member
	// authentication (questions, rules, answers): they use the site's
	// member credential when it has one.
	member bool
}

// do runs c with limiter waits, auth, retries and accounting.
func (s *Site) do(ctx context.Context, c call) error {
	var body []byte
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			return failure.Permanent(fmt.Errorf("wix %s: encode request: %w", c.op, err))
		}
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.c.cfg.RetryInitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.c.cfg.RetryMaxInterval,
	}
	bo.Reset()
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	lim := s.limiterNow()
	refreshed := false
	for attempt := 1; ; attempt++ {
		tok, err := s.attempt(ctx, lim, c, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errLimiterWait) {
			return err
		}
		var ae *APIError
		isAPI := errors.As(err, &ae)
		if isAPI && ae.Status == http.StatusUnauthorized && !refreshed && tok != "" && s.authFor(c).invalidate(tok) {
			// The cached OAuth token was revoked or expired early: fetch a
			// new one and try once more, outside the retry budget.
			refreshed = true
			attempt--
			s.c.log.Info("wix token rejected, refreshing", zapSite(s.id), zap.String("op", c.op))
			continue
		}
		if isAPI && ae.Throttled() {
			s.stats.throttled.Add(1)
			s.c.metrics.throttle(s.id)
			lim.Throttled(ae.RetryAfter)
		}
		if failure.IsPermanent(err) || attempt > s.c.cfg.MaxRetries || (c.unsafeRetry && !notSent(err)) {
			return err
		}
		delay := bo.NextBackOff()
		if isAPI && ae.RetryAfter > delay {
			delay = ae.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			// Waiting would outlive the caller: give the transient error
			// back now so that the command is redelivered later.
			return err
		}
		s.c.log.Warn("wix call failed, retrying", zapSite(s.id), zap.String("op", c.op),
			zap.Int("attempt", attempt), zap.Duration("delay", delay), zap.Error(err))
		if serr := s.c.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (gave up retrying: %w)", err, serr)
		}
	}
}

// attempt sends one HTTP request.
func (s *Site) attempt(ctx context.Context, lim Limiter, c call, body []byte) (tok string, err error) {
	if s.c.baseErr != nil {
		return "", fmt.Errorf("wix %s: %w", c.op, s.c.baseErr)
	}
	ctx, span := s.startSpan(ctx, c)
	defer func() { span.end(err) }()
	waitStart := time.Now()
	s.stats.waiting.Add(1)
	err = lim.Wait(ctx)
	s.stats.waiting.Add(-1)
	span.wait = time.Since(waitStart)
	if err != nil {
		return "", fmt.Errorf("wix %s: %w: %w", c.op, errLimiterWait, err)
	}
	s.c.metrics.waited(span.wait)

	actx, cancel := context.WithTimeout(ctx, s.c.cfg.Timeout)
	defer cancel()
	u := s.c.cfg.BaseURL + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, c.method, u, rd)
	if err != nil {
		return "", fmt.Errorf("wix %s: build request: %w", c.op, err)
	}
	// Canonical keys, values shared by every request (read-only: the
	// transport and http.Client only read or copy them).
	req.Header["Accept"] = jsonHeaderValue
	if body != nil {
		req.Header["Content-Type"] = jsonHeaderValue
	}
	tok, err = s.authFor(c).apply(actx, req, s.id)
	if err != nil {
		return "", fmt.Errorf("wix %s: auth: %w", c.op, err)
	}

	countCall(ctx)
	s.stats.calls.Add(1)
	start := time.Now()
	resp, err := s.c.cfg.HTTPClient.Do(req)
	if err != nil {
		s.c.metrics.request(s.id, c.op, "error", time.Since(start))
		return "", fmt.Errorf("wix %s (%s %s): %w", c.op, c.method, c.path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	span.status = resp.StatusCode
	if isRedirect(resp.StatusCode) {
		s.c.metrics.request(s.id, c.op, statusLabel(resp.StatusCode), time.Since(start))
		return tok, redirectError(resp, c.op, c.method, c.path)
	}
	rb := getReadBuf()
	defer putReadBuf(rb)
	_, err = rb.ReadFrom(io.LimitReader(resp.Body, maxBody))
	raw := rb.Bytes() // valid until putReadBuf: nothing decoded from it keeps it
	dur := time.Since(start)
	s.c.metrics.request(s.id, c.op, statusLabel(resp.StatusCode), dur)
	if ce := s.c.log.Check(zap.DebugLevel, "wix call"); ce != nil { // no fields built when debug is off
		ce.Write(zapSite(s.id), zap.String("op", c.op), zap.Int("status", resp.StatusCode), zap.Duration("took", dur))
	}
	if err != nil {
		return tok, fmt.Errorf("wix %s (%s %s): read response: %w", c.op, c.method, c.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The credential sent (API key or token) is never repeated.
		return tok, parseAPIError(resp.StatusCode, resp.Header, raw, c.op, c.method, c.path, s.c.now(), req.Header.Get("Authorization"))
	}
	if c.out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := decode(raw, c.out); err != nil {
			// Not retried: the call succeeded, repeating it cannot help and
			// may repeat a side effect.
			return tok, &decodeError{op: c.op, err: err}
		}
	}
	return tok, nil
}

// wixDecoder is an answer type that decodes itself in one pass: its
// elements' wire forms have no UnmarshalJSON, which encoding/json would
// call on each element's bytes after scanning them, to scan them again.
type wixDecoder interface {
	decodeWix(raw []byte) error
}

// decode decodes a 2xx answer into out.
func decode(raw []byte, out any) error {
	if d, ok := out.(wixDecoder); ok {
		return d.decodeWix(raw)
	}
	return json.Unmarshal(raw, out)
}

// readBufs holds the buffers answers are read into. Decoding copies what it
// keeps (strings, json.RawMessage), and so does parseAPIError, so a buffer
// is reused once its attempt returns; large ones are left to the GC.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledReadBuf = 64 << 10

func getReadBuf() *bytes.Buffer { return readBufs.Get().(*bytes.Buffer) }

func putReadBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledReadBuf {
		b.Reset()
		readBufs.Put(b)
	}
}

// jsonHeaderValue is the Accept and Content-Type of every request.
var jsonHeaderValue = []string{"application/json"}

// errLimiterWait marks a failed limiter wait (ctx done, or a deadline too
// close for the next slot); it is not retried.
var errLimiterWait = errors.New("rate limiter wait")

// decodeError is a 2xx answer whose body cannot be decoded. It is permanent:
// the request succeeded at Wix, so repeating it must not be automatic.
type decodeError struct {
	op  string
	err error
}

func (e *decodeError) Error() string   { return fmt.Sprintf("wix %s: decode response: %v", e.op, e.err) }
func (e *decodeError) Unwrap() error   { return e.err }
func (e *decodeError) Permanent() bool { return true }

// unwrapURLError strips *url.Error, whose message repeats the full URL
// (query strings included); the caller names the endpoint itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
