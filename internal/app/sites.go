package app

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"groupflow/internal/config"
	"groupflow/internal/regularfile"
	"groupflow/internal/report"
	"groupflow/internal/sitematch"
	"groupflow/internal/wix"
	"groupflow/internal/wixcheck"
	"groupflow/messages"
)

// SitesFile lists several Wix sites and where their secrets are. Secrets
// themselves stay in the environment (or a secret store mounted as env).
//
//	sites:
//	  - siteId: 1a2b...            # API-key site
//	    apiKeyEnv: WIX_API_KEY_SCHOOL
//	  - siteId: 3c4d...            # app installation (OAuth)
//	    appId: 9f...
//	    instanceId: 3c4d...
//	    appSecretEnv: WIX_APP_SECRET
//	    ratePerMinute: 200
//	    # optional: a group admin member's Wix OAuth refresh token, for
//	    # membership questions, rules and answers (internal/wix/AUTH.md)
//	    memberRefreshTokenEnv: WIX_MEMBER_REFRESH_TOKEN_SCHOOL
//	    memberClientId: 7e...
type SitesFile struct {
	Sites []SiteEntry `yaml:"sites"`
}

// SiteEntry is one site of a SitesFile.
type SiteEntry struct {
	SiteID        string  `yaml:"siteId"`
	APIKeyEnv     string  `yaml:"apiKeyEnv"`
	AppID         string  `yaml:"appId"`
	InstanceID    string  `yaml:"instanceId"`
	AppSecretEnv  string  `yaml:"appSecretEnv"`
	RatePerMinute float64 `yaml:"ratePerMinute"`
	// MemberRefreshTokenEnv names the variable holding a refresh token of a
	// site member who is a group admin; MemberClientID is the client id of
	// the Wix OAuth app that issued it.
	MemberRefreshTokenEnv string `yaml:"memberRefreshTokenEnv"`
	MemberClientID        string `yaml:"memberClientId"`
	// For reports: the site's name, public URL (groups link to
	// <url>/group/<slug>), IANA time zone and report recipients (mailed
	// by groupmail).
	Name             string   `yaml:"name"`
	URL              string   `yaml:"url"`
	TimeZone         string   `yaml:"timeZone"`
	ReportRecipients []string `yaml:"reportRecipients"`
}

// ReportProfiles gives the sites' report profiles: the default site's
// from --site-name, --site-url, --site-time-zone and --report-recipients,
// then the sites file's (name, url, timeZone, reportRecipients), each
// validated (report.CheckProfile).
func ReportProfiles(cfg *config.Config) (report.Profiles, error) {
	profiles := map[string]report.Profile{}
	if p := (report.Profile{Name: cfg.SiteName, URL: cfg.SiteURL, TimeZone: cfg.SiteTimeZone, Recipients: splitList(cfg.ReportRecipients)}); p.Name != "" || p.URL != "" || p.TimeZone != "" || len(p.Recipients) > 0 {
		if err := report.CheckProfile(p); err != nil {
			return nil, fmt.Errorf("site %s: %w", cfg.SiteID, err)
		}
		profiles[cfg.SiteID] = p
	}
	if cfg.WixSitesFile != "" {
		f, err := loadSitesFile(cfg.WixSitesFile)
		if err != nil {
			return nil, err
		}
		for _, s := range f.Sites {
			p := report.Profile{Name: s.Name, URL: s.URL, TimeZone: s.TimeZone, Recipients: s.ReportRecipients}
			if err := report.CheckProfile(p); err != nil {
				return nil, fmt.Errorf("sites file entry %s: %w", s.SiteID, err)
			}
			profiles[s.SiteID] = p
		}
	}
	return func(id string) report.Profile { return profiles[id] }, nil
}

// MaxSitesFileBytes bounds --wix-sites-file: 8 MiB is tens of thousands
// of entries.
const MaxSitesFileBytes = 8 << 20

