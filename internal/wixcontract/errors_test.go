package wixcontract_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"groupflow/internal/failure"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// TestLimits covers every documented limit. For limits the client checks
// itself, the over-limit call must fail with a permanent ErrInvalidInput and
// no request; then the same call at the limit is tampered with on the wire to
// go one over, and the simulator's 400 must name the field through the
// client's APIError. Limits the client leaves to Wix go through untouched.
func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: 10}})
	c := ctx(t)
	ids := e.memberIDs(siteA)
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Limits"}, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	gid := g.ID
	s := e.site
	long := func(n int) string { return strings.Repeat("x", n) }
	questions := func(n int, text string) []wix.MembershipQuestion {
		qs := make([]wix.MembershipQuestion, n)
		for i := range qs {
			qs[i].Text = text
		}
		return qs
	}
	rules := make([]wix.GroupRule, 101)
	for i := range rules {
		rules[i] = wix.GroupRule{Title: fmt.Sprint("rule ", i)}
	}
	p100, p101 := &wix.Paging{Limit: 100}, &wix.Paging{Limit: 101}
	setPagingLimit := func(wrapper string) func(*http.Request) {
		return mutateJSON(func(m map[string]any) {
			if wrapper != "" {
				m = obj(m, wrapper)
			}
			m["paging"] = map[string]any{"limit": 101, "offset": 0}
		})
	}
	appendID := func(key string, n int) func(*http.Request) {
		return mutateJSON(func(m map[string]any) {
			m[key] = repeat(ids[1], n)
		})
	}
	tests := []struct {
		name   string
		over   func() error        // over the limit: the client must refuse it (nil: Wix-only limit)
		at     func() error        // the call sent to the simulator
		tamper func(*http.Request) // pushes the call over the limit on the wire
		field  string              // the violated field the 400 must name
	}{
		{"groups.list limit", func() error { _, err := s.ListGroups(c, wix.Paging{Limit: 101}); return err },
			func() error { _, err := s.ListGroups(c, wix.Paging{Limit: 100}); return err }, mutateQuery("limit", "101"), "limit"},
		{"groups.query limit", func() error { _, err := s.QueryGroups(c, wix.Query{Paging: p101}); return err },
			func() error { _, err := s.QueryGroups(c, wix.Query{Paging: p100}); return err }, setPagingLimit("query"), "query.paging.limit"},
		{"groupMembers.list limit", func() error { _, err := s.ListGroupMembers(c, gid, wix.Paging{Limit: 101}); return err },
			func() error { _, err := s.ListGroupMembers(c, gid, wix.Paging{Limit: 100}); return err }, mutateQuery("limit", "101"), "limit"},
		{"groupMembers.query limit", func() error { _, err := s.QueryGroupMembers(c, gid, wix.Query{Paging: p101}); return err },
			func() error { _, err := s.QueryGroupMembers(c, gid, wix.Query{Paging: p100}); return err }, setPagingLimit("query"), "query.paging.limit"},
		{"members.query limit", func() error { _, err := s.QueryMembers(c, wix.MembersQuery{Paging: p101}); return err },
			func() error { _, err := s.QueryMembers(c, wix.MembersQuery{Paging: p100}); return err }, setPagingLimit("query"), "query.paging.limit"},
		{"members.query fieldsets", func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Fieldsets: repeat(wix.FieldsetFull, 4)})
			return err
		}, func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Fieldsets: repeat(wix.FieldsetFull, 3)})
			return err
		},
			mutateJSON(func(m map[string]any) { m["fieldsets"] = repeat(wix.FieldsetFull, 4) }), "fieldsets"},
		{"members.get fieldsets", func() error { _, err := s.GetMember(c, ids[1], repeat(wix.FieldsetFull, 4)...); return err },
			func() error { _, err := s.GetMember(c, ids[1], repeat(wix.FieldsetFull, 3)...); return err },
			mutateQuery("fieldsets", repeat(wix.FieldsetFull, 4)...), "fieldsets"},
		{"groupMembers.add ids", func() error { _, err := s.AddGroupMembers(c, gid, repeat(ids[1], 101)); return err },
			func() error { _, err := s.AddGroupMembers(c, gid, repeat(ids[1], 100)); return err }, appendID("memberIds", 101), "memberIds"},
		{"groupMembers.remove ids", func() error { return s.RemoveGroupMembers(c, gid, repeat(ids[1], 101)) },
			func() error { return s.RemoveGroupMembers(c, gid, repeat(ids[1], 100)) }, mutateQuery("memberIds", repeat(ids[1], 101)...), "memberIds"},
		{"questions.listAnswers ids", func() error { _, err := s.ListAnswers(c, gid, repeat(ids[1], 501), wix.Paging{}); return err },
			func() error { _, err := s.ListAnswers(c, gid, repeat(ids[1], 500), wix.Paging{}); return err }, appendID("memberIds", 501), "memberIds"},
		{"questions.replace count", func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(51, "q")); return err },
			func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(50, "q")); return err },
			mutateJSON(func(m map[string]any) { m["questions"] = append(m["questions"].([]any), map[string]any{"text": "q"}) }), "questions"},
		{"questions.replace text too long", func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(1, long(301))); return err },
			func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(1, long(300))); return err },
			mutateJSON(func(m map[string]any) { m["questions"].([]any)[0].(map[string]any)["text"] = long(301) }), "questions[0].text"},
		{"questions.replace text empty", func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(1, "")); return err },
			func() error { _, err := s.ReplaceMembershipQuestions(c, gid, questions(1, "q")); return err },
			mutateJSON(func(m map[string]any) { m["questions"].([]any)[0].(map[string]any)["text"] = "" }), "questions[0].text"},
		{"rules.replace count", func() error { _, err := s.ReplaceRules(c, gid, rules); return err },
			func() error { _, err := s.ReplaceRules(c, gid, rules[:100]); return err },
			mutateJSON(func(m map[string]any) { m["rules"] = append(m["rules"].([]any), map[string]any{"title": "one more"}) }), "rules"},
		{"groups.create name", func() error { _, err := s.CreateGroup(c, wix.Group{Name: long(101)}, ""); return err },
			func() error { _, err := s.CreateGroup(c, wix.Group{Name: long(100)}, ""); return err },
			mutateJSON(func(m map[string]any) { obj(m, "group")["name"] = long(101) }), "group.name"},
		{"groups.create name empty", func() error { _, err := s.CreateGroup(c, wix.Group{}, ""); return err },
			func() error { _, err := s.CreateGroup(c, wix.Group{Name: "x"}, ""); return err },
			mutateJSON(func(m map[string]any) { delete(obj(m, "group"), "name") }), "group.name"},
		{"groups.update name", func() error { _, err := s.UpdateGroup(c, wix.Group{ID: gid, Name: long(101)}); return err },
			func() error { _, err := s.UpdateGroup(c, wix.Group{ID: gid, Name: long(100)}); return err },
			mutateJSON(func(m map[string]any) { obj(m, "group")["name"] = long(101) }), "group.name"},
		{"emailSubscriptions.query filter", nil,
			func() error {
				_, err := s.QueryEmailSubscriptions(c, []string{"a@example.com"}, wix.Paging{})
				return err
			},
			mutateJSON(func(m map[string]any) { delete(m, "filter") }), "filter"},
		{"emailSubscriptions.query limit", func() error {
			_, err := s.QueryEmailSubscriptions(c, []string{"a@example.com"}, wix.Paging{Limit: 101})
			return err
		}, func() error {
			_, err := s.QueryEmailSubscriptions(c, []string{"a@example.com"}, wix.Paging{Limit: 100})
			return err
		},
			setPagingLimit(""), "paging.limit"},
		// Limits the client leaves to Wix: the call goes through unchanged.
		{"questions.listAnswers limit", nil,
			func() error { _, err := s.ListAnswers(c, gid, nil, wix.Paging{Limit: 101}); return err }, nil, "paging.limit"},
		{"members.query search expression", nil, func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Search: &wix.MembersSearch{Expression: long(101)}})
			return err
		}, nil, "search.expression"},
		{"members.query search fields", nil, func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Search: &wix.MembersSearch{Expression: "a",
				Fields: []string{"loginEmail", "contact.firstName", "contact.lastName", "profile.title", "profile.slug"}}})
			return err
		}, nil, "search.fields"},
		{"members.query unknown fieldset", nil, func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Fieldsets: []string{"EVERYTHING"}})
			return err
		}, nil, "fieldsets"},
		{"members.query phone not filterable", nil, func() error {
			_, err := s.QueryMembers(c, wix.MembersQuery{Filter: map[string]any{"contact.phones": "+1"}})
			return err
		}, nil, "query.filter.contact.phones"},
		{"groups.query filter field", nil, func() error {
			_, err := s.QueryGroups(c, wix.Query{Filter: map[string]any{"membersCount": 3}})
			return err
		}, nil, "query.filter.membersCount"},
		{"groups.query sort field", nil, func() error {
			_, err := s.QueryGroups(c, wix.Query{Sort: []wix.Sort{{FieldName: "slug"}}})
			return err
		}, nil, "query.sort[0].fieldName"},
		{"groups.create teaser", nil, func() error {
			_, err := s.CreateGroup(c, wix.Group{Name: "t", Teaser: long(1001)}, "")
			return err
		}, nil, "group.teaser"},
		{"groups.create privacy", nil, func() error {
			_, err := s.CreateGroup(c, wix.Group{Name: "t", PrivacyStatus: "HIDDEN"}, "")
			return err
		}, nil, "group.privacyStatus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.over != nil {
				before := e.sim.TotalCalls(siteA)
				err := tt.over()
				if !errors.Is(err, wix.ErrInvalidInput) || !failure.IsPermanent(err) {
					t.Fatalf("client should refuse over-limit input: %v", err)
				}
				if n := e.sim.TotalCalls(siteA) - before; n != 0 {
					t.Fatalf("refused input still cost %d calls", n)
				}
			}
			e.tr.setTamper(tt.tamper)
			err := tt.at()
			e.tr.setTamper(nil)
			violated(t, err, tt.field)
		})
	}
	// The 400s above must not have changed the group.
	if got, err := s.GetGroup(c, gid); err != nil || got.MembersCount != 1 || got.Name != "Limits" {
		t.Fatalf("group changed by rejected calls: %+v, %v", got, err)
	}
}

