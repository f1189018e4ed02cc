package wixcontract_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// TestOAuth: app credentials → one token for many concurrent calls, sent raw
// in Authorization without wix-site-id; the token reaches the instance's
// site; when the simulator expires it, the client renews it once and the
// calls succeed.
func TestOAuth(t *testing.T) {
	t.Parallel()
	creds := wix.Credentials{AppID: "app-id", AppSecret: "app-secret", InstanceID: siteA}
	e := newEnv(t, envOpt{creds: &creds, sim: wixsim.Options{TokenTTL: time.Hour}})
	c := ctx(t)

	var mu sync.Mutex
	var auths, siteHeaders []string
	e.tr.setTamper(func(r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			return
		}
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		siteHeaders = append(siteHeaders, r.Header.Get("wix-site-id"))
		mu.Unlock()
	})
	concurrently := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := e.site.ListGroups(c, wix.Paging{Limit: 1}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	concurrently(16)
	if n := e.tr.count("/oauth2/token"); n != 1 {
		t.Fatalf("%d token requests for 16 concurrent calls, want 1", n)
	}
	mu.Lock()
	for i := range auths {
		if !strings.HasPrefix(auths[i], "OAUTH2.") || auths[i] != auths[0] || siteHeaders[i] != "" {
			t.Fatalf("call %d: Authorization %q, wix-site-id %q", i, auths[i], siteHeaders[i])
		}
	}
	first := auths[0]
	mu.Unlock()

	// The token's site is the instance: a group created over OAuth is in
	// site A's data.
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Made by the app"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.sim.Site(siteA).Group(g.ID); !ok {
		t.Fatal("group created over OAuth is not in the instance's site")
	}

	// Expire the token on the simulator's clock: the next calls get 401,
	// the client fetches one new token and retries.
	e.clock.Advance(time.Hour + time.Minute)
	mu.Lock()
	auths = nil
	mu.Unlock()
	concurrently(8)
	if n := e.tr.count("/oauth2/token"); n != 2 {
		t.Fatalf("%d token requests after expiry, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	last := auths[len(auths)-1]
	if last == first || !strings.HasPrefix(last, "OAUTH2.") {
		t.Fatalf("token not renewed: %q", last)
	}
	if got := e.sim.TotalCalls(siteA); got < 16+1+8 {
		t.Fatalf("simulator counted %d calls on the instance's site", got)
	}
}
