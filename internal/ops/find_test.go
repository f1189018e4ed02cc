package ops

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/wix"
)

// A group named like an id ("2024-2025": hex digits and dashes) is found
// by its name though Wix answers 400 to it as a group id (the SDK gives
// every groupId the GUID format; a non-GUID id is a validation error, not
// a 404). Before, find stopped at the 400: "get group: ...".
func TestFindFallsBackToTheNameWhenWixRefusesTheID(t *testing.T) {
	site := fakeWixSite(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/groups/2024-2025"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"groupId has an invalid format","details":{"validationError":{"fieldViolations":[{"field":"groupId","description":"must be a valid GUID"}]}}}`))
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups/query"):
			_, _ = w.Write([]byte(`{"groups":[{"id":"0b0e5b6e-1111-4222-8333-444455556666","name":"2024-2025","membersCount":3}],"metadata":{"count":1,"offset":0,"total":1}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	g, _, err := find(context.Background(), site, "2024-2025")
	if err != nil || g == nil || g.ID != "0b0e5b6e-1111-4222-8333-444455556666" {
		t.Fatalf("find(2024-2025) = %+v, %v; want the group of that name", g, err)
	}
}

// A 400 on the group id that is not the name's case — no group has ref as
// its name either — is Wix's refusal, reported as such: a real GUID
// refused for another reason (a bad request the operator should see) must
// not read as "no group with this id or name".
func TestFindReportsTheRefusalWhenNoNameMatches(t *testing.T) {
	const id = "0b0e5b6e-1111-4222-8333-444455556666"
	site := fakeWixSite(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/groups/"+id):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"app not installed on this site"}`))
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups/query"):
			_, _ = w.Write([]byte(`{"groups":[],"metadata":{"count":0,"offset":0,"total":0}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	_, _, err := find(context.Background(), site, id)
	if err == nil || errors.Is(err, ErrNoGroup) || wix.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "get group") {
		t.Fatalf("find(%s) error %v; want Wix's 400 on get group", id, err)
	}
}

// A Query Groups that answers the same short page at every offset while
// its total says a million follow (offset paging reads past a short page
// when the total counts more) is read maxIdleFindPages+1 times, not until
// the request's minute runs out — a Wix call each, out of the site's rate.
func TestFindEndsWhenPagesBringNoNewGroup(t *testing.T) {
	var queries atomic.Int64
	site := fakeWixSite(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups/query") {
			queries.Add(1)
			_, _ = w.Write([]byte(`{"groups":[{"id":"0b0e5b6e-1111-4222-8333-444455556666","name":"Other","membersCount":3}],"metadata":{"count":1,"total":1000000}}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := find(ctx, site, "Yoga")
	if err == nil || ctx.Err() != nil {
		t.Fatalf("find(Yoga) error %v (ctx %v); want an error before the deadline", err, ctx.Err())
	}
	if n := queries.Load(); n != maxIdleFindPages+1 {
		t.Fatalf("%d Query Groups, want %d", n, maxIdleFindPages+1)
	}
}

type oneSite struct{ s *wix.Site }

func (o oneSite) Site(string) (*wix.Site, error) { return o.s, nil }

// List likewise: the same 1-group page at every offset, total 1,000,000,
// is read maxIdleFindPages+1 times, not MaxScan (5,000) times.
func TestListEndsWhenPagesBringNoNewGroup(t *testing.T) {
	var queries atomic.Int64
	site := fakeWixSite(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups/query") {
			queries.Add(1)
			_, _ = w.Write([]byte(`{"groups":[{"id":"0b0e5b6e-1111-4222-8333-444455556666","name":"Other","membersCount":3}],"metadata":{"count":1,"total":1000000}}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	d := &Discovery{Sites: oneSite{site}, DefaultSite: "s"}
	_, err := d.List(context.Background(), ListRequest{Prefix: "Yoga"})
	if err == nil {
		t.Fatalf("List answered; want an error")
	}
	if n := queries.Load(); n != maxIdleFindPages+1 {
		t.Fatalf("%d Query Groups, want %d", n, maxIdleFindPages+1)
	}
}

// fakeWixSite is site "s" of a Wix client whose Wix is answer (an
// httptest server, closed with the test), its rate limit out of the way.
func fakeWixSite(t *testing.T, answer http.HandlerFunc) *wix.Site {
	t.Helper()
	srv := httptest.NewServer(answer)
	t.Cleanup(srv.Close)
	c := wix.New(wix.Config{BaseURL: srv.URL, RequestsPerMinute: 1e6, Burst: 1000})
	if err := c.AddSite("s", wix.Credentials{APIKey: "k"}); err != nil {
		t.Fatal(err)
	}
	site, err := c.Site("s")
	if err != nil {
		t.Fatal(err)
	}
	return site
}
