package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestReportTopAndIdleHostileWixDuplicateGroupAcrossPages: a Query Groups
// answer that names a group of an earlier page again (a hostile or buggy
// Wix, or member counts and activity changing between the pages of a list
// sorted on them) must not list that group twice among the top or idle
// groups, nor leave another out for it.
func TestReportTopAndIdleHostileWixDuplicateGroupAcrossPages(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	sim := wixsim.New(wixsim.Options{Members: 50, Groups: 150})
	site := sim.Site("test-site")
	g := len(site.Groups())
	var first sync.Map // sort field → the first group of its first page
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/groups/query") {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var q struct {
			Query struct {
				Sort   []struct{ FieldName string } `json:"sort"`
				Paging struct{ Offset int }         `json:"paging"`
			} `json:"query"`
		}
		_ = json.Unmarshal(raw, &q)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var page map[string]any
		if rec.Code == http.StatusOK && len(q.Query.Sort) == 1 && json.Unmarshal(body, &page) == nil {
			if gs, ok := page["groups"].([]any); ok {
				field := q.Query.Sort[0].FieldName
				if q.Query.Paging.Offset == 0 && len(gs) > 0 {
					first.Store(field, gs[0])
				} else if f, ok := first.Load(field); ok {
					page["groups"] = append([]any{f}, gs...)
					body, _ = json.Marshal(page)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(client, env.JS, env.Log)))
	w := env.Watch(env.Subjects.Events())
	env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": "dup-top", "top": g, "idle": g})
	m := w.Next(60*time.Second, testenv.ForCommand("dup-top"))
	if m.Subject != env.Subjects.Event(messages.EvtReportGenerated) {
		t.Fatalf("report failed: %s %s", m.Subject, m.Data)
	}
	ev := testenv.Decode[messages.ReportGenerated](t, m)
	top, idle := map[string]int{}, map[string]int{}
	for _, r := range ev.Top {
		top[r.GroupID]++
	}
	for _, r := range ev.Idle {
		idle[r.GroupID]++
	}
	if len(ev.Top) != g || len(top) != g || len(ev.Idle) != g || len(idle) != g {
		t.Fatalf("%d groups: top %d rows (%d distinct), idle %d rows (%d distinct)", g, len(ev.Top), len(top), len(ev.Idle), len(idle))
	}
}

// TestReportTopHostileWixEndlessPages: a Query Groups that answers its
// first page at every offset, saying more follow, ends the report
// (permanent) after maxIdlePages pages that bring no new group, instead of
// being read for ever now that repeated groups are skipped.
func TestReportTopHostileWixEndlessPages(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	sim := wixsim.New(wixsim.Options{Members: 50, Groups: 150})
	sim.Site("test-site")
	var queries atomic.Int64
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/groups/query") {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		queries.Add(1)
		raw, _ := io.ReadAll(r.Body)
		var q map[string]map[string]any
		_ = json.Unmarshal(raw, &q)
		q["query"]["paging"] = map[string]any{"limit": 100, "offset": 0}
		raw, _ = json.Marshal(q)
		serveFirstPageForEver(w, r, sim.Handler(), raw)
	})
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(client, env.JS, env.Log)))
	w := env.Watch(env.Subjects.Events())
	env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": "endless-top", "top": 1000})
	m := w.Next(60*time.Second, testenv.ForCommand("endless-top"))
	if m.Subject != env.Subjects.Event(messages.EvtCommandFailed) {
		t.Fatalf("got %s %s", m.Subject, m.Data)
	}
	f := testenv.Decode[messages.CommandFailed](t, m)
	if f.Kind != messages.FailurePermanent || !strings.Contains(f.Reason, "its paging does not advance") {
		t.Fatalf("command_failed %+v", f)
	}
	if n := queries.Load(); n != maxIdlePages+1 {
		t.Fatalf("%d Query Groups, want %d", n, maxIdlePages+1)
	}
}

// TestReportAllGroupsHostileWixEndlessPages: a List Groups that answers its
// first (short) page at every offset while its total says a million follow
// — MorePages now reads past a short page when the total counts more — ends
// the allGroups report (permanent) after maxIdlePages pages that bring no
// new group, instead of being read for ever: readAll skips the repeated
// groups, so its maxReportGroups bound was never reached.
func TestReportAllGroupsHostileWixEndlessPages(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	sim := wixsim.New(wixsim.Options{Members: 50, Groups: 5})
	sim.Site("test-site")
	var lists atomic.Int64
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Query().Get("limit") == "" || !strings.HasSuffix(r.URL.Path, "/groups") {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		lists.Add(1)
		q := r.URL.Query()
		q.Del("offset")
		r.URL.RawQuery = q.Encode()
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		var page map[string]any
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil {
			gs, _ := page["groups"].([]any)
			page["metadata"] = map[string]any{"count": len(gs), "total": 1000000}
			body, _ = json.Marshal(page)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(NewGenerateReport(client, env.JS, env.Log)))
	w := env.Watch(env.Subjects.Events())
	env.PublishJSON(messages.CmdGenerateReport, map[string]any{"id": "endless-all", "allGroups": true, "top": 5, "idle": 5})
	m := w.Next(60*time.Second, testenv.ForCommand("endless-all"))
	if m.Subject != env.Subjects.Event(messages.EvtCommandFailed) {
		t.Fatalf("got %s %s", m.Subject, m.Data)
	}
	f := testenv.Decode[messages.CommandFailed](t, m)
	if f.Kind != messages.FailurePermanent || !strings.Contains(f.Reason, "its paging does not advance") {
		t.Fatalf("command_failed %+v", f)
	}
	if n := lists.Load(); n != maxIdlePages+1 {
		t.Fatalf("%d List Groups, want %d", n, maxIdlePages+1)
	}
}
