package wix

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

const (
	testSite   = "site-1f0e"
	testKey    = "IST.secret-api-key-value"
	groupID    = "0e3a7b4c-9c2b-4a57-8f7e-2c1c2b4a6e10"
	ownerID    = "937cd3db-e9be-4980-93c1-a6d767a11050"
	annID      = "5d7a5e4c-6c1b-4b7f-9f3a-0d9b3c2e1f00"
	bobID      = "8e1c4b3a-2d5f-4e6a-9b7c-1a2b3c4d5e6f"
	legacyPref = "/social-groups/v2"
)

// recorded is one request seen by a fake Wix server.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// fakeWix records requests and answers with handler (default: 200 + body).
type fakeWix struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	handler func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeWix(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, n int)) *fakeWix {
	t.Helper()
	f := &fakeWix{t: t, handler: handler}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		n := len(f.reqs)
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.handler(w, r, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWix) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// replyJSON answers status with body.
func replyJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertJSONEqual compares two JSON documents semantically.
func assertJSONEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("fixture is not JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body mismatch\n got: %s\nwant: %s", got, want)
	}
}

// testClient returns a client against base with fast retries and no sleeps.
func testClient(t *testing.T, base string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: base, RequestsPerMinute: 1e6, Burst: 1000, RetryInitialInterval: time.Millisecond, RetryMaxInterval: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c := New(cfg)
	c.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return c
}

