package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestReportAllGroupsHostileWixDuplicateGroupAcrossPages: a List Groups
// answer that names a group of an earlier page again (a hostile or buggy
// Wix, or groups created between pages shifting a createdDate-sorted list)
// must not list that group twice in the report nor count it twice in its
// total.
func TestReportAllGroupsHostileWixDuplicateGroupAcrossPages(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	sim := wixsim.New(wixsim.Options{Members: 50, Groups: 150})
	site := sim.Site("test-site")
	g := len(site.Groups())
	var first atomic.Value
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Query().Get("limit") == "" {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var page map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil {
			if gs, ok := page["groups"].([]any); ok {
				switch r.URL.Query().Get("offset") {
				case "", "0":
					if len(gs) > 0 {
						first.Store(gs[0])
					}
				default:
					if f := first.Load(); f != nil {
						page["groups"] = append(gs, f)
						body, _ = json.Marshal(page)
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(client, env.JS, env.Log)))
	w := env.Watch(env.Subjects.Events())
	env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": "dup-groups", "allGroups": true, "top": 5, "idle": 5})
	m := w.Next(60*time.Second, testenv.ForCommand("dup-groups"))
	if m.Subject != env.Subjects.Event(messages.EvtReportGenerated) {
		t.Fatalf("report failed: %s %s", m.Subject, m.Data)
	}
	ev := testenv.Decode[messages.ReportGenerated](t, m)
	ids := map[string]int{}
	for _, rg := range ev.Groups {
		ids[rg.GroupID]++
	}
	if len(ev.Groups) != g || ev.TotalGroups != g || len(ids) != g {
		t.Fatalf("report of %d groups: %d rows (%d distinct), total %d; want %d each", g, len(ev.Groups), len(ids), ev.TotalGroups, g)
	}
}
