package wix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"groupflow/internal/failure"
	"groupflow/internal/sitematch"
)

const accountKey = "acct-secret-key-123"

// newAccountClient serves every call with an empty group list and records
// the requests.
func newAccountClient(t *testing.T, max int) (*Client, *fakeWix, *fakeClock) {
	t.Helper()
	f := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		replyJSON(w, 200, []byte(`{"groups":[]}`))
	})
	clock := newFakeClock()
	c := New(Config{BaseURL: f.srv.URL, RequestsPerMinute: 60000, Registerer: prometheus.NewRegistry()})
	c.now = clock.Now
	if err := c.UseAccount(AccountSites{APIKey: accountKey, Allow: sitematch.MustParse("acct-*"), MaxSites: max, IdleAfter: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return c, f, clock
}

func listOnce(t *testing.T, s *Site) {
	t.Helper()
	if _, err := s.ListGroups(context.Background(), Paging{Limit: 1}); err != nil {
		t.Fatal(err)
	}
}

func checkRefusal(t *testing.T, err, want error, mentions string) {
	t.Helper()
	switch {
	case !errors.Is(err, want):
		t.Fatalf("err = %v, want %v", err, want)
	case !failure.IsPermanent(err):
		t.Errorf("%v is not permanent", err)
	case !strings.Contains(err.Error(), mentions):
		t.Errorf("%q does not mention %q", err, mentions)
	case strings.Contains(err.Error(), accountKey):
		t.Errorf("error leaks the account key: %v", err)
	}
}

// An account site is served with the account key and its own wix-site-id;
// a site the pattern does not match is refused, permanently, without
// calling Wix; added sites keep their own credentials and do not count.
func TestAccountSitesAllowlist(t *testing.T) {
	c, f, _ := newAccountClient(t, 10)
	if err := c.AddSite("listed", Credentials{APIKey: "listed-key"}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Site("acct-1")
	if err != nil {
		t.Fatal(err)
	}
	listOnce(t, s)
	l, _ := c.Site("listed")
	listOnce(t, l)
	reqs := f.requests()
	if got := reqs[0].Header; got.Get("Authorization") != accountKey || got.Get("wix-site-id") != "acct-1" {
		t.Errorf("account site headers: auth set %v, site %q", got.Get("Authorization") != "", got.Get("wix-site-id"))
	}
	if got := reqs[1].Header; got.Get("Authorization") != "listed-key" || got.Get("wix-site-id") != "listed" {
		t.Errorf("listed site lost its own key")
	}
	for _, id := range []string{"other", "xacct-1", "", strings.Repeat("acct-", 100)} {
		_, err := c.Site(id)
		checkRefusal(t, err, ErrSiteNotAllowed, "--wix-account-sites")
		if len(err.Error()) > 400 {
			t.Errorf("error of a long id is %d bytes", len(err.Error()))
		}
	}
	if n := c.AccountSiteCount(); n != 1 {
		t.Errorf("%d account sites, want 1 (refused and listed ones do not count)", n)
	}
	if len(f.requests()) != 2 {
		t.Errorf("refused sites called Wix")
	}
	// Without the account mode an unknown site is ErrUnknownSite, as before.
	_, err = New(Config{}).Site("acct-1")
	checkRefusal(t, err, ErrUnknownSite, "acct-1")
}

// Beyond MaxSites a new site is refused with an error naming the limit;
// sites idle for IdleAfter are released and the slot is free again; a
// released site still held by a caller keeps working, and one site never has
// two limiters.
func TestAccountSitesMaxAndEviction(t *testing.T) {
	c, _, clock := newAccountClient(t, 2)
	a, _ := c.Site("acct-a")
	b, _ := c.Site("acct-b")
	listOnce(t, a)
	_, err := c.Site("acct-c")
	checkRefusal(t, err, ErrTooManySites, "--wix-max-sites 2")
	if again, _ := c.Site("acct-a"); again != a {
		t.Fatal("a held site was made again")
	}

	// A call in progress keeps its site.
	b.inflight.Add(1)
	clock.Advance(2 * time.Minute)
	cs, err := c.Site("acct-c")
	if err != nil {
		t.Fatalf("after a's idle time: %v", err)
	}
	if c.AccountSiteCount() != 2 {
		t.Fatalf("%d account sites, want b (busy) and c", c.AccountSiteCount())
	}
	_, err = c.Site("acct-d")
	checkRefusal(t, err, ErrTooManySites, "maximum")
	b.inflight.Add(-1)

	// a was released; made again on demand, with a new limiter. The old
	// Site value of a, used by a caller that kept it, shares the new one's.
	clock.Advance(2 * time.Minute)
	a2, err := c.Site("acct-a")
	if err != nil || a2 == a {
		t.Fatalf("a made again: %v (same value: %v)", err, a2 == a)
	}
	if a.limiterNow() != a2.limiter {
		t.Error("the released Site of a does not use the current limiter of a")
	}
	series := make(chan prometheus.Metric, 100)
	c.metrics.requests.Collect(series)
	close(series)
	if n := len(series); n != 0 {
		t.Errorf("%d request series left after a's release, want 0", n)
	}
	listOnce(t, a)
	_ = cs
}

// BenchmarkAccountSiteMemory reports the heap bytes one account site costs
// in the registry (its Site, auth and default limiter), with 1,000 sites.
func BenchmarkAccountSiteMemory(b *testing.B) {
	const sites = 1000
	var per float64
	for range b.N {
		c := New(Config{BaseURL: "https://127.0.0.1:1"})
		if err := c.UseAccount(AccountSites{APIKey: accountKey, Allow: sitematch.MustParse("*"), MaxSites: sites}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for i := range sites {
			if _, err := c.Site(fmt.Sprintf("5f1c3a52-7d1e-4c1b-9a0e-%012d", i)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per += float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / sites
		runtime.KeepAlive(c)
	}
	b.ReportMetric(per/float64(b.N), "heap_bytes/site")
}
