package wixsim

import (
	"fmt"
	"net/http"
	"testing"

	"groupflow/internal/sitematch"
)

// An unknown wix-site-id is refused as Wix refuses a site the API key's
// account does not own (403), and creates nothing: 200 unknown ids leave the
// simulator with the sites it was configured with.
func TestUnknownSitesAreRefusedAndNotCreated(t *testing.T) {
	e := newEnv(t, Options{Sites: []string{testSite}})
	before := e.srv.SiteCount()
	for i := 0; i < 200; i++ {
		site := fmt.Sprintf("unknown-%d", i)
		r := e.call("GET", "/social-groups-proxy/groups/v2/groups?limit=1", nil, "wix-site-id", site)
		if r.status != http.StatusForbidden {
			t.Fatalf("site %s: status %d, want 403 (body %v)", site, r.status, r.body)
		}
	}
	if got := e.srv.SiteCount(); got != before {
		t.Fatalf("site count %d after 200 unknown sites, want %d", got, before)
	}
	if r := e.call("GET", "/social-groups-proxy/groups/v2/groups?limit=1", nil); r.status != http.StatusOK {
		t.Fatalf("configured site: status %d, want 200", r.status)
	}
	// the control endpoint adds a site; it is served from then on
	if r := e.call("PUT", "/_sim/sites/added-site", nil); r.status != http.StatusOK {
		t.Fatalf("add site: status %d", r.status)
	}
	if r := e.call("GET", "/social-groups-proxy/groups/v2/groups?limit=1", nil, "wix-site-id", "added-site"); r.status != http.StatusOK {
		t.Fatalf("added site: status %d, want 200", r.status)
	}
	if r := e.call("GET", "/_sim/sites/never-added/groups", nil); r.status != http.StatusNotFound {
		t.Fatalf("control on unknown site: status %d, want 404", r.status)
	}
	if got := e.srv.SiteCount(); got != before+1 {
		t.Fatalf("site count %d, want %d", got, before+1)
	}
}

// SitesPattern serves every matching site without listing it, each with
// its own rate limit, up to MaxSites; other ids are still refused and create
// nothing.
func TestSitesPattern(t *testing.T) {
	e := newEnv(t, Options{Sites: []string{testSite}, SitesPattern: sitematch.MustParse("bench-*"), MaxSites: 1001, Members: 3, Groups: 1})
	for i := range 1000 {
		site := fmt.Sprintf("bench-%04d", i)
		if r := e.call("GET", "/social-groups-proxy/groups/v2/groups?limit=1", nil, "wix-site-id", site); r.status != http.StatusOK {
			t.Fatalf("site %s: status %d, want 200", site, r.status)
		}
	}
	for _, site := range []string{"bench-over-max", "other-1", "xbench-1"} {
		if r := e.call("GET", "/social-groups-proxy/groups/v2/groups?limit=1", nil, "wix-site-id", site); r.status != http.StatusForbidden {
			t.Errorf("site %s: status %d, want 403", site, r.status)
		}
	}
	if got := e.srv.SiteCount(); got != 1001 {
		t.Fatalf("site count %d, want 1001 (the listed site and 1,000 pattern sites)", got)
	}
	if e.srv.TotalCalls("bench-0999") != 1 {
		t.Errorf("bench-0999 calls %d", e.srv.TotalCalls("bench-0999"))
	}
}
