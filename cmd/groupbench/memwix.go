package main

import (
	"net/http"
	"net/http/httptest"
)

// memTransport answers HTTP requests by calling an http.Handler in process,
// without a socket: with the Wix simulator's handler it is Wix answered in
// memory, so that scenario 2 can tell groupflow's own cost from the cost of
// the simulator's HTTP round trips.
type memTransport struct{ h http.Handler }

// RoundTrip serves req with the handler and returns the recorded response.
// It closes req.Body, as a RoundTripper must.
func (t memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	// What a server sees: a body (possibly empty), the request URI, a peer.
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "in-memory:0"
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// inMemoryWix makes the transport of the Wix client from the simulator's
// handler (see app.Options.SimTransport).
func inMemoryWix(sim http.Handler) http.RoundTripper { return memTransport{h: sim} }
