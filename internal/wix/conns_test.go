package wix

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDefaultClientCapsConnections: when more calls are due at once than
// MaxConnsPerHost (thousands of sites' tokens coming due together), the
// default client queues them on at most MaxConnsPerHost connections instead
// of dialling one per call and closing most of them after.
func TestDefaultClientCapsConnections(t *testing.T) {
	const calls = MaxConnsPerHost + 64
	var dialled, inHandler atomic.Int64
	full := make(chan struct{})
	release := make(chan struct{})
	var fullOnce sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if inHandler.Add(1) == MaxConnsPerHost {
			fullOnce.Do(func() { close(full) })
		}
		<-release
		replyJSON(w, 200, []byte(`{"group":{"id":"g1"}}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := apiKeySite(t, testClient(t, srv.URL, nil))
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.GetGroup(context.Background(), "g1")
			errs <- err
		}()
	}
	<-full // MaxConnsPerHost calls are in the handler, the others queued
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if n := dialled.Load(); n > MaxConnsPerHost {
		t.Fatalf("%d connections dialled for %d concurrent calls, want at most %d", n, calls, MaxConnsPerHost)
	}
}