// loadSitesFile reads and checks the sites file at path: a regular file (a
// FIFO or a device is refused without waiting on it) of at most
// MaxSitesFileBytes, each entry with a siteId a command could name
// (messages.SiteIDProblem) listed once and a
// ratePerMinute of 0 (--wix-rate-per-minute) to config.MaxRatePerMinute.
// Its errors name the file and the entry, never a secret (the file holds
// variable names only).
func loadSitesFile(path string) (SitesFile, error) {
	b, err := regularfile.Read(path, MaxSitesFileBytes)
	if regularfile.IsRefused(err) {
		return SitesFile{}, fmt.Errorf("sites file %s: %w", path, err)
	}
	if err != nil {
		return SitesFile{}, fmt.Errorf("sites file: %w", err)
	}
	var f SitesFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return SitesFile{}, fmt.Errorf("sites file %s: %w", path, err)
	}
	first := make(map[string]int, len(f.Sites))
	for i, s := range f.Sites {
		if strings.TrimSpace(s.SiteID) == "" {
			return SitesFile{}, fmt.Errorf("sites file %s: entry %d: siteId is required", path, i)
		}
		if p := messages.SiteIDProblem(s.SiteID); p != "" {
			return SitesFile{}, fmt.Errorf("sites file %s: entry %d: siteId: want %s", path, i, p)
		}
		if j, dup := first[s.SiteID]; dup {
			return SitesFile{}, fmt.Errorf("sites file %s: entries %d and %d: siteId %s is listed twice", path, j, i, s.SiteID)
		}
		first[s.SiteID] = i
		if !(s.RatePerMinute >= 0 && s.RatePerMinute <= config.MaxRatePerMinute) {
			return SitesFile{}, fmt.Errorf("sites file %s: entry %d (%s): ratePerMinute %v: want 0 (--wix-rate-per-minute) to %g",
				path, i, s.SiteID, s.RatePerMinute, config.MaxRatePerMinute)
		}
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// addSites registers the sites of cfg on c: the sites file, then the single
// site given by WIX_API_KEY/WIX_SITE_ID or the app OAuth variables. In the
// account-key mode (--wix-account-sites) a sites-file entry without a key of
// its own (listed for its member credential or rate) uses WIX_API_KEY, and
// sites not listed are served by useAccount.
func addSites(c *wix.Client, cfg *config.Config, getenv func(string) string, newLimiter func(site string, perMinute float64) wix.Limiter) error {
	listed := map[string]bool{}
	if cfg.WixSitesFile != "" {
		f, err := loadSitesFile(cfg.WixSitesFile)
		if err != nil {
			return err
		}
		for i, s := range f.Sites {
			listed[s.SiteID] = true
			creds := wix.Credentials{AppID: s.AppID, InstanceID: s.InstanceID}
			if s.APIKeyEnv != "" {
				creds.APIKey = getenv(s.APIKeyEnv)
				if creds.APIKey == "" {
					return fmt.Errorf("sites file entry %d (%s): environment variable %s is empty", i, s.SiteID, s.APIKeyEnv)
				}
			}
			if s.AppSecretEnv != "" {
				creds.AppSecret = getenv(s.AppSecretEnv)
			}
			if creds.APIKey == "" && creds.AppID == "" && cfg.WixAccountSites != "" {
				creds.APIKey = cfg.WixAPIKey // the account key
			}
			creds.MemberClientID = s.MemberClientID
			if s.MemberRefreshTokenEnv != "" {
				creds.MemberRefreshToken = getenv(s.MemberRefreshTokenEnv)
				if creds.MemberRefreshToken == "" {
					return fmt.Errorf("sites file entry %d (%s): environment variable %s is empty", i, s.SiteID, s.MemberRefreshTokenEnv)
				}
			}
			var err error
			if s.RatePerMinute > 0 {
				err = c.AddSiteWithLimiter(s.SiteID, creds, newLimiter(s.SiteID, s.RatePerMinute))
			} else {
				err = c.AddSite(s.SiteID, creds)
			}
			if err != nil {
				return fmt.Errorf("site %s: %w", s.SiteID, err)
			}
		}
	}
	member := wix.Credentials{MemberRefreshToken: cfg.WixMemberRefreshToken, MemberClientID: cfg.WixMemberClientID}
	switch {
	case cfg.WixAPIKey != "" && cfg.SiteID == "":
		return nil // account-key mode without a default site
	case (cfg.WixAPIKey != "" || cfg.WixAppID != "") && listed[cfg.SiteID]:
		return fmt.Errorf("site %s is a sites file entry and also the single site of WIX_SITE_ID (--site-id) with WIX_API_KEY or WIX_APP_ID, whose credentials would replace the entry's: list it once", cfg.SiteID)
	case cfg.WixAPIKey != "":
		member.APIKey = cfg.WixAPIKey
		return c.AddSite(cfg.SiteID, member)
	case cfg.WixAppID != "":
		member.AppID, member.AppSecret, member.InstanceID = cfg.WixAppID, cfg.WixAppSecret, cfg.WixInstanceID
		return c.AddSite(cfg.SiteID, member)
	}
	return nil
}

// useAccount turns on the account-key mode of c when cfg asks for it: sites
// not listed whose id matches --wix-account-sites are served with key, at
// most --wix-max-sites at once (see wix.Client.UseAccount).
func useAccount(c *wix.Client, cfg *config.Config, key string) error {
	pattern := cfg.WixAccountSites
	if pattern == "" {
		if !cfg.Simulated() {
			return nil
		}
		pattern = "*" // the simulator refuses the sites it does not serve
	}
	allow, err := sitematch.Parse(pattern)
	if err != nil {
		return fmt.Errorf("--wix-account-sites: %w", err)
	}
	return c.UseAccount(wix.AccountSites{APIKey: key, Allow: allow, MaxSites: cfg.WixMaxSites, IdleAfter: cfg.WixSiteIdle})
}

// NewWixClient builds a Wix client for the sites cfg configures: the sites
// file and the single site from the environment, or, without credentials,
// the embedded simulator at --wix-base-url (default http://<wix-sim-listen>)
// with site cfg.SiteID. Each site gets a local limiter at
// cfg.WixRatePerMinute. groupctl wix check uses it; the processor builds
// its own client with shared limiters.
func NewWixClient(cfg *config.Config, getenv func(string) string, log *zap.Logger) (*wix.Client, error) {
	base := cfg.WixBaseURL
	if cfg.Simulated() && base == "" {
		base = "http://" + cfg.WixSimListen
	}
	c := wix.New(wix.Config{BaseURL: base, RequestsPerMinute: cfg.WixRatePerMinute,
		GroupsPrefix: cfg.GroupsPrefix, GroupMembersPrefix: cfg.GroupMembersPrefx, GroupRequestsPrefix: cfg.GroupRequestsPrefix, Logger: log})
	if cfg.Simulated() {
		if err := c.AddSite(cfg.SiteID, wix.Credentials{APIKey: "simulator"}); err != nil {
			return nil, err
		}
		return c, useAccount(c, cfg, "simulator")
	}
	local := func(_ string, perMinute float64) wix.Limiter { return wix.NewAdaptiveLimiter(perMinute, 5) }
	if err := addSites(c, cfg, getenv, local); err != nil {
		return nil, err
	}
	return c, useAccount(c, cfg, cfg.WixAPIKey)
}

// preflight checks every site of c (see package wixcheck) and logs one line
// per flow and site. It makes one read per endpoint and site.
func preflight(ctx context.Context, c *wix.Client, log *zap.Logger) {
	for _, id := range c.SiteIDs() {
		site, err := c.Site(id)
		if err != nil {
			continue
		}
		wixcheck.Log(log, id, wixcheck.Check(ctx, site))
		if ctx.Err() != nil {
			return
		}
	}
}