// TestAuth: 401 without Authorization, 403 without wix-site-id, both as raw
// HTTP and through the client's error type, and both permanent.
func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	path := wix.DefaultGroupsPrefix + "/groups?limit=2"
	tests := []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"no Authorization", []string{"wix-site-id", siteA}, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"nothing", nil, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"unknown OAuth token", []string{"Authorization", "OAUTH2.bogus"}, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"no wix-site-id", []string{"Authorization", apiKey}, http.StatusForbidden, "PERMISSION_DENIED"},
		{"ok", []string{"Authorization", apiKey, "wix-site-id", siteA}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run("raw "+tt.name, func(t *testing.T) {
			status, body := e.raw(http.MethodGet, path, nil, tt.hdr...)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.code == "" {
				return
			}
			var wb wixErrorBody
			if err := json.Unmarshal(body, &wb); err != nil || wb.Details.ApplicationError == nil ||
				wb.Details.ApplicationError.Code != tt.code || wb.Message == "" {
				t.Fatalf("body %s (%v)", body, err)
			}
		})
	}
	c := ctx(t)
	for _, tt := range []struct {
		header string
		status int
	}{{"Authorization", http.StatusUnauthorized}, {"wix-site-id", http.StatusForbidden}} {
		t.Run("client without "+tt.header, func(t *testing.T) {
			e.tr.setTamper(func(r *http.Request) { r.Header.Del(tt.header) })
			_, err := e.site.ListGroups(c, wix.Paging{Limit: 2})
			e.tr.setTamper(nil)
			ae := apiErr(t, err, tt.status)
			if !failure.IsPermanent(err) || ae.Code == "" {
				t.Fatalf("want permanent %d with a code: %v", tt.status, err)
			}
			if strings.Contains(err.Error(), apiKey) {
				t.Fatalf("error leaks the API key: %v", err)
			}
		})
	}
}

