package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{name: "defaults run embedded with the simulator", check: func(t *testing.T, c *Config) {
			if !c.Embedded() || !c.Simulated() || c.SiteID != "demo-site" || c.Replicas != 1 ||
				c.NATSListen != "127.0.0.1:4222" || c.HTTPListen != "127.0.0.1:8080" || c.WixSimListen != "127.0.0.1:8090" ||
				c.DataDir != "./data" || c.Prefix != "groups" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "env then flags override", args: []string{"--concurrency", "9"},
			env: map[string]string{"GROUPFLOW_CONCURRENCY": "3", "GROUPFLOW_ACK_WAIT": "45s", "GROUPFLOW_SUBJECT_PREFIX": "acme"},
			check: func(t *testing.T, c *Config) {
				if c.Concurrency != 9 || c.AckWait != 45*time.Second || c.Prefix != "acme" {
					t.Errorf("got concurrency %d ack %s prefix %s", c.Concurrency, c.AckWait, c.Prefix)
				}
			}},
		{name: "account-key mode without a site id", args: []string{"--wix-account-sites", "5f1c3a52-*,school-??", "--wix-max-sites", "5000"},
			env: map[string]string{"WIX_API_KEY": "acct-key-1"},
			check: func(t *testing.T, c *Config) {
				if c.Simulated() || c.WixAccountSites != "5f1c3a52-*,school-??" || c.WixMaxSites != 5000 || c.WixSiteIdle != 10*time.Minute {
					t.Errorf("got %+v", c)
				}
				if strings.Contains(c.String(), "acct-key-1") {
					t.Error("String() leaks the account key")
				}
			}},
		{name: "account-key mode needs an API key", args: []string{"--wix-account-sites", "s-*"},
			env: map[string]string{"WIX_APP_ID": "a", "WIX_APP_SECRET": "b", "WIX_INSTANCE_ID": "c"}, wantErr: "needs WIX_API_KEY"},
		{name: "account sites pattern refused", args: []string{"--wix-account-sites", "a,,b"}, env: map[string]string{"WIX_API_KEY": "k"}, wantErr: "--wix-account-sites"},
		{name: "account sites * refused without --wix-account-sites-any", args: []string{"--wix-account-sites", "site-a, *"},
			env: map[string]string{"WIX_API_KEY": "k"}, wantErr: "--wix-account-sites-any"},
		{name: "account sites ?* refused without --wix-account-sites-any", args: []string{"--wix-account-sites", "?*"},
			env: map[string]string{"WIX_API_KEY": "k"}, wantErr: "--wix-account-sites-any"},
		{name: "account sites * with --wix-account-sites-any", args: []string{"--wix-account-sites", "*", "--wix-account-sites-any"},
			env: map[string]string{"WIX_API_KEY": "k"}, check: func(t *testing.T, c *Config) {
				if !c.WixAccountSitesAny || c.WixAccountSites != "*" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "simulator accepts account sites *", args: []string{"--wix-account-sites", "*"}, check: func(t *testing.T, c *Config) {
			if !c.Simulated() {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "max sites bounded", args: []string{"--wix-max-sites", "0"}, wantErr: "--wix-max-sites 0"},
		{name: "simulator sites pattern", args: []string{"--wix-sim-sites-pattern", "bench-*"}, check: func(t *testing.T, c *Config) {
			if !c.Simulated() || c.WixSimSitesPattern != "bench-*" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "WIX_API_KEY without site or account sites", env: map[string]string{"WIX_API_KEY": "k"}, wantErr: "--wix-account-sites"},
		{name: "real site from WIX_API_KEY and WIX_SITE_ID", env: map[string]string{"WIX_API_KEY": "k-123", "WIX_SITE_ID": "site-9"},
			check: func(t *testing.T, c *Config) {
				if c.Simulated() || c.SiteID != "site-9" || c.WixAPIKey != "k-123" {
					t.Errorf("got %+v", c)
				}
				if strings.Contains(c.String(), "k-123") {
					t.Error("String() leaks the API key")
				}
			}},
		{name: "nats url password is not printed", args: []string{"--nats-url", "nats://gf:s3cret@a:4222,nats://b:4222"},
			check: func(t *testing.T, c *Config) {
				if strings.Contains(c.String(), "s3cret") {
					t.Errorf("String() leaks the NATS password: %s", c.String())
				}
			}},
		{name: "external nats defaults to 3 replicas", args: []string{"--nats-url", "nats://a:4222,nats://b:4222"},
			check: func(t *testing.T, c *Config) {
				if c.Embedded() || c.Replicas != 3 {
					t.Errorf("embedded %v replicas %d", c.Embedded(), c.Replicas)
				}
			}},
		{name: "admission defaults: no per-type concurrency to tune", check: func(t *testing.T, c *Config) {
			if c.Concurrency != 0 || c.MaxInFlight != 1024 || c.SiteConcurrency != 4 || c.InFlightBytes != 64<<20 {
				t.Errorf("concurrency %d max-in-flight %d site-concurrency %d in-flight-bytes %d", c.Concurrency, c.MaxInFlight, c.SiteConcurrency, c.InFlightBytes)
			}
		}},
		{name: "admission flags", args: []string{"--max-in-flight", "500", "--site-concurrency", "2"},
			check: func(t *testing.T, c *Config) {
				if c.MaxInFlight != 500 || c.SiteConcurrency != 2 {
					t.Errorf("max-in-flight %d site-concurrency %d", c.MaxInFlight, c.SiteConcurrency)
				}
			}},
		{name: "max-in-flight zero", args: []string{"--max-in-flight", "0"}, wantErr: "--max-in-flight 0"},
		{name: "site concurrency above max-in-flight", args: []string{"--max-in-flight", "3", "--site-concurrency", "4"}, wantErr: "--site-concurrency 4"},
		{name: "negative concurrency", args: []string{"--concurrency", "-1"}, wantErr: "--concurrency -1"},
		{name: "api key without site", env: map[string]string{"WIX_API_KEY": "k"}, wantErr: "WIX_SITE_ID"},
		{name: "oauth incomplete", env: map[string]string{"WIX_APP_ID": "app"}, wantErr: "WIX_APP_SECRET"},
		{name: "bad env value", env: map[string]string{"GROUPFLOW_MAX_DELIVER": "many"}, wantErr: "GROUPFLOW_MAX_DELIVER"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "log-format"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "unknown site time zone", args: []string{"--site-time-zone", "Mars/Olympus"}, wantErr: "--site-time-zone"},
		{name: "bad report recipient", env: map[string]string{"GROUPFLOW_REPORT_RECIPIENTS": "head@acme.example, nope"}, wantErr: `"nope" is not an email`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	var sb strings.Builder
	_, _ = Parse([]string{"--help"}, env(nil), &sb)
	for _, want := range []string{"GROUPFLOW_NATS_URL", "WIX_SITE_ID", "WIX_API_KEY", "GROUPFLOW_DATA_DIR"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

// TestAdminTokenRule: an admin listener beyond loopback needs
// GROUPFLOW_ADMIN_TOKEN or the explicit insecure opt-out; loopback does not.
func TestAdminTokenRule(t *testing.T) {
	tests := []struct {
		listen string
		token  string
		optOut bool
		ok     bool
	}{
		{"127.0.0.1:8080", "", false, true},
		{"127.0.0.2:8080", "", false, true},
		{"localhost:8080", "", false, true},
		{"[::1]:8080", "", false, true},
		{"0.0.0.0:8080", "", false, false},
		{":8080", "", false, false},
		{"[::]:8080", "", false, false},
		{"10.0.0.7:8080", "", false, false},
		{"admin.internal:8080", "", false, false},
		{"0.0.0.0:8080", "tok-0123456789abcdef", false, true},
		{":8080", "tok-0123456789abcdef", false, true},
		{"0.0.0.0:8080", "", true, true},
		{"127.0.0.1:8080", "tok-0123456789abcdef", true, true},
	}
	for _, tt := range tests {
		args := []string{"--http-listen", tt.listen}
		if tt.optOut {
			args = append(args, "--admin-insecure-no-token")
		}
		c, err := Parse(args, env(map[string]string{"GROUPFLOW_ADMIN_TOKEN": tt.token}), io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("listen %s token %q opt-out %v: err = %v, want ok %v", tt.listen, tt.token, tt.optOut, err, tt.ok)
			continue
		}
		if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "GROUPFLOW_ADMIN_TOKEN")) {
			t.Errorf("refusal %q: want one line naming GROUPFLOW_ADMIN_TOKEN", err)
		}
		if err == nil && c.AdminInsecureNoToken != tt.optOut {
			t.Errorf("AdminInsecureNoToken = %v", c.AdminInsecureNoToken)
		}
	}
}

// TestAdminTokenLength: the admin token opens the console's sign-in form
// and the DLQ API, so a guessable one ("replace-me", the example secret's
// placeholder) is refused: at least MinAdminToken bytes; the message does
// not quote it.
func TestAdminTokenLength(t *testing.T) {
	for token, ok := range map[string]bool{"replace-me": false, "admin": false, "0123456789abcdef": true,
		"3f9c1e7a2b8d4f60a1c5e9b7d3f2a8c4": true, "": true} {
		_, err := Parse([]string{"--http-listen", "127.0.0.1:8080"}, env(map[string]string{"GROUPFLOW_ADMIN_TOKEN": token}), io.Discard)
		if (err == nil) != ok {
			t.Errorf("token of %d bytes: err = %v, want ok %v", len(token), err, ok)
		}
		if err != nil && (token == "" || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "GROUPFLOW_ADMIN_TOKEN")) {
			t.Errorf("refusal %q: want it to name GROUPFLOW_ADMIN_TOKEN, not the token", err)
		}
	}
}

// TestWixBaseURLRule: a plain-http Wix base URL beyond loopback is refused
// at start unless --wix-allow-insecure-http is given.
func TestWixBaseURLRule(t *testing.T) {
	key := map[string]string{"WIX_API_KEY": "k", "WIX_SITE_ID": "s"}
	for _, tt := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--wix-base-url", "https://www.wixapis.com"}, true},
		{[]string{"--wix-base-url", "http://127.0.0.1:8090"}, true},
		{[]string{"--wix-base-url", "http://wixsim:8090"}, false},
		{[]string{"--wix-base-url", "http://wixsim:8090", "--wix-allow-insecure-http"}, true},
		{[]string{"--wix-base-url", "https://u:p@www.wixapis.com"}, false},
	} {
		_, err := Parse(tt.args, env(key), io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("%v: err = %v, want ok %v", tt.args, err, tt.ok)
		}
	}
}

// TestUnauthenticatedListenersLoopbackOnly: the embedded nats-server and the
// embedded Wix simulator have no authentication (anyone reaching them can
// publish commands, purge streams or rewrite the simulated sites), so they
// listen on loopback only; an address beyond it is refused, naming the flag.
func TestUnauthenticatedListenersLoopbackOnly(t *testing.T) {
	checkParse(t, "", []parseCase{
		{[]string{"--nats-listen", "127.0.0.1:4222"}, nil, ""},
		{[]string{"--nats-listen", "localhost:0"}, nil, ""},
		{[]string{"--nats-listen", "0.0.0.0:4222"}, nil, "--nats-listen"},
		{[]string{"--nats-listen", ":4222"}, nil, "--nats-listen"},
		{nil, map[string]string{"GROUPFLOW_NATS_LISTEN": "[::]:4222"}, "--nats-listen"},
		// An external NATS: no embedded server listens.
		{[]string{"--nats-url", "nats://n:4222", "--nats-listen", "0.0.0.0:4222"}, nil, ""},
		{[]string{"--wix-sim-listen", "0.0.0.0:8090"}, nil, "--wix-sim-listen"},
		// Real Wix: no simulator listens.
		{[]string{"--wix-sim-listen", "0.0.0.0:8090"}, map[string]string{"WIX_API_KEY": "k", "WIX_SITE_ID": "s"}, ""},
	})
}

// TestMaxPayloadBounded: --max-payload-mb is 1 to 64 MiB (nats-server
// refuses a max_payload above its per-client pending limit); 0, a negative
// value or one whose bytes overflow the server's int32 (4096 was 0, read as
// the 8 MiB default; 2048 negative) is refused, naming the flag.
func TestMaxPayloadBounded(t *testing.T) {
	for v, ok := range map[string]bool{"1": true, "8": true, "64": true, "0": false, "-1": false, "65": false, "2048": false, "4096": false} {
		_, err := Parse([]string{"--max-payload-mb", v}, env(nil), io.Discard)
		if (err == nil) != ok {
			t.Errorf("--max-payload-mb %s: err = %v, want ok %v", v, err, ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "--max-payload-mb "+v) {
			t.Errorf("--max-payload-mb %s: err %q does not name the flag and value", v, err)
		}
	}
}

// TestRatesFinite: a Wix rate is a positive finite number of calls a
// minute, at most MaxRatePerMinute (NaN made every limiter's arithmetic NaN,
// +Inf turned rate limiting off, a negative one was silently 200); the
// simulator's may also be 0 (unlimited). The refusal names the flag.
func TestRatesFinite(t *testing.T) {
	checkFlagValues(t, []flagCase{
		{"--wix-rate-per-minute", "200", true},
		{"--wix-rate-per-minute", "0.5", true},
		{"--wix-rate-per-minute", "0", false},
		{"--wix-rate-per-minute", "-1", false},
		{"--wix-rate-per-minute", "NaN", false},
		{"--wix-rate-per-minute", "+Inf", false},
		{"--wix-rate-per-minute", "1e300", false},
		{"--wix-sim-rate-per-minute", "0", true},
		{"--wix-sim-rate-per-minute", "600", true},
		{"--wix-sim-rate-per-minute", "-5", false},
		{"--wix-sim-rate-per-minute", "NaN", false},
		{"--wix-sim-rate-per-minute", "Inf", false},
	})
}

// TestDurationsAndCountsBounded: each duration and count is refused,
// naming the flag, outside its range. Before, 0 and negative durations were
// silently replaced by defaults (or, --nats-start-timeout, meant no wait),
// --shutdown-grace near the largest duration overflowed the router's close
// timeout (grace + 10s), --max-deliver overflowed the consumers' 2n+5
// deliveries, and an --event-dup-window longer than the events stream's
// age limit failed only after 60s of provisioning retries.
func TestDurationsAndCountsBounded(t *testing.T) {
	checkFlagValues(t, []flagCase{
		{"--ack-wait", "30s", true}, {"--ack-wait", "1s", true}, {"--ack-wait", "1h", true},
		{"--ack-wait", "0s", false}, {"--ack-wait", "-5s", false}, {"--ack-wait", "2h", false},
		{"--handler-timeout", "1h", true}, {"--handler-timeout", "168h", true},
		{"--handler-timeout", "0s", false}, {"--handler-timeout", "-1s", false}, {"--handler-timeout", "169h", false},
		{"--shutdown-grace", "25s", true}, {"--shutdown-grace", "0s", false}, {"--shutdown-grace", "-1s", false},
		{"--shutdown-grace", "2562047h", false},
		{"--nats-start-timeout", "1s", true}, {"--nats-start-timeout", "0s", false}, {"--nats-start-timeout", "-1s", false},
		{"--nats-start-timeout", "2h", false},
		{"--event-dup-window", "1h", true}, {"--event-dup-window", "168h", true},
		{"--event-dup-window", "0s", false}, {"--event-dup-window", "-1m", false}, {"--event-dup-window", "200h", false},
		{"--max-deliver", "2", true}, {"--max-deliver", "1000", true},
		{"--max-deliver", "1001", false}, {"--max-deliver", "4611686018427387904", false},
		{"--concurrency", "100000", true}, {"--concurrency", "100001", false}, {"--concurrency", "9223372036854775807", false},
		{"--max-group-members", "1", true}, {"--max-group-members", "10000000", true},
		{"--max-group-members", "0", false}, {"--max-group-members", "-1", false}, {"--max-group-members", "10000001", false},
	})
}

// TestSubjectPrefixChecked: --subject-prefix is dot-separated tokens of
// letters, digits, '_' and '-' (messages.CheckPrefix): a wildcard ("*" made
// the commands stream take every <anything>.cmd.> subject), whitespace, an
// empty token or a '$' (system subjects) is refused naming the flag, not
// found by nats-server after 60s of provisioning retries.
func TestSubjectPrefixChecked(t *testing.T) {
	for v, ok := range map[string]bool{"groups": true, "acme.prod": true, "acme-prod_2": true, "": true,
		"*": false, ">": false, "acme.>": false, "a b": false, "a..b": false, ".a": false, "a.": false, "$JS": false, "a\tb": false} {
		_, err := Parse([]string{"--subject-prefix", v}, env(nil), io.Discard)
		if (err == nil) != ok {
			t.Errorf("--subject-prefix %q: err = %v, want ok %v", v, err, ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "--subject-prefix") {
			t.Errorf("--subject-prefix %q: err %q does not name the flag", v, err)
		}
	}
}

// TestConfiguredSiteIDsChecked: a configured site id is one a command could
// name (messages.SiteIDProblem): --site-id / WIX_SITE_ID (or the
// WIX_INSTANCE_ID it defaults to) and --wix-sim-sites entries of other
// characters or over messages.MaxSiteIDLen are refused naming the flag.
func TestConfiguredSiteIDsChecked(t *testing.T) {
	long := strings.Repeat("s", 101)
	checkParse(t, long, []parseCase{
		{[]string{"--site-id", "5f1c3a52-ok.site_1"}, nil, ""},
		{[]string{"--site-id", "bad site"}, nil, "--site-id"},
		{nil, map[string]string{"WIX_SITE_ID": "a/b", "WIX_API_KEY": "k"}, "--site-id"},
		{[]string{"--site-id", long}, nil, "--site-id"},
		{nil, map[string]string{"WIX_APP_ID": "a", "WIX_APP_SECRET": "s", "WIX_INSTANCE_ID": "inst*"}, "WIX_INSTANCE_ID"},
		{[]string{"--wix-sim-sites", "demo-site, b>c"}, nil, "--wix-sim-sites"},
	})
}

// TestListenAddressesChecked: a listener address that cannot be listened on
// is refused at parse time, naming its flag, not when the listener starts
// after the broker is up.
func TestListenAddressesChecked(t *testing.T) {
	checkParse(t, "", argCases([]argCase{
		{[]string{"--http-listen", "127.0.0.1:0"}, ""},
		{[]string{"--http-listen", "localhost:8080"}, ""},
		{[]string{"--http-listen", "127.0.0.1"}, "--http-listen"},
		{[]string{"--http-listen", "127.0.0.1:99999"}, "--http-listen"},
		{[]string{"--http-listen", "127.0.0.1:http"}, "--http-listen"},
		{[]string{"--nats-listen", "127.0.0.1:-1"}, "--nats-listen"},
		{[]string{"--wix-sim-listen", "localhost"}, "--wix-sim-listen"},
		// Not used, not checked: an external NATS, real Wix.
		{[]string{"--nats-url", "nats://n:4222", "--nats-listen", "nonsense"}, ""},
	}))
}

// TestEnvValueEchoBounded: a refused environment value is quoted at most
// maxEchoed bytes: the variable's name says which it was.
func TestEnvValueEchoBounded(t *testing.T) {
	long := strings.Repeat("9", 100_000) + "s"
	_, err := Parse(nil, env(map[string]string{"GROUPFLOW_ACK_WAIT": long + "x"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GROUPFLOW_ACK_WAIT") {
		t.Fatalf("err = %v, want naming GROUPFLOW_ACK_WAIT", err)
	}
	if strings.Contains(err.Error(), long[:maxEchoed+1]) || len(err.Error()) > 2*maxEchoed+200 {
		t.Errorf("the error quotes %d bytes of the value, want at most %d", len(err.Error()), maxEchoed)
	}
}

// TestPathPrefixesChecked: an API path prefix with a query, fragment,
// escape, blank or '..' segment is refused naming its flag (it made every
// call of that API fail without naming the setting).
func TestPathPrefixesChecked(t *testing.T) {
	checkParse(t, "", argCases([]argCase{
		{[]string{"--wix-groups-prefix", "/social-groups/v2"}, ""},
		{[]string{"--wix-group-requests-prefix", "/_api/social-groups-proxy/group-requests/v2"}, ""},
		{[]string{"--wix-groups-prefix", "/v2?x=1"}, "--wix-groups-prefix"},
		{[]string{"--wix-group-members-prefix", "/v2#frag"}, "--wix-group-members-prefix"},
		{[]string{"--wix-group-requests-prefix", "/a/../b"}, "--wix-group-requests-prefix"},
		{[]string{"--wix-groups-prefix", "/a%2fb"}, "--wix-groups-prefix"},
		{[]string{"--wix-groups-prefix", "/a b"}, "--wix-groups-prefix"},
		{[]string{"--wix-groups-prefix", "/" + strings.Repeat("a", 300)}, "--wix-groups-prefix"},
	}))
}

// TestEnvSizeValueEchoBounded: a size variable that does not parse
// (GROUPFLOW_MEMORY_LIMIT, GROUPFLOW_IN_FLIGHT_BYTES, ...) is quoted at
// most maxEchoed bytes too: ParseSize's own error quoted the whole value,
// so the variable's 100,000 bytes went whole into the startup error.
func TestEnvSizeValueEchoBounded(t *testing.T) {
	long := strings.Repeat("9", 100_000) + "x"
	for _, name := range []string{"GROUPFLOW_MEMORY_LIMIT", "GROUPFLOW_IN_FLIGHT_BYTES"} {
		_, err := Parse(nil, env(map[string]string{name: long}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s: err = %v, want naming it", name, err)
		}
		if len(err.Error()) > 3*maxEchoed+200 {
			t.Errorf("%s: the error has %d bytes, want the value quoted at most %d", name, len(err.Error()), maxEchoed)
		}
	}
}

// parseCase is one configuration Parse is given (args and environment)
// and the flag its refusal must name ("": accepted).
type parseCase struct {
	args []string
	env  map[string]string
	want string
}

// argCase is a parseCase without environment.
type argCase struct {
	args []string
	want string
}

func argCases(cs []argCase) []parseCase {
	out := make([]parseCase, len(cs))
	for i, c := range cs {
		out[i] = parseCase{args: c.args, want: c.want}
	}
	return out
}

// checkParse runs each case through Parse: accepted, or refused with an
// error naming want, and never quoting secret (when not "").
func checkParse(t *testing.T, secret string, cases []parseCase) {
	t.Helper()
	for _, tt := range cases {
		_, err := Parse(tt.args, env(tt.env), io.Discard)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v %v: %v", tt.args, tt.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("%v %v: err = %v, want naming %s", tt.args, tt.env, err, tt.want)
		}
	}
}

// flagCase is one flag's value and whether Parse accepts it.
type flagCase struct {
	flag, v string
	ok      bool
}

// checkFlagValues runs each flag value through Parse: accepted when ok,
// else refused naming the flag.
func checkFlagValues(t *testing.T, cases []flagCase) {
	t.Helper()
	for _, tt := range cases {
		_, err := Parse([]string{tt.flag, tt.v}, env(nil), io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("%s %s: err = %v, want ok %v", tt.flag, tt.v, err, tt.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.flag+" ") {
			t.Errorf("%s %s: err %q does not name the flag", tt.flag, tt.v, err)
		}
	}
}
