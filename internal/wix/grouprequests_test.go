package wix

import (
	"context"
	"net/http"
	"testing"
)

// List Group Requests goes to the documented REST URL
// (https://dev.wix.com/docs/rest/api-reference/wix-groups/create-requests:
// https://www.wixapis.com/social-groups/v2/group-requests), and its prefix is
// configurable like the other Groups APIs.
func TestGroupRequestsPath(t *testing.T) {
	for _, tt := range []struct {
		prefix, want string
	}{
		{"", "/social-groups/v2/group-requests"},
		{"/_api/social-groups-proxy/group-requests/v2/", "/_api/social-groups-proxy/group-requests/v2/group-requests"},
	} {
		f := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			replyJSON(w, 200, []byte(`{"groupRequests":[{"id":"r1","status":"PENDING","group":{"name":"A"}}]}`))
		})
		c := testClient(t, f.srv.URL, func(cfg *Config) { cfg.GroupRequestsPrefix = tt.prefix })
		s := apiKeySite(t, c)
		p, err := s.ListGroupRequests(context.Background(), Paging{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.GroupRequests) != 1 || p.GroupRequests[0].ID != "r1" {
			t.Errorf("page = %+v", p)
		}
		reqs := f.requests()
		if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != tt.want || reqs[0].RawQuery != "limit=10" {
			t.Errorf("prefix %q: requests = %+v, want GET %s?limit=10", tt.prefix, reqs, tt.want)
		}
	}
}
