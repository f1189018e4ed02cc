package app

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/config"
	"groupflow/internal/wix"
)

// A sites file entry may carry a member credential: the refresh token comes
// from the named environment variable, and an empty one is an error that
// names the variable (never its value).
func TestSitesFileMemberCredential(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sites.yaml")
	yaml := "sites:\n  - siteId: s1\n    apiKeyEnv: KEY1\n    memberRefreshTokenEnv: RT1\n    memberClientId: client-1\n  - siteId: s2\n    apiKeyEnv: KEY2\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEY1": "k1", "KEY2": "k2", "RT1": "rt-secret"}
	limiter := func(string, float64) wix.Limiter { return wix.NewAdaptiveLimiter(100, 1) }
	c := wix.New(wix.Config{})
	if err := addSites(c, &config.Config{WixSitesFile: file}, func(k string) string { return env[k] }, limiter); err != nil {
		t.Fatal(err)
	}
	s1, _ := c.Site("s1")
	s2, _ := c.Site("s2")
	if !s1.HasMemberCredential() || s2.HasMemberCredential() {
		t.Fatalf("member credential: s1 %v, s2 %v", s1.HasMemberCredential(), s2.HasMemberCredential())
	}
	delete(env, "RT1")
	err := addSites(wix.New(wix.Config{}), &config.Config{WixSitesFile: file}, func(k string) string { return env[k] }, limiter)
	if err == nil || !strings.Contains(err.Error(), "RT1 is empty") {
		t.Fatalf("err %v", err)
	}

	// Single site from the environment.
	c = wix.New(wix.Config{})
	cfg := &config.Config{SiteID: "s3", WixAPIKey: "k", WixMemberRefreshToken: "rt", WixMemberClientID: "c"}
	if err := addSites(c, cfg, func(string) string { return "" }, limiter); err != nil {
		t.Fatal(err)
	}
	if s3, _ := c.Site("s3"); !s3.HasMemberCredential() {
		t.Fatal("single-site member credential not used")
	}
	if strings.Contains(cfg.String(), "rt") && !strings.Contains(cfg.String(), "WixMemberRefreshToken:[redacted]") {
		t.Fatalf("config string shows the refresh token: %s", cfg.String())
	}
}

func TestReportProfiles(t *testing.T) {
	file := writeSites(t, `sites:
  - siteId: school
    apiKeyEnv: K
    name: Acme School
    url: https://school.example
    timeZone: Europe/Berlin
    reportRecipients: [head@school.example]
`)
	cfg := &config.Config{SiteID: "gym", SiteName: "Gym", SiteTimeZone: "America/New_York", ReportRecipients: "a@gym.example, b@gym.example", WixSitesFile: file}
	p, err := ReportProfiles(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := p("school"); s.Name != "Acme School" || s.URL != "https://school.example" || s.TimeZone != "Europe/Berlin" || len(s.Recipients) != 1 {
		t.Errorf("school %+v", s)
	}
	if g := p("gym"); g.Name != "Gym" || len(g.Recipients) != 2 || g.Recipients[1] != "b@gym.example" {
		t.Errorf("gym %+v", g)
	}
	if u := p("other"); u.Name != "" || u.Recipients != nil {
		t.Errorf("unknown site %+v", u)
	}
	bad := writeSites(t, "sites:\n  - siteId: s\n    url: javascript:alert(1)\n")
	if _, err := ReportProfiles(&config.Config{WixSitesFile: bad}); err == nil {
		t.Error("a javascript: site url accepted")
	}
}

func writeSites(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestSitesFileBounded: the sites file is read only if it is a regular file
// of at most MaxSitesFileBytes: a FIFO (which blocked startup until a writer
// came), /dev/zero (read until memory ran out) and an oversized file are
// refused at once with an error naming the sites file.
func TestSitesFileBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("sites: []\n"+strings.Repeat("#", MaxSitesFileBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for name, want := range map[string]string{big: "larger than", fifo: "not a regular file", "/dev/zero": "not a regular file", dir: "not a regular file"} {
		done := make(chan error, 2)
		go func() {
			_, err := ReportProfiles(&config.Config{WixSitesFile: name})
			done <- err
		}()
		go func() {
			done <- addSites(wix.New(wix.Config{}), &config.Config{WixSitesFile: name}, func(string) string { return "k" },
				func(string, float64) wix.Limiter { return wix.NewAdaptiveLimiter(100, 1) })
		}()
		for range 2 {
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "sites file") || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: err = %v, want the sites file %s", name, err, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: reading the sites file hangs", name)
			}
		}
	}
}

