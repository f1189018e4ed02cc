package wixsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// maxSiteIDLen bounds the site ids the control endpoint adds.
const maxSiteIDLen = 200

// controlMux serves the /_sim/ endpoints: no auth, no rate limit, not counted.
//
//	GET  /_sim/health
//	GET  /_sim/calls?site=            per-op counters, total, throttled (all sites without ?site)
//	POST /_sim/calls/reset
//	GET  /_sim/requests?site=&n=      latest requests (default n=50)
//	GET  /_sim/faults                 current faults
//	PUT  /_sim/faults                 replace faults (Faults JSON; durations "150ms")
//	DELETE /_sim/faults               turn faults off
//	GET  /_sim/ratelimit              {perMinute, burst, retryAfter}
//	PUT  /_sim/ratelimit              same body
//	GET  /_sim/sites                  site ids
//	PUT  /_sim/sites/{site}           serve this site from now on (seeded on first use)
//	GET  /_sim/sites/{site}/groups    group summary (404 for a site not served)
//	POST /_sim/sites/{site}/reset?members=&groups=  (adds the site if not served)
//	POST /_sim/save                   write the state file
//	POST /_sim/member-refresh-token   {site, memberId?, clientId} → {refreshToken} (memberId default: the site owner)
//	PUT  /_sim/auth                   {strict: bool} member authentication mode (auth.go)
func (s *Server) controlMux() *http.ServeMux {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) }
	bad := func(w http.ResponseWriter, msg string) {
		e := badRequest(msg)
		writeJSON(w, e.status, e.body)
	}
	siteStats := func(id string) map[string]any {
		return map[string]any{"site": id, "calls": s.Calls(id), "total": s.TotalCalls(id), "throttled": s.Throttled(id)}
	}
	mux.HandleFunc("POST /_sim/member-refresh-token", s.memberRefreshTokenControl)
	mux.HandleFunc("PUT /_sim/auth", s.authControl)
	mux.HandleFunc("GET /_sim/health", func(w http.ResponseWriter, r *http.Request) { ok(w, map[string]any{"ok": true}) })
	mux.HandleFunc("GET /_sim/calls", func(w http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("site"); id != "" {
			ok(w, siteStats(id))
			return
		}
		all := map[string]any{}
		for _, id := range s.SiteIDs() {
			all[id] = siteStats(id)
		}
		ok(w, map[string]any{"sites": all})
	})
	mux.HandleFunc("POST /_sim/calls/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCalls()
		ok(w, map[string]any{})
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		n := 50
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil {
				bad(w, "n must be an integer")
				return
			}
		}
		reqs := s.RecentRequests(r.URL.Query().Get("site"), n)
		if reqs == nil {
			reqs = []RequestLog{}
		}
		ok(w, map[string]any{"requests": reqs})
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) { ok(w, s.Faults()) })
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			bad(w, "bad faults: "+err.Error())
			return
		}
		s.SetFaults(f)
		ok(w, s.Faults())
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.SetFaults(Faults{})
		ok(w, s.Faults())
	})
	type rl struct {
		PerMinute  float64 `json:"perMinute"`
		Burst      int     `json:"burst"`
		RetryAfter *bool   `json:"retryAfter,omitempty"`
	}
	current := func() rl {
		s.mu.Lock()
		defer s.mu.Unlock()
		ra := s.retryAfter
		return rl{PerMinute: s.perMinute, Burst: s.burst, RetryAfter: &ra}
	}
	mux.HandleFunc("GET /_sim/ratelimit", func(w http.ResponseWriter, r *http.Request) { ok(w, current()) })
	mux.HandleFunc("PUT /_sim/ratelimit", func(w http.ResponseWriter, r *http.Request) {
		var v rl
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil || v.PerMinute < 0 || v.Burst < 0 {
			bad(w, "body must be {perMinute >= 0, burst >= 0, retryAfter?}")
			return
		}
		s.SetRateLimit(v.PerMinute, v.Burst)
		if v.RetryAfter != nil {
			s.SetRetryAfter(*v.RetryAfter)
		}
		ok(w, current())
	})
	mux.HandleFunc("GET /_sim/sites", func(w http.ResponseWriter, r *http.Request) {
		ids := s.SiteIDs()
		slices.Sort(ids)
		ok(w, map[string]any{"sites": ids})
	})
	mux.HandleFunc("PUT /_sim/sites/{site}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("site")
		if id == "" || len(id) > maxSiteIDLen {
			bad(w, "site id must be 1 to 200 characters")
			return
		}
		s.AddSite(id)
		ok(w, map[string]any{"site": id})
	})
	mux.HandleFunc("GET /_sim/sites/{site}/groups", func(w http.ResponseWriter, r *http.Request) {
		e := s.lookup(r.PathValue("site"))
		if e == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "site not served: add it with PUT /_sim/sites/{site}", "details": map[string]any{}})
			return
		}
		var out []any
		for _, g := range e.site.Groups() {
			out = append(out, map[string]any{"id": g.ID, "name": g.Name, "slug": g.Slug, "privacyStatus": g.PrivacyStatus,
				"membersCount": g.MembersCount, "lastActivityDate": wixTime(g.LastActivityDate)})
		}
		if out == nil {
			out = []any{}
		}
		ok(w, map[string]any{"groups": out})
	})
	mux.HandleFunc("POST /_sim/sites/{site}/reset", func(w http.ResponseWriter, r *http.Request) {
		m, err1 := strconv.Atoi(r.URL.Query().Get("members"))
		g, err2 := strconv.Atoi(r.URL.Query().Get("groups"))
		if err1 != nil || err2 != nil || m < 0 || g < 0 {
			bad(w, "members and groups query params must be integers >= 0")
			return
		}
		s.Site(r.PathValue("site")).Reset(m, g)
		ok(w, map[string]any{})
	})
	mux.HandleFunc("POST /_sim/save", func(w http.ResponseWriter, r *http.Request) {
		if s.opts.StateFile == "" {
			bad(w, "no state file configured")
			return
		}
		if err := s.Save(); err != nil {
			e := systemError(http.StatusInternalServerError)
			e.body["message"] = err.Error()
			writeJSON(w, e.status, e.body)
			return
		}
		ok(w, map[string]any{"file": s.opts.StateFile})
	})
	return mux
}