// recLimiter records Throttled calls and delegates to inner (nil: no pacing).
type recLimiter struct {
	inner wix.Limiter
	mu    sync.Mutex
	calls []time.Duration
}

func (l *recLimiter) Wait(ctx context.Context) error {
	if l.inner == nil {
		return ctx.Err()
	}
	return l.inner.Wait(ctx)
}

func (l *recLimiter) Throttled(retryAfter time.Duration) {
	l.mu.Lock()
	l.calls = append(l.calls, retryAfter)
	l.mu.Unlock()
	if l.inner != nil {
		l.inner.Throttled(retryAfter)
	}
}

func (l *recLimiter) throttles() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.calls...)
}

// Test429 covers the simulator's injected 429 bursts: retried to success
// (also for the non-idempotent create), Retry-After reaches the limiter, and
// a 429 that outlasts the retries is a transient error.
func Test429(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		adaptive   bool // the real AdaptiveLimiter instead of a non-pausing recorder
		retryAfter bool
		faults     wixsim.Faults
		maxRetries int
		wantErr    bool
		want429    int
	}{
		{"burst retried", false, false, wixsim.Faults{Burst429: 3}, 5, false, 3},
		{"burst with Retry-After, adaptive limiter", true, true, wixsim.Faults{Burst429: 1}, 5, false, 1},
		{"persistent 429 is transient", false, false, wixsim.Faults{Burst429For: time.Hour}, 2, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recLimiter{}
			if tt.adaptive {
				rec.inner = wix.NewAdaptiveLimiter(6e6, 100)
			}
			e := newEnv(t, envOpt{
				sim: wixsim.Options{RetryAfter: tt.retryAfter},
				cfg: wix.Config{MaxRetries: tt.maxRetries, NewLimiter: func(string) wix.Limiter { return rec }},
			})
			c := ctx(t)
			e.sim.SetFaults(tt.faults)
			before := len(e.sim.Site(siteA).Groups())
			g, err := e.site.CreateGroup(c, wix.Group{Name: "Throttled"}, "")
			if got := e.sim.Throttled(siteA); got != int64(tt.want429) {
				t.Errorf("simulator answered %d 429s, want %d", got, tt.want429)
			}
			if got := len(rec.throttles()); got != tt.want429 {
				t.Errorf("limiter told of %d 429s, want %d", got, tt.want429)
			}
			if tt.retryAfter {
				for _, ra := range rec.throttles() {
					if ra != time.Second {
						t.Errorf("Retry-After %v reached the limiter, want 1s", ra)
					}
				}
			}
			if tt.wantErr {
				ae := apiErr(t, err, http.StatusTooManyRequests)
				if !ae.Throttled() || failure.IsPermanent(err) || !failure.IsTransient(err) {
					t.Fatalf("a 429 must be transient: %v", err)
				}
				return
			}
			if err != nil || g.Name != "Throttled" {
				t.Fatalf("create after 429s: %+v, %v", g, err)
			}
			if n := len(e.sim.Site(siteA).Groups()) - before; n != 1 {
				t.Fatalf("%d groups created, want exactly 1", n)
			}
		})
	}
}