func apiKeySite(t *testing.T, c *Client) *Site {
	t.Helper()
	if err := c.AddSite(testSite, Credentials{APIKey: testKey}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Site(testSite)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestGolden(t *testing.T) {
	type tc struct {
		name       string
		call       func(ctx context.Context, s *Site) (any, error)
		method     string
		path       string // with the current prefixes
		legacyPath string // with the legacy prefixes; "" = same as path
		query      string // exact raw query
		request    string // fixture of the expected body, "" = no body
		response   string // fixture served, "" = {}
		check      func(t *testing.T, res any)
	}
	tests := []tc{
		{
			name: "create group",
			call: func(ctx context.Context, s *Site) (any, error) {
				yes, no := true, false
				return s.CreateGroup(ctx, Group{
					ID: "ignored", MembersCount: 7, OwnerID: "ignored",
					Name: "Mountain Hikers", Description: "Weekend hikes around the lake.", Teaser: "Hike with us",
					MemberTitle: "Hikers", PrivacyStatus: PrivacyPrivate,
					Settings: &GroupSettings{WelcomeMemberPostEnabled: &yes, ShowMemberList: &yes, AISpamProtectionEnabled: &no, AllowedToInviteMembers: "OWNER_AND_ADMINS"},
				}, ownerID)
			},
			method: "POST", path: "/social-groups-proxy/groups/v2/groups", legacyPath: legacyPref + "/groups",
			request: "groups_create.request.json", response: "groups_create.response.json",
			check: func(t *testing.T, res any) {
				g := res.(*Group)
				if g.ID != groupID || g.Slug != "mountain-hikers" || g.Name != "Mountain Hikers" || g.PrivacyStatus != "PRIVATE" ||
					g.MembersCount != 1 || g.OwnerID != ownerID || g.MemberTitle != "Hikers" || g.Teaser != "Hike with us" {
					t.Errorf("group = %+v", g)
				}
				if !g.UpdatedDate.Equal(ts("2020-11-06T14:03:50.123Z")) || !g.LastActivityDate.Equal(ts("2020-11-06T14:03:50Z")) {
					t.Errorf("dates = %v %v", g.UpdatedDate, g.LastActivityDate)
				}
				if g.Settings == nil || g.Settings.AISpamProtectionEnabled == nil || *g.Settings.AISpamProtectionEnabled ||
					g.Settings.AllowedToApproveJoinRequests != "OWNER_AND_ADMINS" {
					t.Errorf("settings = %+v", g.Settings)
				}
				var ci struct {
					Image struct{ MediaID string }
				}
				if err := json.Unmarshal(g.CoverImage, &ci); err != nil || ci.Image.MediaID != "11062b_0a1b2c.jpg" {
					t.Errorf("coverImage = %s", g.CoverImage)
				}
			},
		},
		{
			name: "get group legacy fields",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.GetGroup(ctx, "a1b2c3d4-0000-4000-8000-000000000001")
			},
			method: "GET", path: "/social-groups-proxy/groups/v2/groups/a1b2c3d4-0000-4000-8000-000000000001",
			legacyPath: legacyPref + "/groups/a1b2c3d4-0000-4000-8000-000000000001",
			response:   "groups_get_legacy.response.json",
			check: func(t *testing.T, res any) {
				g := res.(*Group)
				if g.Name != "Book Club" || g.PrivacyStatus != "PUBLIC" || g.OwnerID != annID || g.MemberTitle != "Readers" || g.MembersCount != 12 {
					t.Errorf("legacy fallback failed: %+v", g)
				}
				if g.LastActivityDate == nil || !g.LastActivityDate.Equal(ts("2020-05-06T07:08:09.5Z")) {
					t.Errorf("lastActivityDate = %v", g.LastActivityDate)
				}
				st := g.Settings
				if st == nil || st.MembersCanInvite == nil || !*st.MembersCanInvite || st.MembersCanApprove == nil || *st.MembersCanApprove ||
					st.WelcomeMemberPostEnabled == nil || !*st.WelcomeMemberPostEnabled {
					t.Errorf("legacy settings = %+v", st)
				}
				if g.CoverImage != nil || g.UpdatedDate != nil {
					t.Errorf("missing fields should stay zero: %+v", g)
				}
				out, _ := json.Marshal(g)
				var m map[string]any
				_ = json.Unmarshal(out, &m)
				for _, legacy := range []string{"title", "privacyLevel", "recentActivityDate", "createdBy"} {
					if _, ok := m[legacy]; ok {
						t.Errorf("MarshalJSON wrote legacy %q: %s", legacy, out)
					}
				}
				if m["name"] != "Book Club" || m["lastActivityDate"] == nil {
					t.Errorf("MarshalJSON = %s", out)
				}
			},
		},
		{
			name: "list groups",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.ListGroups(ctx, Paging{Limit: 100, Offset: 20})
			},
			method: "GET", path: "/social-groups-proxy/groups/v2/groups", legacyPath: legacyPref + "/groups",
			query: "limit=100&offset=20", response: "groups_list.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*GroupsPage)
				if len(p.Groups) != 2 || p.Groups[1].ID != "a1b2c3d4-0000-4000-8000-000000000001" || p.Groups[1].Name != "" ||
					p.Metadata != (PagingMetadata{Count: 2, Offset: 20, Total: 22}) {
					t.Errorf("page = %+v", p)
				}
			},
		},
		{
			name: "query groups most popular (docs flow)",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryGroups(ctx, Query{Sort: []Sort{{FieldName: "membersCount", Order: "DESC"}}, Paging: &Paging{Limit: 100}})
			},
			method: "POST", path: "/social-groups-proxy/groups/v2/groups/query", legacyPath: legacyPref + "/groups/query",
			request: "groups_query_popular.request.json", response: "groups_query.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*GroupsPage)
				if len(p.Groups) != 1 || p.Groups[0].Name != "Book Club" || p.Groups[0].LastActivityDate == nil || !p.Metadata.TooManyToCount {
					t.Errorf("page = %+v", p)
				}
			},
		},
		{
			name: "query groups idle (docs flow)",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryGroups(ctx, Query{Sort: []Sort{{FieldName: "recentActivityDate", Order: "ASC"}}, Paging: &Paging{Limit: 100, Offset: 0}})
			},
			method: "POST", path: "/social-groups-proxy/groups/v2/groups/query", legacyPath: legacyPref + "/groups/query",
			request: "groups_query_idle.request.json", response: "groups_query.response.json",
		},
		{
			name: "query groups by title",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryGroups(ctx, Query{Filter: map[string]any{"title": map[string]any{"$startsWith": "Mountain"}}, Paging: &Paging{Limit: 50, Offset: 100}})
			},
			method: "POST", path: "/social-groups-proxy/groups/v2/groups/query", legacyPath: legacyPref + "/groups/query",
			request: "groups_query_title.request.json", response: "groups_query.response.json",
		},
		{
			name: "update group",
			call: func(ctx context.Context, s *Site) (any, error) {
				now := time.Now()
				return s.UpdateGroup(ctx, Group{ID: groupID, Name: "Mountain Hikers 2026", PrivacyStatus: PrivacySecret, MembersCount: 9, UpdatedDate: &now})
			},
			method: "PATCH", path: "/social-groups-proxy/groups/v2/groups/" + groupID, legacyPath: legacyPref + "/groups/" + groupID,
			request: "groups_update.request.json", response: "groups_update.response.json",
			check: func(t *testing.T, res any) {
				if g := res.(*Group); g.PrivacyStatus != "SECRET" || g.MembersCount != 3 || g.Slug != "7f3c1a" {
					t.Errorf("group = %+v", g)
				}
			},
		},
		{
			name:   "delete group",
			call:   func(ctx context.Context, s *Site) (any, error) { return s.DeleteGroup(ctx, groupID) },
			method: "DELETE", path: "/social-groups-proxy/groups/v2/groups/" + groupID, legacyPath: legacyPref + "/groups/" + groupID,
			response: "groups_delete.response.json",
			check: func(t *testing.T, res any) {
				if g := res.(*Group); g.ID != groupID {
					t.Errorf("group = %+v", g)
				}
			},
		},
		{
			name: "add group members",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.AddGroupMembers(ctx, groupID, []string{annID, bobID})
			},
			method: "POST", path: "/social-groups-proxy/members/v2/groups/" + groupID + "/members",
			legacyPath: legacyPref + "/groups/" + groupID + "/members",
			request:    "group_members_add.request.json", response: "group_members_add.response.json",
			check: func(t *testing.T, res any) {
				ms := res.([]GroupMember)
				if len(ms) != 2 || ms[0].MemberID != annID || ms[0].Role != RoleMember || !ms[1].JoinedDate.Equal(ts("2026-11-26T09:00:00.25Z")) {
					t.Errorf("members = %+v", ms)
				}
			},
		},
		{
			name: "remove group members (SDK query params)",
			call: func(ctx context.Context, s *Site) (any, error) {
				return nil, s.RemoveGroupMembers(ctx, groupID, []string{annID, bobID})
			},
			method: "DELETE", path: "/social-groups-proxy/members/v2/groups/" + groupID + "/members",
			legacyPath: legacyPref + "/groups/" + groupID + "/members",
			query:      "memberIds=" + annID + "&memberIds=" + bobID,
		},
		{
			name: "list group members",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.ListGroupMembers(ctx, groupID, Paging{Limit: 100})
			},
			method: "GET", path: "/social-groups-proxy/members/v2/groups/" + groupID + "/members",
			legacyPath: legacyPref + "/groups/" + groupID + "/members",
			query:      "limit=100", response: "group_members_list.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*GroupMembersPage)
				want := []GroupMember{
					{MemberID: ownerID, Role: RoleAdmin, JoinedDate: ptr(ts("2020-11-06T14:03:50Z"))},
					{MemberID: annID, Role: RoleMember},
					{MemberID: bobID},
				}
				if !reflect.DeepEqual(p.Members, want) || p.Metadata.Total != 3 {
					t.Errorf("page = %+v", p)
				}
			},
		},
		{
			name: "query group members",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryGroupMembers(ctx, groupID, Query{
					Filter: map[string]any{"role": map[string]any{"$eq": "ADMIN"}},
					Sort:   []Sort{{FieldName: "joinedDate", Order: "DESC"}}, Paging: &Paging{Limit: 100},
				})
			},
			method: "POST", path: "/social-groups-proxy/members/v2/groups/" + groupID + "/members/query",
			legacyPath: legacyPref + "/groups/" + groupID + "/members/query",
			request:    "group_members_query.request.json", response: "group_members_list.response.json",
		},
		{
			name: "query members (docs body)",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryMembers(ctx, MembersQuery{
					Filter:    map[string]any{"loginEmail": map[string]any{"$in": []string{"ann@example.com", "bob@example.com"}}},
					Sorting:   []Sort{{FieldName: "createdDate", Order: "DESC"}},
					Paging:    &Paging{Limit: 100},
					Fieldsets: []string{FieldsetFull},
					Search:    &MembersSearch{Expression: "john", Fields: []string{"loginEmail"}},
				})
			},
			method: "POST", path: "/members/v1/members/query",
			request: "members_query.request.json", response: "members_query.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*MembersPage)
				if len(p.Members) != 2 {
					t.Fatalf("page = %+v", p)
				}
				a, b := p.Members[0], p.Members[1]
				if a.Email() != "ann@example.com" || a.Contact.FirstName != "Ann" || len(a.Contact.Phones) != 1 || a.Contact.Phones[0] != "+972501234567" ||
					a.Profile.Title != "Guide" || a.Status != "APPROVED" || a.ActivityStatus != "ACTIVE" || !a.LoginEmailVerified || a.LastLoginDate == nil {
					t.Errorf("ann = %+v", a)
				}
				if b.Email() != "bob@example.com" || b.LoginEmail != "" || b.Profile.Nickname != "bob" || b.CreatedDate != nil {
					t.Errorf("bob = %+v", b)
				}
			},
		},
		{
			name:   "get member",
			call:   func(ctx context.Context, s *Site) (any, error) { return s.GetMember(ctx, annID, FieldsetFull) },
			method: "GET", path: "/members/v1/members/" + annID, query: "fieldsets=FULL",
			response: "member_get.response.json",
			check: func(t *testing.T, res any) {
				if m := res.(*Member); m.ID != annID || m.Profile.Nickname != "ann" || m.Email() != "" {
					t.Errorf("member = %+v", m)
				}
			},
		},
		{
			name: "query email subscriptions",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryEmailSubscriptions(ctx, []string{"ann@example.com", "bob@example.com", "carol@example.com"}, Paging{Limit: 100})
			},
			method: "POST", path: "/email-marketing/v1/email-subscriptions/query",
			request: "subscriptions_query.request.json", response: "subscriptions_query.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*SubscriptionsPage)
				if len(p.Subscriptions) != 2 || p.Subscriptions[1].DeliverabilityStatus != "BOUNCED" {
					t.Errorf("page = %+v", p)
				}
				for email, want := range map[string]string{"ann@example.com": StatusSubscribed, "BOB@example.com": StatusUnsubscribed, "carol@example.com": StatusNotSet} {
					if got := p.Status(email); got != want {
						t.Errorf("Status(%s) = %s, want %s", email, got, want)
					}
				}
			},
		},
		{
			name: "query email subscriptions legacy key",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryEmailSubscriptions(ctx, []string{"ann@example.com"}, Paging{})
			},
			method: "POST", path: "/email-marketing/v1/email-subscriptions/query",
			request: "subscriptions_query_nopaging.request.json", response: "subscriptions_query_legacy.response.json",
			check: func(t *testing.T, res any) {
				if p := res.(*SubscriptionsPage); p.Status("ann@example.com") != StatusPending {
					t.Errorf("page = %+v", p)
				}
			},
		},
		{
			name:   "list membership questions",
			call:   func(ctx context.Context, s *Site) (any, error) { return s.ListMembershipQuestions(ctx, groupID) },
			method: "GET", path: "/social-groups-proxy/questions/v2/membership-questions/" + groupID,
			response: "questions_list.response.json",
			check: func(t *testing.T, res any) {
				qs := res.([]MembershipQuestion)
				if len(qs) != 2 || !qs[0].Required || qs[1].Required || qs[1].Text != "What are your interests?" {
					t.Errorf("questions = %+v", qs)
				}
			},
		},
		{
			name: "replace membership questions",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.ReplaceMembershipQuestions(ctx, groupID, []MembershipQuestion{{Required: true, Text: "Why do you want to join?"}, {Text: "What are your interests?"}})
			},
			method: "PUT", path: "/social-groups-proxy/questions/v2/membership-questions/" + groupID,
			request: "questions_replace.request.json", response: "questions_list.response.json",
			check: func(t *testing.T, res any) {
				if qs := res.([]MembershipQuestion); len(qs) != 2 || qs[0].ID == "" {
					t.Errorf("questions = %+v", qs)
				}
			},
		},
		{
			name: "list answers",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.ListAnswers(ctx, groupID, []string{annID}, Paging{Limit: 50})
			},
			method: "POST", path: "/social-groups-proxy/questions/v2/membership-questions/" + groupID + "/answers",
			request: "answers.request.json", response: "answers.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*AnswersPage)
				q := "q1000000-0000-4000-8000-000000000002"
				if len(p.MemberAnswers) != 1 || p.MemberAnswers[0].Answers[0].ID != q || p.Questions[q].Text != "What are your interests?" || p.Metadata.Total != 1 {
					t.Errorf("page = %+v", p)
				}
			},
		},
		{
			name:   "list rules",
			call:   func(ctx context.Context, s *Site) (any, error) { return s.ListRules(ctx, groupID) },
			method: "GET", path: "/social-groups/v2/rules/" + groupID, response: "rules_list.response.json",
			check: func(t *testing.T, res any) {
				if rs := res.([]GroupRule); len(rs) != 2 || rs[1] != (GroupRule{Title: "No spam"}) {
					t.Errorf("rules = %+v", rs)
				}
			},
		},
		{
			name: "replace rules",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.ReplaceRules(ctx, groupID, []GroupRule{{"Be kind", "No insults."}, {"No spam", "No ads."}})
			},
			method: "PUT", path: "/social-groups/v2/rules/" + groupID,
			request: "rules_replace.request.json", response: "rules_replace.response.json",
			check: func(t *testing.T, res any) {
				if rs := res.([]GroupRule); len(rs) != 2 || rs[1].Description != "No ads." {
					t.Errorf("rules = %+v", rs)
				}
			},
		},
		{
			name: "query contacts",
			call: func(ctx context.Context, s *Site) (any, error) {
				return s.QueryContacts(ctx, Query{Filter: map[string]any{"info.phones.phone": map[string]any{"$in": []string{"0501234567", "+972501234567"}}}, Paging: &Paging{Limit: 100}})
			},
			method: "POST", path: "/contacts/v4/contacts/query",
			request: "contacts_query.request.json", response: "contacts_query.response.json",
			check: func(t *testing.T, res any) {
				p := res.(*ContactsPage)
				want := []Contact{
					{ID: annID, FirstName: "Ann", LastName: "Lee", Emails: []string{"ann@example.com", "ann.lee@work.example"}, Phones: []string{"+972501234567", "03-555-0000"}},
					{ID: "c0c0c0c0-0000-4000-8000-000000000003", Emails: []string{"only@example.com"}},
				}
				if !reflect.DeepEqual(p.Contacts, want) || p.Metadata.Total != 2 {
					t.Errorf("contacts = %+v, metadata %+v", p.Contacts, p.Metadata)
				}
			},
		},
	}

	prefixes := []struct {
		name   string
		legacy bool
	}{{"current", false}, {"legacy", true}}
	for _, pc := range prefixes {
		for _, tt := range tests {
			t.Run(pc.name+"/"+tt.name, func(t *testing.T) {
				resp := []byte("{}")
				if tt.response != "" {
					resp = fixture(t, tt.response)
				}
				f := newFakeWix(t, func(w http.ResponseWriter, _ *http.Request, _ int) { replyJSON(w, 200, resp) })
				c := testClient(t, f.srv.URL, func(cfg *Config) {
					if pc.legacy {
						cfg.GroupsPrefix, cfg.GroupMembersPrefix = LegacyGroupsPrefix, LegacyGroupMembersPrefix
					}
				})
				s := apiKeySite(t, c)
				var counter CallCounter
				res, err := tt.call(WithCallCounter(context.Background(), &counter), s)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				reqs := f.requests()
				if len(reqs) != 1 || counter.Load() != 1 {
					t.Fatalf("got %d requests, counter %d; want 1", len(reqs), counter.Load())
				}
				r := reqs[0]
				wantPath := tt.path
				if pc.legacy && tt.legacyPath != "" {
					wantPath = tt.legacyPath
				}
				if r.Method != tt.method || r.Path != wantPath || r.RawQuery != tt.query {
					t.Errorf("request = %s %s?%s, want %s %s?%s", r.Method, r.Path, r.RawQuery, tt.method, wantPath, tt.query)
				}
				if got := r.Header.Get("Authorization"); got != testKey {
					t.Errorf("Authorization = %q", got)
				}
				if got := r.Header.Values("wix-site-id"); len(got) != 1 || got[0] != testSite {
					t.Errorf("wix-site-id = %q", got)
				}
				if r.Header.Get("wix-account-id") != "" {
					t.Errorf("wix-account-id must not be sent")
				}
				if tt.request == "" {
					if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
						t.Errorf("unexpected body %q (Content-Type %q)", r.Body, r.Header.Get("Content-Type"))
					}
				} else {
					if ct := r.Header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type = %q", ct)
					}
					assertJSONEqual(t, r.Body, fixture(t, tt.request))
				}
				if tt.check != nil {
					tt.check(t, res)
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }
