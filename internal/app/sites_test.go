package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
