// Package config reads groupflow's settings from flags and GROUPFLOW_*
// environment variables (a flag given on the command line wins over the
// environment). Secrets are read from the environment only, so they never
// show in a process list, and are never printed.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"groupflow/handlers"
	"groupflow/internal/admission"
	"groupflow/internal/broker"
	"groupflow/internal/netsafe"
	"groupflow/internal/oneline"
	"groupflow/internal/sitematch"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// Config is the processor's configuration.
type Config struct {
	// Broker.
	DataDir      string
	NATSListen   string
	NATSURL      string
	NATSCreds    string
	NATSNKey     string
	NATSTLSCert  string
	NATSTLSKey   string
	NATSTLSCA    string
	NATSInbox    string
	Replicas     int
	Prefix       string
	SyncAlways   bool
	EventDupWin  time.Duration
	MaxPayloadMB int

	// NATSStartTimeout bounds the wait for the first connection to an
	// external NATS at startup (after it, NATS losses are waited out).
	NATSStartTimeout time.Duration

	// Admin HTTP.
	HTTPListen string
	AdminToken string // env GROUPFLOW_ADMIN_TOKEN only
	// AdminInsecureNoToken lets the admin API listen beyond loopback without
	// a token (logged loudly); without it such a listener is refused.
	AdminInsecureNoToken bool

	// Wix.
	SiteID string
	// SiteName, SiteURL, SiteTimeZone and ReportRecipients describe the
	// default site (--site-id) for reports; sites of --wix-sites-file give
	// theirs in the file.
	SiteName, SiteURL, SiteTimeZone, ReportRecipients string
	WixBaseURL                                        string
	// WixAllowInsecureHTTP accepts an http:// base URL beyond loopback.
	WixAllowInsecureHTTP bool
	WixAPIKey            string // env WIX_API_KEY only
	WixAppID             string
	WixAppSecret         string // env WIX_APP_SECRET only
	WixInstanceID        string
	WixSitesFile         string
	// Account-key mode: WixAccountSites is an allowlist of site ids
	// (package sitematch: comma-separated anchored globs) served with
	// WIX_API_KEY as an account-level key without being listed, at most
	// WixMaxSites at once, each released after WixSiteIdle unused.
	WixAccountSites string
	// WixAccountSitesAny accepts a WixAccountSites glob that allows every
	// site of the account ("*"): refused without it against real Wix.
	WixAccountSitesAny  bool
	WixMaxSites         int
	WixSiteIdle         time.Duration
	WixRatePerMinute    float64
	SharedRateLimit     bool
	WixSimListen        string
	WixSimMembers       int
	WixSimGroups        int
	WixSimSeed          int64
	WixSimRatePerMin    float64
	WixSimState         string
	PhoneRegion         string
	MaxGroupMembers     int
	GroupsPrefix        string
	GroupMembersPrefx   string
	GroupRequestsPrefix string

	// Member credential of the single site (see internal/wix/AUTH.md).
	WixMemberRefreshToken string // env WIX_MEMBER_REFRESH_TOKEN only
	WixMemberClientID     string
	WixPreflight          bool

	// Runtime.
	Concurrency     int // handler slots per command type; 0: MaxInFlight
	MaxInFlight     int // commands running at once, all types and sites (fair admission)
	SiteConcurrency int // commands of one site running at once
	AckWait         time.Duration
	MaxDeliver      int
	HandlerTimeout  time.Duration
	ShutdownGrace   time.Duration

	// Logs.
	LogLevel  string
	LogFormat string

	// Bounds (memory, in-flight bytes, stream sizes, simulator sites).
	MemoryLimit      int64    // bytes; 0 = GOMEMLIMIT or none
	InFlightBytes    int64    // command bodies in work at once
	CommandsMaxBytes int64    // GROUPS_COMMANDS size limit
	EventsMaxBytes   int64    // GROUPS_EVENTS size limit
	DLQMaxBytes      int64    // GROUPS_DLQ size limit
	DLQMaxMsgs       int64    // GROUPS_DLQ message limit (0 = none)
	WixSimSites      []string // sites the embedded simulator serves
	// WixSimSitesPattern: the embedded simulator also serves the sites it
	// matches (package sitematch), at most WixMaxSites of them.
	WixSimSitesPattern string
}

// MaxInFlightLimit bounds --max-in-flight: each running command costs a
// goroutine, its message and its handler's state, and the consumers fetch up
// to twice as many per command type.
const MaxInFlightLimit = 100000

