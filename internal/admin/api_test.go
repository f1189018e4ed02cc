package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"groupflow/internal/ops"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
)

// TestDiscoveryAPISharesTheBound: GET /api/groups and /api/groups/{ref}
// take one of the instance's ops.MaxDiscoveryInWork discovery slots, the
// ones the ops subjects take too: with all in use they answer 503 at once
// instead of piling up Wix calls; with one free they do the request.
func TestDiscoveryAPISharesTheBound(t *testing.T) {
	srv := newTestServer("127.0.0.1:0")
	disc := &ops.Discovery{Sites: noSites{}, DefaultSite: "s"}
	srv.MountAPI(Ops{Progress: runtime.NewProgressRegistry("i", nil), Discovery: disc})
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var releases []func()
	for range ops.MaxDiscoveryInWork {
		release, ok := disc.Admit()
		if !ok {
			t.Fatal("a slot refused below the bound")
		}
		releases = append(releases, release)
	}
	for _, path := range []string{"/api/groups", "/api/groups/g1"} {
		if code := get(path); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s with every slot in use = %d, want 503", path, code)
		}
	}
	releases[0]()
	releases[0]() // a second release gives nothing back twice
	if code := get("/api/groups"); code == http.StatusServiceUnavailable {
		t.Errorf("GET /api/groups with a slot free = %d", code)
	}
	if _, ok := disc.Admit(); !ok {
		t.Error("the slot the request used was not given back")
	}
	if _, ok := disc.Admit(); ok {
		t.Error("a slot beyond the bound was given: a release counted twice")
	}
}

// noSites knows no site: a discovery request that runs fails (502).
type noSites struct{}

func (noSites) Site(string) (*wix.Site, error) { return nil, errors.New("no site") }
