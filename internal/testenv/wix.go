package testenv

import (
	"testing"
	"time"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// WixEnv is a Wix simulator on a loopback port and a real Wix client pointed
// at it, for one site.
type WixEnv struct {
	Sim    *wixsim.Server
	URL    string
	Client *wix.Client
	SiteID string
}

// Site returns the simulator's state of the test site.
func (w *WixEnv) Site() *wixsim.Site { return w.Sim.Site(w.SiteID) }

// Calls returns how many requests the simulator served for the test site.
func (w *WixEnv) Calls() int64 { return w.Sim.TotalCalls(w.SiteID) }

// TestSiteID is the site StartWix's simulator serves and its client uses.
const TestSiteID = "test-site"

// StartWix starts a simulator (unlimited rate unless opts sets one; seeded
// by opts: Members/Groups -1 give an empty site the test fills itself) and a
// real client for site TestSiteID with fast retries. The simulator serves
// TestSiteID and the sites of opts.Sites only.
func StartWix(t testing.TB, opts wixsim.Options) *WixEnv {
	t.Helper()
	opts.Sites = append(append([]string{}, opts.Sites...), TestSiteID)
	sim := wixsim.New(opts)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start wixsim: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	c := wix.New(wix.Config{
		BaseURL:              url,
		RequestsPerMinute:    1e6,
		Burst:                1000,
		RetryInitialInterval: 5 * time.Millisecond,
		RetryMaxInterval:     50 * time.Millisecond,
		Timeout:              10 * time.Second,
	})
	const site = TestSiteID
	if err := c.AddSite(site, wix.Credentials{APIKey: "test-key"}); err != nil {
		t.Fatal(err)
	}
	return &WixEnv{Sim: sim, URL: url, Client: c, SiteID: site}
}