// Simulated reports whether groupflow runs the embedded Wix simulator: no
// Wix credentials were given.
func (c *Config) Simulated() bool {
	return c.WixAPIKey == "" && c.WixAppID == "" && c.WixSitesFile == ""
}

// Embedded reports whether groupflow runs its own nats-server.
func (c *Config) Embedded() bool { return c.NATSURL == "" }

// String describes the configuration without secrets.
func (c Config) String() string {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	c.WixAPIKey = redact(c.WixAPIKey)
	c.WixAppSecret = redact(c.WixAppSecret)
	c.WixMemberRefreshToken = redact(c.WixMemberRefreshToken)
	c.AdminToken = redact(c.AdminToken)
	c.NATSURL = netsafe.RedactURLs(c.NATSURL)
	type plain Config
	return fmt.Sprintf("%+v", plain(c))
}

// ParseWithEnv sets each flag of fs from the first non-empty environment
// variable envNames gives for it, then parses args, which override the
// environment; extra arguments are an error. groupflow and groupmail share it.
func ParseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string, envNames func(flagName string) []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		for _, n := range envNames(f.Name) {
			if v := getenv(n); v != "" {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, fmt.Errorf("%s=%q: %w", n, echoed(v), err))
				}
				break
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// checkListen reports why addr cannot be listened on: it must be host:port
// (the host may be empty or a name), the port a number 0 to 65535 (0: any
// free one). Caught here, a mistake is named before the first side effect
// rather than when the listener starts.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: want a number 0 to 65535", port)
	}
	return nil
}

// maxEchoed bounds how much of a refused environment value an error
// quotes: the variable's name says which it was.
const maxEchoed = 64

// echoed is v as an error quotes it: at most maxEchoed bytes (cut on a
// rune boundary), "…" marking a cut.
func echoed(v string) string {
	if len(v) <= maxEchoed {
		return v
	}
	return oneline.Cut(v, maxEchoed) + "…"
}

