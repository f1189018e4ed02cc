package wix

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestSiteStats: every attempt is counted, 429s apart; nothing waits on the
// limiter once the calls are done; the adaptive limiter's rate is reported.
func TestSiteStats(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`{"group":{"id":"g1","name":"Yoga"}}`))
	}))
	defer srv.Close()
	site := apiKeySite(t, testClient(t, srv.URL, nil))
	if _, err := site.GetGroup(context.Background(), "g1"); err != nil {
		t.Fatal(err)
	}
	if got := site.Stats(); got != (SiteStats{Calls: 2, Throttled: 1, Waiting: 0}) {
		t.Fatalf("stats = %+v, want 2 calls, 1 throttled, 0 waiting", got)
	}
	if rate, instances := site.LimiterRate(); rate <= 0 || instances != 0 {
		t.Fatalf("limiter rate = %v/min, %d instances", rate, instances)
	}
}
