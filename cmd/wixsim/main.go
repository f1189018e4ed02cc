// Command wixsim runs the Wix REST simulator (package internal/wixsim) as a
// standalone HTTP server.
//
//	wixsim --listen 127.0.0.1:8090 --members 1000 --groups 50 --seed 1 \
//	       --rate-per-minute 200 --burst 0 --retry-after --token-ttl 4h \
//	       --state-file PATH --latency 0 --jitter 0 --error-rate 500=0.1 \
//	       --sites demo-site,5f1c3a52-7d1e-4c1b-9a0e-000000000001 \
//	       --sites-pattern 'bench-*' --max-sites 10000
//
// Only the sites of --sites, those --sites-pattern matches (anchored globs,
// package sitematch; at most --max-sites, each made and seeded on its first
// request), those of the state file and those added with
// PUT /_sim/sites/{site} are served; any other wix-site-id gets 403
// PERMISSION_DENIED, as Wix answers a key without access to the site.
// --site-count N adds N listed sites <prefix>0000 … (--site-prefix, default
// "site-"), seeded at start unless --seed-demo=false.
//
// Every flag can also come from the environment as WIXSIM_<FLAG> (dashes
// become underscores, e.g. WIXSIM_RATE_PER_MINUTE=12000); flags win.
// SIGINT/SIGTERM shut it down gracefully (saving the state file if set).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/profiling"
	"groupflow/internal/sitematch"
	"groupflow/internal/version"
	"groupflow/internal/wixsim"
)

// errorRates is a repeatable "CODE=PROB[,CODE=PROB]" flag.
type errorRates map[int]float64

func (e errorRates) String() string {
	var parts []string
	for c, p := range e {
		parts = append(parts, fmt.Sprintf("%d=%g", c, p))
	}
	return strings.Join(parts, ",")
}

func (e errorRates) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		code, prob, ok := strings.Cut(part, "=")
		c, err1 := strconv.Atoi(strings.TrimSpace(code))
		p, err2 := strconv.ParseFloat(strings.TrimSpace(prob), 64)
		if !ok || err1 != nil || err2 != nil || c < 100 || c > 599 || p < 0 || p > 1 {
			return fmt.Errorf("want CODE=PROBABILITY, e.g. 500=0.1, got %q", part)
		}
		e[c] = p
	}
	return nil
}

// DefaultSites are the sites served without --sites: the README's demo site
// and wixsim.DemoSiteID.
var DefaultSites = "demo-site," + wixsim.DemoSiteID

type config struct {
	listen  string
	sites   string
	pattern string
	count   int
	prefix  string
	opts    wixsim.Options
	faults  wixsim.Faults
	debug   bool
	demoHit bool
}

// parseConfig reads flags, with WIXSIM_* environment variables as defaults.
func parseConfig(args []string, getenv func(string) string) (*config, error) {
	fs := flag.NewFlagSet("wixsim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &config{}
	rates := errorRates{}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8090", "listen address")
	fs.IntVar(&c.opts.Members, "members", 1000, "seeded members per site (-1: none)")
	fs.IntVar(&c.opts.Groups, "groups", 50, "seeded groups per site (-1: none)")
	fs.Int64Var(&c.opts.Seed, "seed", 1, "data seed")
	fs.Float64Var(&c.opts.RatePerMinute, "rate-per-minute", wixsim.DefaultRatePerMinute, "per-site requests per minute (0: unlimited)")
	fs.IntVar(&c.opts.Burst, "burst", 0, "token bucket size (0: the per-minute rate)")
	fs.BoolVar(&c.opts.RetryAfter, "retry-after", false, "send Retry-After on 429")
	fs.DurationVar(&c.opts.TokenTTL, "token-ttl", 4*time.Hour, "OAuth access token lifetime")
	fs.BoolVar(&c.opts.AuthStrict, "auth-strict", false, "refuse API keys and app tokens on membership questions, rules and answers (member tokens only; replace needs a group admin), as the Wix docs describe")
	fs.DurationVar(&c.opts.MemberTokenTTL, "member-token-ttl", 4*time.Hour, "member access token lifetime")
	fs.BoolVar(&c.opts.RotateRefreshTokens, "rotate-refresh-tokens", false, "answer every refresh-token grant with a new refresh token")
	fs.StringVar(&c.opts.StateFile, "state-file", "", "JSON state file: loaded at start, saved on shutdown and POST /_sim/save")
	fs.DurationVar(&c.faults.Latency, "latency", 0, "added latency per request")
	fs.DurationVar(&c.faults.Jitter, "jitter", 0, "random extra latency in [0, jitter)")
	fs.Var(rates, "error-rate", "injected error rate CODE=PROB (repeatable or comma-separated)")
	fs.Int64Var(&c.faults.Seed, "fault-seed", 1, "seed of the fault injection")
	fs.StringVar(&c.opts.Modes.GroupCreation, "group-creation", wixsim.GroupCreationAllMembers,
		"who creates groups without approval: ALL_MEMBERS, MEMBERS_WITH_APPROVAL (Wix's default) or ADMINS")
	fs.BoolVar(&c.opts.Modes.LegacyFieldNames, "legacy-field-names", false, "answer groups with title/privacyLevel/recentActivityDate")
	fs.DurationVar(&c.opts.Modes.QueryGroupsLag, "query-groups-lag", 0, "new groups appear in Query/List Groups only after this delay")
	fs.IntVar(&c.opts.Modes.TooManyToCountOver, "too-many-to-count-over", 0, "omit metadata.total and set tooManyToCount above this total (0: never)")
	fs.BoolVar(&c.debug, "debug", false, "log every request")
	fs.BoolVar(&c.demoHit, "seed-demo", true, "seed the served sites at start (else on first use)")
	fs.StringVar(&c.sites, "sites", DefaultSites, "comma-separated site ids served; other sites are refused (403)")
	fs.StringVar(&c.pattern, "sites-pattern", "", "also serve every site id this allowlist matches (comma-separated globs matching the whole id, * and ?), made on first request, e.g. 'bench-*'")
	fs.IntVar(&c.opts.MaxSites, "max-sites", wixsim.DefaultMaxSites, "most sites --sites-pattern makes")
	fs.IntVar(&c.count, "site-count", 0, "also serve N sites named <site-prefix>0000, <site-prefix>0001, …")
	fs.StringVar(&c.prefix, "site-prefix", "site-", "prefix of the --site-count sites")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "WIXSIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	switch c.opts.Modes.GroupCreation {
	case wixsim.GroupCreationAllMembers, wixsim.GroupCreationWithApproval, wixsim.GroupCreationAdminsOnly:
	default:
		return nil, fmt.Errorf("-group-creation %q: want ALL_MEMBERS, MEMBERS_WITH_APPROVAL or ADMINS", c.opts.Modes.GroupCreation)
	}
	if len(rates) > 0 {
		c.faults.ErrorRates = rates
	}
	for _, id := range strings.Split(c.sites, ",") {
		if id = strings.TrimSpace(id); id != "" {
			c.opts.Sites = append(c.opts.Sites, id)
		}
	}
	return c, c.siteSet()
}