// TestSitesFileEntriesChecked: a site listed twice (in the file, or in the
// file and as WIX_SITE_ID), and a ratePerMinute that is negative, NaN,
// infinite or above config.MaxRatePerMinute, are refused naming the entry;
// before, the later entry silently replaced the earlier one's credentials
// and a bad rate was used or ignored.
func TestSitesFileEntriesChecked(t *testing.T) {
	limiter := func(string, float64) wix.Limiter { return wix.NewAdaptiveLimiter(100, 1) }
	getenv := func(string) string { return "key-secret-value" }
	for yaml, want := range map[string]string{
		"sites:\n  - siteId: s1\n    apiKeyEnv: K1\n  - siteId: s1\n    apiKeyEnv: K2\n": "siteId s1 is listed twice",
		"sites:\n  - siteId: s1\n    apiKeyEnv: K1\n    ratePerMinute: -5\n":             "ratePerMinute",
		"sites:\n  - siteId: s1\n    apiKeyEnv: K1\n    ratePerMinute: .nan\n":           "ratePerMinute",
		"sites:\n  - siteId: s1\n    apiKeyEnv: K1\n    ratePerMinute: .inf\n":           "ratePerMinute",
		"sites:\n  - siteId: s1\n    apiKeyEnv: K1\n    ratePerMinute: 1e12\n":           "ratePerMinute",
		"sites:\n  - siteId: ' '\n    apiKeyEnv: K1\n":                                   "siteId is required",
		"sites:\n  - siteId: a/b\n    apiKeyEnv: K1\n":                                   "siteId: want only letters",
	} {
		file := writeSites(t, yaml)
		err := addSites(wix.New(wix.Config{}), &config.Config{WixSitesFile: file}, getenv, limiter)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "key-secret-value") {
			t.Errorf("%q: addSites err = %v, want %q", yaml, err, want)
		}
		if _, err := ReportProfiles(&config.Config{WixSitesFile: file}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: ReportProfiles err = %v, want %q", yaml, err, want)
		}
	}
	file := writeSites(t, "sites:\n  - siteId: s1\n    apiKeyEnv: K1\n")
	err := addSites(wix.New(wix.Config{}), &config.Config{WixSitesFile: file, SiteID: "s1", WixAPIKey: "k"}, getenv, limiter)
	if err == nil || !strings.Contains(err.Error(), "s1") || !strings.Contains(err.Error(), "WIX_SITE_ID") {
		t.Errorf("WIX_SITE_ID also in the sites file: err = %v", err)
	}
}

// TestSitesFileCheckedBeforeTheBroker: a sites file that cannot be used (an
// entry's key variable empty, a bad report profile) fails Start before its
// first side effect: no embedded nats-server starts, no data dir is made.
func TestSitesFileCheckedBeforeTheBroker(t *testing.T) {
	for yaml, want := range map[string]string{
		"sites:\n  - siteId: s1\n    apiKeyEnv: NOT_SET\n":                         "NOT_SET is empty",
		"sites:\n  - siteId: s1\n    apiKeyEnv: K\n    url: javascript:alert(1)\n": "s1",
	} {
		data := filepath.Join(t.TempDir(), "data")
		getenv := func(k string) string { return map[string]string{"K": "k"}[k] }
		cfg, err := config.Parse([]string{"--data-dir", data, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
			"--wix-sites-file", writeSites(t, yaml), "--wix-preflight=false"}, getenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Start(context.Background(), cfg, getenv, zap.NewNop())
		if err == nil {
			_ = a.Stop()
			t.Fatalf("%q: started", yaml)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", yaml, err, want)
		}
		if _, serr := os.Stat(data); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%q: the data dir was made before the sites file was checked (stat: %v)", yaml, serr)
		}
	}
}

// TestNATSFilesCheckedBeforeTheBroker: a NATS credentials file that cannot
// be used (here a FIFO, which blocked the connection) fails Start before the
// embedded nats-server starts and makes the data dir.
func TestNATSFilesCheckedBeforeTheBroker(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "creds")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	data := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Parse([]string{"--data-dir", data, "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--wix-sim-listen", "127.0.0.1:0", "--nats-creds", fifo}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Start(context.Background(), cfg, func(string) string { return "" }, zap.NewNop())
	if err == nil {
		_ = a.Stop()
		t.Fatal("started")
	}
	if !strings.Contains(err.Error(), "credentials file "+fifo) {
		t.Errorf("err = %v, want naming the credentials file", err)
	}
	if _, serr := os.Stat(data); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the data dir was made before the NATS files were checked (stat: %v)", serr)
	}
}