// envName is the environment variable of a flag: GROUPFLOW_ + upper snake.
func envName(flagName string) string {
	return "GROUPFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads args (without the program name) and the environment.
func Parse(args []string, getenv func(string) string, usageOut io.Writer) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Config{}
	fs := flag.NewFlagSet("groupflow", flag.ContinueOnError)
	fs.SetOutput(usageOut)

	str := func(p *string, name, def, usage string, aliases ...string) {
		fs.StringVar(p, name, def, usage+" (env "+strings.Join(append([]string{envName(name)}, aliases...), ", ")+")")
	}
	str(&c.DataDir, "data-dir", "./data", "directory of the embedded JetStream file store and the simulator state")
	str(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "loopback listener of the embedded nats-server (for the nats CLI and groupctl); an address beyond loopback is refused (the server has no authentication)")
	str(&c.NATSURL, "nats-url", "", "external NATS server or cluster (comma-separated seeds); empty runs an embedded server")
	str(&c.NATSCreds, "nats-creds", "", "NATS credentials file (.creds)")
	str(&c.NATSNKey, "nats-nkey", "", "file holding an NATS nkey seed")
	str(&c.NATSTLSCert, "nats-tls-cert", "", "client TLS certificate")
	str(&c.NATSTLSKey, "nats-tls-key", "", "client TLS key")
	str(&c.NATSTLSCA, "nats-tls-ca", "", "CA bundle that verifies the NATS servers")
	str(&c.NATSInbox, "nats-inbox-prefix", "", "reply subject prefix instead of _INBOX (e.g. _INBOX_groupflow, to match per-user permissions)")
	fs.IntVar(&c.Replicas, "replicas", 0, "replicas of streams and buckets: 1 embedded, 3 on a cluster (default 1 embedded, 3 external) (env "+envName("replicas")+")")
	str(&c.Prefix, "subject-prefix", "groups", "subject prefix: <prefix>.cmd.>, <prefix>.evt.>, <prefix>.dlq.>")
	fs.BoolVar(&c.SyncAlways, "sync-always", false, "embedded server: fsync every write (no loss on power failure, slower) (env "+envName("sync-always")+")")
	fs.DurationVar(&c.NATSStartTimeout, "nats-start-timeout", 15*time.Second, "startup fails when the external NATS is unreachable this long (env "+envName("nats-start-timeout")+")")
	fs.DurationVar(&c.EventDupWin, "event-dup-window", time.Hour, "duplicate window of the events stream (env "+envName("event-dup-window")+")")
	fs.IntVar(&c.MaxPayloadMB, "max-payload-mb", 8, fmt.Sprintf("embedded server: largest message in MiB, 1 to %d (a 10,000-person roster is about 1 MiB) (env ", MaxPayloadMBLimit)+envName("max-payload-mb")+")")

	str(&c.HTTPListen, "http-listen", "127.0.0.1:8080", "admin HTTP: /healthz /readyz /metrics /dlq; beyond loopback it needs GROUPFLOW_ADMIN_TOKEN")
	fs.BoolVar(&c.AdminInsecureNoToken, "admin-insecure-no-token", false, "INSECURE: let the admin API (dead letters, replay, purge) listen beyond loopback without GROUPFLOW_ADMIN_TOKEN (env "+envName("admin-insecure-no-token")+")")

	str(&c.SiteID, "site-id", "", "default Wix site of commands without siteId (default demo-site with the simulator)", "WIX_SITE_ID")
	str(&c.SiteName, "site-name", "", "name of the default site in its reports")
	str(&c.SiteURL, "site-url", "", "public URL of the default site: reports link each group to <url>/group/<slug>")
	str(&c.SiteTimeZone, "site-time-zone", "", "IANA time zone of the default site's reports, e.g. Europe/Berlin (default UTC)")
	str(&c.ReportRecipients, "report-recipients", "", "comma-separated addresses groupmail mails the default site's reports to")
	str(&c.WixBaseURL, "wix-base-url", "", "Wix API base URL (default https://www.wixapis.com, or the embedded simulator)", "WIX_BASE_URL")
	fs.BoolVar(&c.WixAllowInsecureHTTP, "wix-allow-insecure-http", false, "accept a plain http:// --wix-base-url on a host other than loopback (a simulator on a private network) (env "+envName("wix-allow-insecure-http")+")")
	str(&c.WixAppID, "wix-app-id", "", "Wix app id for OAuth client credentials (secret from WIX_APP_SECRET)", "WIX_APP_ID")
	str(&c.WixInstanceID, "wix-instance-id", "", "Wix app instance id (the site's installation) for OAuth", "WIX_INSTANCE_ID")
	str(&c.WixMemberClientID, "wix-member-client-id", "", "client id of the Wix OAuth app that issued WIX_MEMBER_REFRESH_TOKEN (a group admin member's credential for membership questions, rules and answers)", "WIX_MEMBER_CLIENT_ID")
	fs.BoolVar(&c.WixPreflight, "wix-preflight", true, "at startup, check with one read per endpoint which flows each real Wix site's credentials allow, and log one line per flow (env "+envName("wix-preflight")+")")
	str(&c.WixSitesFile, "wix-sites-file", "", "YAML file of several sites and their credentials")
	str(&c.WixAccountSites, "wix-account-sites", "", "opt-in account-key mode: WIX_API_KEY is an account-level key, and a site not listed is served if its id matches this allowlist (comma-separated globs, each matching the whole id; * any run of characters, ? one; e.g. '5f1c3a52-*'); with the simulator, the sites groupflow accepts (default all)")
	fs.BoolVar(&c.WixAccountSitesAny, "wix-account-sites-any", false, "account-key mode: accept a --wix-account-sites glob without a literal character ('*'), which lets a producer reach every site of the account (env "+envName("wix-account-sites-any")+")")
	fs.IntVar(&c.WixMaxSites, "wix-max-sites", 1000, "account-key mode: most unlisted sites served at once; a command for one more is dead-lettered with an error naming this limit (env "+envName("wix-max-sites")+")")
	fs.DurationVar(&c.WixSiteIdle, "wix-site-idle", 10*time.Minute, "account-key mode: an unlisted site unused this long is released (its client and rate limiter are made again on its next command) (env "+envName("wix-site-idle")+")")
	fs.Float64Var(&c.WixRatePerMinute, "wix-rate-per-minute", 200, "Wix requests per minute per site (env "+envName("wix-rate-per-minute")+")")
	fs.BoolVar(&c.SharedRateLimit, "wix-shared-limit", true, "share each site's Wix rate between all groupflow instances through JetStream KV (env "+envName("wix-shared-limit")+")")
	str(&c.GroupsPrefix, "wix-groups-prefix", "", "path prefix of the Groups API (default /social-groups-proxy/groups/v2; older docs: /social-groups/v2)")
	str(&c.GroupMembersPrefx, "wix-group-members-prefix", "", "path prefix of the Group Members API (default /social-groups-proxy/members/v2)")
	str(&c.GroupRequestsPrefix, "wix-group-requests-prefix", "", "path prefix of the Group Requests API (default /social-groups/v2, the REST docs' URL; the SDK uses /_api/social-groups-proxy/group-requests/v2)")
	str(&c.WixSimListen, "wix-sim-listen", "127.0.0.1:8090", "loopback listener of the embedded Wix simulator (used when no Wix credentials are set); an address beyond loopback is refused (no authentication)")
	fs.IntVar(&c.WixSimMembers, "wix-sim-members", 1000, "simulator: seeded site members (env "+envName("wix-sim-members")+")")
	fs.IntVar(&c.WixSimGroups, "wix-sim-groups", 50, "simulator: seeded groups (env "+envName("wix-sim-groups")+")")
	fs.Int64Var(&c.WixSimSeed, "wix-sim-seed", 1, "simulator: seed of the generated data (env "+envName("wix-sim-seed")+")")
	fs.Float64Var(&c.WixSimRatePerMin, "wix-sim-rate-per-minute", 200, "simulator: requests per minute per site before 429 (0 = unlimited) (env "+envName("wix-sim-rate-per-minute")+")")
	str(&c.WixSimState, "wix-sim-state", "", "simulator: state file kept across restarts (default <data-dir>/wixsim.json)")
	str(&c.PhoneRegion, "phone-region", "US", "default region for phone numbers without a country code")
	fs.IntVar(&c.MaxGroupMembers, "max-group-members", handlers.DefaultMaxMembers, fmt.Sprintf("provision_group: most members of an existing group one command lists and holds (~100 bytes each), 1 to %d; a larger group fails the command (env ", MaxGroupMembersLimit)+envName("max-group-members")+")")

	fs.IntVar(&c.MaxInFlight, "max-in-flight", admission.DefaultMaxInFlight, "commands running at once over all command types and sites; a command waiting for its turn holds no slot, no lease and no write (env "+envName("max-in-flight")+")")
	fs.IntVar(&c.SiteConcurrency, "site-concurrency", admission.DefaultPerSite, "commands of one Wix site running at once (one slot is kept for commands other than campaigns and reports); sites with work take turns (env "+envName("site-concurrency")+")")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "handler slots per command type (0: --max-in-flight, so only the admission bounds apply; rarely worth setting) (env "+envName("concurrency")+")")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "consumer ack wait; work in progress is kept alive (env "+envName("ack-wait")+")")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 10, "failed attempts of a command before it is dead-lettered (env "+envName("max-deliver")+")")
	fs.DurationVar(&c.HandlerTimeout, "handler-timeout", time.Hour, "longest a command may run (env "+envName("handler-timeout")+")")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 25*time.Second, "how long shutdown waits for in-flight commands (env "+envName("shutdown-grace")+")")

	// Bounds.
	c.InFlightBytes, c.CommandsMaxBytes, c.EventsMaxBytes, c.DLQMaxBytes = 64<<20, 1<<30, 1<<30, 512<<20
	size := func(p *int64, name, usage string) {
		fs.Var(SizeValue(p), name, usage+" (env "+envName(name)+")")
	}
	size(&c.MemoryLimit, "memory-limit", "Go soft memory limit, e.g. 512MiB (0: GOMEMLIMIT if set, else none)")
	size(&c.InFlightBytes, "in-flight-bytes", "command bodies held at once (waiting for their site's turn or in work) across all types; a command that does not fit waits")
	size(&c.CommandsMaxBytes, "commands-max-bytes", "size limit of the commands stream; when full, a publish is refused with an error (discard new: nothing unprocessed is dropped; schedules live in GROUPS_SCHEDULES)")
	size(&c.EventsMaxBytes, "events-max-bytes", "size limit of the events stream; when full, completions wait and are retried (discard new)")
	size(&c.DLQMaxBytes, "dlq-max-bytes", "size limit of the DLQ stream (no age limit); when full, the affected command types pause")
	fs.Int64Var(&c.DLQMaxMsgs, "dlq-max-msgs", 0, "message limit of the DLQ stream (0: none) (env "+envName("dlq-max-msgs")+")")
	var simSites string
	str(&simSites, "wix-sim-sites", "demo-site", "simulator: comma-separated site ids it serves besides --site-id; other sites are refused (403)")
	str(&c.WixSimSitesPattern, "wix-sim-sites-pattern", "", "simulator: also serve the site ids this allowlist matches (globs as --wix-account-sites), at most --wix-max-sites of them, e.g. 'bench-*'")

	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "console", "console or json")

	fs.Usage = func() {
		fmt.Fprintf(usageOut, "groupflow: automates Wix Groups from commands on NATS JetStream.\n\nUsage: groupflow [flags]\n\nSecrets come from the environment only: WIX_API_KEY, WIX_APP_SECRET, WIX_MEMBER_REFRESH_TOKEN, GROUPFLOW_ADMIN_TOKEN.\nWithout Wix credentials the embedded Wix simulator is used.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	aliases := map[string]string{"site-id": "WIX_SITE_ID", "wix-base-url": "WIX_BASE_URL",
		"wix-app-id": "WIX_APP_ID", "wix-instance-id": "WIX_INSTANCE_ID", "wix-member-client-id": "WIX_MEMBER_CLIENT_ID"}
	if err := ParseWithEnv(fs, args, getenv, func(flagName string) []string {
		names := []string{envName(flagName)}
		if a, ok := aliases[flagName]; ok {
			names = append(names, a)
		}
		return names
	}); err != nil {
		return nil, err
	}
	c.WixAPIKey = getenv("WIX_API_KEY")
	c.WixAppSecret = getenv("WIX_APP_SECRET")
	c.WixMemberRefreshToken = getenv("WIX_MEMBER_REFRESH_TOKEN")
	c.AdminToken = getenv("GROUPFLOW_ADMIN_TOKEN")

	if c.Replicas == 0 {
		c.Replicas = 1
		if !c.Embedded() {
			c.Replicas = 3
		}
	}
	if c.SiteID == "" && c.Simulated() {
		c.SiteID = "demo-site"
	}
	for _, id := range strings.Split(simSites, ",") {
		if id = strings.TrimSpace(id); id != "" {
			c.WixSimSites = append(c.WixSimSites, id)
		}
	}
	if c.WixSimState == "" {
		c.WixSimState = c.DataDir + "/wixsim.json"
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.WixAPIKey != "" && c.SiteID == "" && c.WixAccountSites == "" {
		errs = append(errs, errors.New("WIX_API_KEY is set but no site: set WIX_SITE_ID (or --site-id), or allow sites with --wix-account-sites"))
	}
	errs = append(errs, c.validateAccount()...)
	errs = append(errs, c.validateSizes()...)
	errs = append(errs, c.validateSites()...)
	errs = append(errs, c.validateExposure()...)
	errs = append(errs, c.validateLimits()...)
	switch c.LogFormat {
	case "console", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want console or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// validateSites checks the credentials, the default site and its report
// profile, and the simulator's sites; it defaults the site to the app
// instance.
func (c *Config) validateSites() []error {
	var errs []error
	if c.WixAppID != "" && (c.WixAppSecret == "" || c.WixInstanceID == "") {
		errs = append(errs, errors.New("app OAuth needs WIX_APP_ID, WIX_APP_SECRET and WIX_INSTANCE_ID"))
	}
	if p := messages.TimeZoneProblem(c.SiteTimeZone); p != "" {
		errs = append(errs, fmt.Errorf("--site-time-zone %q %s", c.SiteTimeZone, p))
	}
	for _, r := range strings.Split(c.ReportRecipients, ",") {
		if r = strings.TrimSpace(r); r != "" && !messages.ValidEmail(r) {
			errs = append(errs, fmt.Errorf("--report-recipients: %q is not an email address", r))
		}
	}
	if (c.WixMemberRefreshToken == "") != (c.WixMemberClientID == "") {
		errs = append(errs, errors.New("a member credential needs both WIX_MEMBER_REFRESH_TOKEN and WIX_MEMBER_CLIENT_ID (--wix-member-client-id)"))
	}
	if c.WixAppID != "" && c.SiteID == "" {
		c.SiteID = c.WixInstanceID
	}
	// A configured site id is one a command could name.
	if p := messages.SiteIDProblem(c.SiteID); p != "" {
		errs = append(errs, fmt.Errorf("--site-id (WIX_SITE_ID, else WIX_INSTANCE_ID with app OAuth): want %s", p))
	}
	for i, id := range c.WixSimSites {
		if p := messages.SiteIDProblem(id); p != "" {
			errs = append(errs, fmt.Errorf("--wix-sim-sites: entry %d: want %s", i, p))
		}
	}
	return errs
}

// validateExposure checks what listens and where Wix is reached: the
// listeners' addresses, the admin API's and the unauthenticated embedded
// servers' exposure, the admin token, the Wix base URL and path prefixes.
func (c *Config) validateExposure() []error {
	var errs []error
	for _, l := range []struct {
		flag, addr string
		used       bool
	}{{"--http-listen", c.HTTPListen, true}, {"--nats-listen", c.NATSListen, c.Embedded()}, {"--wix-sim-listen", c.WixSimListen, c.Simulated()}} {
		if err := checkListen(l.addr); l.used && err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", l.flag, echoed(l.addr), err))
		}
	}
	if err := netsafe.CheckAdminExposure(c.HTTPListen, c.AdminToken != "", c.AdminInsecureNoToken); err != nil {
		errs = append(errs, err)
	}
	// The embedded nats-server and simulator have no authentication: anyone
	// reaching them could publish commands, purge streams or rewrite sites.
	if c.Embedded() && !netsafe.IsLoopbackAddr(c.NATSListen) {
		errs = append(errs, fmt.Errorf("--nats-listen %q: the embedded nats-server has no authentication, so it listens on loopback only (e.g. 127.0.0.1:4222); for NATS beyond this machine run a server with auth and give --nats-url", c.NATSListen))
	}
	if c.Simulated() && !netsafe.IsLoopbackAddr(c.WixSimListen) {
		errs = append(errs, fmt.Errorf("--wix-sim-listen %q: the embedded Wix simulator has no authentication, so it listens on loopback only (e.g. 127.0.0.1:8090); run cmd/wixsim for a simulator on a network", c.WixSimListen))
	}
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminToken {
		errs = append(errs, fmt.Errorf("GROUPFLOW_ADMIN_TOKEN has %d bytes, at least %d wanted (it opens the console and the DLQ API): e.g. openssl rand -hex 32",
			len(c.AdminToken), MinAdminToken))
	}
	if c.WixBaseURL != "" && !c.Simulated() {
		if err := wix.ValidateBaseURL(c.WixBaseURL, c.WixAllowInsecureHTTP); err != nil {
			errs = append(errs, fmt.Errorf("--wix-base-url: %w", err))
		}
	}
	for _, pp := range []struct{ flag, v string }{{"--wix-groups-prefix", c.GroupsPrefix}, {"--wix-group-members-prefix", c.GroupMembersPrefx}, {"--wix-group-requests-prefix", c.GroupRequestsPrefix}} {
		if err := wix.ValidatePathPrefix(pp.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", pp.flag, err))
		}
	}
	return errs
}

// validateLimits checks the counts, rates, durations and the subject prefix.
func (c *Config) validateLimits() []error {
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1 to 5", c.Replicas))
	}
	if c.Concurrency < 0 || c.Concurrency > MaxInFlightLimit {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 0 (derived from --max-in-flight) to %d", c.Concurrency, MaxInFlightLimit))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > MaxInFlightLimit {
		errs = append(errs, fmt.Errorf("--max-in-flight %d: want 1 to %d", c.MaxInFlight, MaxInFlightLimit))
	}
	if c.SiteConcurrency < 1 || c.SiteConcurrency > c.MaxInFlight {
		errs = append(errs, fmt.Errorf("--site-concurrency %d: want 1 to --max-in-flight (%d)", c.SiteConcurrency, c.MaxInFlight))
	}
	if !(c.WixRatePerMinute > 0 && c.WixRatePerMinute <= MaxRatePerMinute) {
		errs = append(errs, fmt.Errorf("--wix-rate-per-minute %v: want more than 0, at most %g", c.WixRatePerMinute, MaxRatePerMinute))
	}
	if !(c.WixSimRatePerMin >= 0 && c.WixSimRatePerMin <= MaxRatePerMinute) {
		errs = append(errs, fmt.Errorf("--wix-sim-rate-per-minute %v: want 0 (unlimited) to %g", c.WixSimRatePerMin, MaxRatePerMinute))
	}
	if c.MaxPayloadMB < 1 || c.MaxPayloadMB > MaxPayloadMBLimit {
		errs = append(errs, fmt.Errorf("--max-payload-mb %d: want 1 to %d", c.MaxPayloadMB, MaxPayloadMBLimit))
	}
	if c.MaxDeliver < 2 || c.MaxDeliver > MaxDeliverLimit {
		errs = append(errs, fmt.Errorf("--max-deliver %d: want 2 to %d", c.MaxDeliver, MaxDeliverLimit))
	}
	if c.MaxGroupMembers < 1 || c.MaxGroupMembers > MaxGroupMembersLimit {
		errs = append(errs, fmt.Errorf("--max-group-members %d: want 1 to %d", c.MaxGroupMembers, MaxGroupMembersLimit))
	}
	for _, d := range []struct {
		flag      string
		v, lo, hi time.Duration
	}{
		{"--ack-wait", c.AckWait, time.Second, time.Hour},
		// A command runs no longer than its message is kept.
		{"--handler-timeout", c.HandlerTimeout, time.Second, broker.DefaultMaxAge},
		{"--shutdown-grace", c.ShutdownGrace, time.Second, time.Hour},
		{"--nats-start-timeout", c.NATSStartTimeout, time.Second, time.Hour},
		// nats-server refuses a duplicate window longer than the stream's age limit.
		{"--event-dup-window", c.EventDupWin, time.Second, broker.DefaultMaxAge},
	} {
		if d.v < d.lo || d.v > d.hi {
			errs = append(errs, fmt.Errorf("%s %v: want %v to %v", d.flag, d.v, d.lo, d.hi))
		}
	}
	if err := messages.CheckPrefix(c.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("--subject-prefix: %w", err))
	}
	return errs
}