// TestClassification: injected statuses, without retries, classify as the
// runtime expects.
func TestClassification(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{cfg: wix.Config{MaxRetries: -1}})
	c := ctx(t)
	tests := []struct {
		status    int
		permanent bool
	}{
		{400, true}, {401, true}, {403, true}, {404, true}, {409, true},
		{429, false}, {500, false}, {502, false}, {503, false}, {504, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			e.sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{tt.status: 1}})
			_, err := e.site.ListGroups(c, wix.Paging{})
			e.sim.SetFaults(wixsim.Faults{})
			apiErr(t, err, tt.status)
			if failure.IsPermanent(err) != tt.permanent {
				t.Fatalf("IsPermanent = %v, want %v: %v", !tt.permanent, tt.permanent, err)
			}
		})
	}
	t.Run("connection reset", func(t *testing.T) {
		e.sim.SetFaults(wixsim.Faults{ResetProb: 1})
		_, err := e.site.ListGroups(c, wix.Paging{})
		e.sim.SetFaults(wixsim.Faults{})
		if err == nil || wix.StatusOf(err) != 0 || failure.IsPermanent(err) {
			t.Fatalf("a reset connection must be a transient non-API error: %v", err)
		}
	})
	t.Run("5xx retried to success", func(t *testing.T) {
		e2 := newEnv(t, envOpt{})
		e2.sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{503: 0.3}, Seed: 7})
		for i := 0; i < 10; i++ {
			if _, err := e2.site.ListGroups(c, wix.Paging{Limit: 1}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
