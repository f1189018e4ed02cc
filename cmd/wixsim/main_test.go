package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{"WIXSIM_RATE_PER_MINUTE": "12000", "WIXSIM_MEMBERS": "10", "WIXSIM_ERROR_RATE": "503=0.05"}
	c, err := parseConfig([]string{"--members", "20", "--error-rate", "500=0.1", "--latency", "5ms", "--retry-after", "--token-ttl", "1h"},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.opts.Sites) != 2 || c.opts.Sites[0] != "demo-site" {
		t.Fatalf("default sites %v", c.opts.Sites)
	}
	if c.opts.Members != 20 || c.opts.RatePerMinute != 12000 || !c.opts.RetryAfter || c.opts.TokenTTL != time.Hour ||
		c.faults.Latency != 5*time.Millisecond || c.faults.ErrorRates[500] != 0.1 || c.faults.ErrorRates[503] != 0.05 || c.listen != "127.0.0.1:8090" {
		t.Fatalf("config %+v faults %+v", c.opts, c.faults)
	}
	for _, bad := range [][]string{{"--error-rate", "500"}, {"--error-rate", "700=0.1"}, {"--nope"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

func TestRunServesAndSavesOnShutdown(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--members", "20", "--groups", "3", "--state-file", state, "--sites", "s1"},
			func(string) string { return "" }, &out, func(u string) { urls <- u })
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", url+"/social-groups-proxy/groups/v2/groups", nil)
	req.Header.Set("Authorization", "k")
	req.Header.Set("wix-site-id", "s1")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("request: %v %v", err, res)
	}
	res.Body.Close()
	req.Header.Set("wix-site-id", "not-configured")
	if res, err = http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown site: %v %v, want 403", err, res)
	}
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("wix-site-id")) {
		t.Fatalf("no demo hint: %s", out.String())
	}
	if fi, err := os.Stat(state); err != nil || fi.Size() == 0 {
		t.Fatalf("state file not written: %v", err)
	}
}

// A bench of many sites names them by pattern or by count.
func TestParseManySites(t *testing.T) {
	c, err := parseConfig([]string{"--sites", "a", "--sites-pattern", "bench-*", "--max-sites", "2000", "--site-count", "3", "--site-prefix", "s-"},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.opts.Sites, ","); got != "a,s-0000,s-0001,s-0002" {
		t.Errorf("sites %s", got)
	}
	if !c.opts.SitesPattern.Match("bench-7") || c.opts.SitesPattern.Match("other") || c.opts.MaxSites != 2000 {
		t.Errorf("pattern %v max %d", c.opts.SitesPattern, c.opts.MaxSites)
	}
	for _, bad := range [][]string{{"--sites-pattern", "a,,b"}, {"--site-count", "-1"}} {
		if _, err := parseConfig(bad, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