// validateAccount checks the account-key mode and the simulator's pattern.
func (c *Config) validateAccount() []error {
	var errs []error
	for flagName, p := range map[string]string{"--wix-account-sites": c.WixAccountSites, "--wix-sim-sites-pattern": c.WixSimSitesPattern} {
		if p == "" {
			continue
		}
		pat, err := sitematch.Parse(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flagName, err))
		} else if flagName == "--wix-account-sites" && pat.AllowsAny() && !c.Simulated() && !c.WixAccountSitesAny {
			errs = append(errs, fmt.Errorf("--wix-account-sites %q lets commands reach every site of the account: list the sites or their prefix, or add --wix-account-sites-any", p))
		}
	}
	if c.WixAccountSites != "" && !c.Simulated() && c.WixAPIKey == "" {
		errs = append(errs, errors.New("--wix-account-sites needs WIX_API_KEY, an account-level API key (app OAuth tokens are per site)"))
	}
	if c.WixMaxSites < 1 || c.WixMaxSites > MaxWixSites {
		errs = append(errs, fmt.Errorf("--wix-max-sites %d: want 1 to %d", c.WixMaxSites, MaxWixSites))
	}
	if c.WixSiteIdle < time.Minute {
		errs = append(errs, fmt.Errorf("--wix-site-idle %v: want at least 1m", c.WixSiteIdle))
	}
	return errs
}