// maxSiteCount bounds --site-count.
const maxSiteCount = 1_000_000

// siteSet applies --sites-pattern and --site-count.
func (c *config) siteSet() error {
	if c.pattern != "" {
		p, err := sitematch.Parse(c.pattern)
		if err != nil {
			return fmt.Errorf("-sites-pattern: %w", err)
		}
		c.opts.SitesPattern = p
	}
	if c.count < 0 || c.count > maxSiteCount {
		return fmt.Errorf("-site-count %d: want 0 to %d", c.count, maxSiteCount)
	}
	for i := range c.count {
		c.opts.Sites = append(c.opts.Sites, fmt.Sprintf("%s%04d", c.prefix, i))
	}
	return nil
}

// run serves until ctx ends; ready receives the base URL once listening.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer, ready func(string)) error {
	c, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	zc := zap.NewProductionConfig()
	if c.debug {
		zc.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, err := zc.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	c.opts.Logger = log
	sim := wixsim.New(c.opts)
	sim.SetFaults(c.faults)
	if c.demoHit {
		for _, id := range c.opts.Sites {
			t0 := time.Now()
			sim.Site(id)
			log.Info("seeded site", zap.String("site", id), zap.Duration("took", time.Since(t0)))
		}
	}
	url, err := sim.Start(c.listen)
	if err != nil {
		return err
	}
	log.Info("wixsim listening", zap.String("url", url), zap.Float64("ratePerMinute", c.opts.RatePerMinute),
		zap.Int("members", c.opts.Members), zap.Int("groups", c.opts.Groups), zap.Int64("seed", c.opts.Seed))
	fmt.Fprintf(out, "wixsim listening on %s\n", url)
	first := "demo-site"
	if len(c.opts.Sites) > 0 {
		first = c.opts.Sites[0]
	}
	listed := strings.Join(c.opts.Sites[:min(len(c.opts.Sites), 10)], ", ")
	if len(c.opts.Sites) > 10 {
		listed += fmt.Sprintf(" and %d more", len(c.opts.Sites)-10)
	}
	if c.pattern != "" {
		listed += fmt.Sprintf("; any id matching %q (at most %d sites)", c.pattern, c.opts.MaxSites)
	}
	fmt.Fprintf(out, "sites:     %s (others answer 403; add one with curl -X PUT %s/_sim/sites/<id>)\n", listed, url)
	fmt.Fprintf(out, "demo site: curl -s -H 'Authorization: any-key' -H 'wix-site-id: %s' %s/social-groups-proxy/groups/v2/groups?limit=5\n", first, url)
	fmt.Fprintf(out, "control:   %s/_sim/calls?site=%s\n", url, first)
	if ready != nil {
		ready(url)
	}
	<-ctx.Done()
	log.Info("wixsim shutting down")
	return sim.Close()
}

func main() {
	if version.PrintIfAsked("wixsim", os.Args[1:], os.Stdout) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := profiling.StartCPU(os.Getenv("WIXSIM_CPUPROFILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wixsim:", err)
	}
	err = run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil)
	stopProfile()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "wixsim:", err)
		os.Exit(1)
	}
}
