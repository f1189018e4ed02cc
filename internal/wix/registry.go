package wix

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"groupflow/internal/sitematch"
)

// Defaults of AccountSites.
const (
	DefaultMaxSites      = 1000
	DefaultSiteIdleAfter = 10 * time.Minute
)

// ErrSiteNotAllowed is returned (wrapped) by Client.Site, in the account-key
// mode, for a site neither added nor matching the allowlist. It is permanent.
var ErrSiteNotAllowed error = permanentSentinel("wix: site not allowed")

// ErrTooManySites is returned (wrapped) by Client.Site, in the account-key
// mode, when MaxSites account sites are already in use. It is permanent: the
// command is dead-lettered (replay it once sites are released).
var ErrTooManySites error = permanentSentinel("wix: too many sites")

// AccountSites is the account-key mode of a Client (see UseAccount). Wix API
// keys are made at account level and work for every site of the account: a
// site-level call names its site with the wix-site-id header
// (Wix, "Make REST API Calls with an API Key": "Site-level calls only work
// with API keys that belong to the account that owns the site",
// https://dev.wix.com/docs/develop-websites/articles/coding-with-velo/authorization/make-rest-api-calls-with-an-api-key).
type AccountSites struct {
	// APIKey is the account-level API key (never in errors or logs).
	APIKey string
	// Allow is the operator's allowlist: only site ids it matches are
	// served (see package sitematch: anchored globs). Required.
	Allow *sitematch.Pattern
	// MaxSites bounds the account sites held at once (sites added with
	// AddSite do not count), default 1000. A new site beyond it is refused
	// with ErrTooManySites until idle ones are released.
	MaxSites int
	// IdleAfter: an account site without a call in progress and unused for
	// this long is released (its Site and limiter are dropped and made again
	// on its next use), default 10m.
	IdleAfter time.Duration
}

// fullSweepEvery bounds how often a full registry is swept for a new site
// (each sweep visits every held site under the lock).
const fullSweepEvery = time.Second

// account holds the sites made on demand.
type account struct {
	cfg   AccountSites
	mu    sync.Mutex
	sites map[string]*Site
	// folded maps each held site's lower-case id to its spelling: one
	// spelling of an id at a time (see caseConflictLocked).
	folded    map[string]string
	lastSweep time.Time
}

// UseAccount lets c serve, besides the sites added with AddSite (whose own
// credentials, member credentials included, keep precedence), any site whose
// id a.Allow matches, with the account key a.APIKey, within a.MaxSites at
// once. Each such site gets its own limiter (Config.NewLimiter, or the
// default) when first used, and is released after a.IdleAfter without use.
// Member credentials cannot be shared by sites: a site that needs one is
// added with AddSite.
func (c *Client) UseAccount(a AccountSites) error {
	if a.APIKey == "" {
		return invalid("account sites: empty API key")
	}
	if a.Allow == nil || a.Allow.String() == "" {
		return invalid("account sites: no allowlist pattern")
	}
	if a.MaxSites <= 0 {
		a.MaxSites = DefaultMaxSites
	}
	if a.IdleAfter <= 0 {
		a.IdleAfter = DefaultSiteIdleAfter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.account = &account{cfg: a, sites: map[string]*Site{}, folded: map[string]string{}}
	return nil
}

// AccountSiteCount returns the account sites held now (0 without UseAccount).
func (c *Client) AccountSiteCount() int {
	acc := c.acct()
	if acc == nil {
		return 0
	}
	acc.mu.Lock()
	defer acc.mu.Unlock()
	return len(acc.sites)
}

func (c *Client) acct() *account {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.account
}

// shortID bounds an untrusted site id in error messages.
func shortID(id string) string {
	if len(id) > 80 {
		return id[:80] + "…"
	}
	return id
}

// accountSite returns the account site siteID, making it if allowed.
func (c *Client) accountSite(acc *account, siteID string) (*Site, error) {
	if !acc.cfg.Allow.Match(siteID) {
		return nil, fmt.Errorf("site %q is not configured and does not match the account sites pattern %q (--wix-account-sites): %w",
			shortID(siteID), acc.cfg.Allow.String(), ErrSiteNotAllowed)
	}
	now := c.now()
	acc.mu.Lock()
	defer acc.mu.Unlock()
	if s := acc.sites[siteID]; s != nil {
		s.lastUsed.Store(now.UnixNano())
		return s, nil
	}
	if since := now.Sub(acc.lastSweep); since > acc.cfg.IdleAfter/4 || (len(acc.sites) >= acc.cfg.MaxSites && since >= fullSweepEvery) {
		acc.sweepLocked(now, c.metrics)
	}
	if len(acc.sites) >= acc.cfg.MaxSites {
		return nil, fmt.Errorf("site %q: %d account sites already in use, the maximum (--wix-max-sites %d); a site is released after %v unused: %w",
			shortID(siteID), len(acc.sites), acc.cfg.MaxSites, acc.cfg.IdleAfter, ErrTooManySites)
	}
	if other := c.caseConflictLocked(acc, siteID); other != "" {
		return nil, fmt.Errorf("site %q differs only in case from site %q in use: %w", shortID(siteID), shortID(other), ErrSiteNotAllowed)
	}
	s := c.newSite(siteID, Credentials{APIKey: acc.cfg.APIKey}, nil)
	s.onDemand = true
	s.lastUsed.Store(now.UnixNano())
	acc.hold(s)
	return s, nil
}

// caseConflictLocked returns the other spelling of siteID (differing only in
// case) held as an account site or added with AddSite, or "". Each spelling
// would have its own limiter, so cycling the capitals of one GUID would
// multiply its site's rate; and which site Wix takes a variant for is not
// groupflow's to guess.
func (c *Client) caseConflictLocked(acc *account, siteID string) string {
	lower := strings.ToLower(siteID)
	if other, ok := acc.folded[lower]; ok && other != siteID {
		return other
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id := range c.sites {
		if id != siteID && strings.ToLower(id) == lower {
			return id
		}
	}
	return ""
}

// hold records s as held (acc.mu held).
func (acc *account) hold(s *Site) {
	acc.sites[s.id] = s
	acc.folded[strings.ToLower(s.id)] = s.id
}

// sweepLocked releases the account sites unused for IdleAfter with no call
// in progress, and their metric series.
func (acc *account) sweepLocked(now time.Time, m *metrics) {
	acc.lastSweep = now
	for id, s := range acc.sites {
		if s.inflight.Load() == 0 && now.Sub(time.Unix(0, s.lastUsed.Load())) > acc.cfg.IdleAfter {
			s.evicted.Store(true)
			delete(acc.sites, id)
			delete(acc.folded, strings.ToLower(id))
			m.forget(id)
		}
	}
}

// limiterNow returns the limiter a call of s waits on. A released account
// site still held by a caller takes its place again, or, if the site was
// made anew meanwhile, uses the new one's limiter: one site never has two
// limiters at once.
func (s *Site) limiterNow() Limiter {
	if !s.onDemand {
		return s.limiter
	}
	s.lastUsed.Store(s.c.now().UnixNano())
	if !s.evicted.Load() {
		return s.limiter
	}
	acc := s.c.acct()
	acc.mu.Lock()
	defer acc.mu.Unlock()
	switch cur := acc.sites[s.id]; {
	case cur != nil && cur != s:
		return cur.limiter
	case cur == nil && len(acc.sites) < acc.cfg.MaxSites && s.c.caseConflictLocked(acc, s.id) == "":
		acc.hold(s)
		s.evicted.Store(false)
	}
	return s.limiter
}