// MaxRatePerMinute bounds the Wix rates (--wix-rate-per-minute,
// --wix-sim-rate-per-minute, a sites file's ratePerMinute): far above any
// Wix limit (benchmarks use it as "no limit"), and finite, so the limiters'
// arithmetic stays finite. Comparisons written as !(lo < v && v <= hi) refuse
// NaN too.
const MaxRatePerMinute = 1e9

// MaxGroupMembersLimit bounds --max-group-members: 10 million members held
// by one command is ~1 GB.
const MaxGroupMembersLimit = 10_000_000

// MaxDeliverLimit bounds --max-deliver: far more attempts than a failing
// command deserves, and the consumers' 2n+5 deliveries
// (runtime.ConsumerMaxDeliver) cannot overflow.
const MaxDeliverLimit = 1000

// MaxPayloadMBLimit bounds --max-payload-mb (broker.MaxPayloadLimit in
// MiB), so the bytes fit the server's int32 option.
const MaxPayloadMBLimit = broker.MaxPayloadLimit >> 20

// MinAdminToken is the shortest GROUPFLOW_ADMIN_TOKEN accepted: a token
// typed into the console's sign-in form must not be guessable at its ten
// tries a minute.
const MinAdminToken = 16

// MaxWixSites bounds --wix-max-sites.
const MaxWixSites = 1_000_000
