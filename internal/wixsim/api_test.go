package wixsim

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	G  = "/social-groups-proxy/groups/v2"
	M  = "/social-groups-proxy/members/v2"
	L  = "/social-groups/v2"
	Q  = "/social-groups-proxy/questions/v2/membership-questions"
	MV = "/members/v1/members"
	ES = "/email-marketing/v1/email-subscriptions"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{TokenTTL: time.Hour})
	tokRes := e.ok("POST", "/oauth2/token", map[string]any{"client_id": "app", "client_secret": "s", "instance_id": "site-b", "grant_type": "client_credentials"}, "Authorization", "", "wix-site-id", "")
	tok := str(tokRes, "access_token")
	if tok == "" || num(tokRes, "expires_in") != 3600 {
		t.Fatalf("token response %v", tokRes)
	}
	cases := []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"no authorization", []string{"Authorization", ""}, 401, "UNAUTHENTICATED"},
		{"api key without site", []string{"wix-site-id", ""}, 403, "PERMISSION_DENIED"},
		{"api key with site", nil, 200, ""},
		{"any api key", []string{"Authorization", "x"}, 200, ""},
		{"oauth token, no site header", []string{"Authorization", tok, "wix-site-id", ""}, 200, ""},
		{"bearer oauth token", []string{"Authorization", "Bearer " + tok, "wix-site-id", ""}, 200, ""},
		{"unknown oauth token", []string{"Authorization", "OAUTH2.nope", "wix-site-id", ""}, 401, "UNAUTHENTICATED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call("GET", G+"/groups?limit=1", nil, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status %d want %d: %v", r.status, c.status, r.body)
			}
			if c.code != "" && str(r.body, "details", "applicationError", "code") != c.code {
				t.Fatalf("body %v", r.body)
			}
		})
	}
	// the token maps to its instance: a group made with it lives in site-b
	g := e.ok("POST", G+"/groups", map[string]any{"group": map[string]any{"name": "Token Group"}}, "Authorization", tok, "wix-site-id", "")
	if _, ok := e.srv.Site("site-b").Group(str(g, "group", "id")); !ok {
		t.Fatal("group not created in the token's site")
	}
	if e.srv.Calls("site-b")["groups.create"] != 1 {
		t.Fatalf("calls %v", e.srv.Calls("site-b"))
	}
	e.clock.Advance(time.Hour)
	if r := e.call("GET", G+"/groups", nil, "Authorization", tok, "wix-site-id", ""); r.status != 401 {
		t.Fatalf("expired token: %d", r.status)
	}
	for _, body := range []map[string]any{
		{"client_id": "a", "client_secret": "s", "instance_id": "x", "grant_type": "password"},
		{"client_id": "a", "client_secret": "s", "grant_type": "client_credentials"},
	} {
		if r := e.call("POST", "/oauth2/token", body); r.status != 400 {
			t.Fatalf("bad token request %v: %d", body, r.status)
		}
	}
}

func TestGroupsLifecycleBothPrefixes(t *testing.T) {
	for _, prefix := range []string{G, L} {
		t.Run(prefix, func(t *testing.T) {
			e := newEnv(t, Options{})
			st := e.srv.Site(testSite)
			creator := st.Members()[10].ID
			res := e.ok("POST", prefix+"/groups", map[string]any{"group": map[string]any{"name": "Zoë's Café Crème Club", "privacyStatus": "PRIVATE"}, "creatorId": creator})
			g := get(res, "group")
			id := str(g, "id")
			if str(g, "slug") != "zoe-s-cafe-creme-club" || num(g, "membersCount") != 1 || str(g, "ownerId") != creator || str(g, "privacyStatus") != "PRIVATE" {
				t.Fatalf("created %v", g)
			}
			if str(g, "createdDate") == "" || str(g, "lastActivityDate") != str(g, "createdDate") {
				t.Fatalf("dates %v", g)
			}
			members := e.ok("GET", memberPrefix(prefix)+"/groups/"+id+"/members", nil)
			if num(members, "metadata", "total") != 1 || str(members, "members", 0, "memberId") != creator || str(members, "members", 0, "role", "value") != "ADMIN" {
				t.Fatalf("creator membership %v", members)
			}
			// same name again: unique slug
			g2 := e.ok("POST", prefix+"/groups", map[string]any{"group": map[string]any{"title": "Zoë's Café Crème Club"}})
			if str(g2, "group", "slug") == str(g, "slug") || num(g2, "group", "membersCount") != 1 || str(g2, "group", "ownerId") != st.OwnerID() {
				t.Fatalf("second group %v", g2)
			}
			if got := e.ok("GET", prefix+"/groups/"+id, nil); str(got, "group", "name") != "Zoë's Café Crème Club" {
				t.Fatalf("get %v", got)
			}
			if got := e.ok("GET", prefix+"/groups/slugs/zoe-s-cafe-creme-club", nil); str(got, "group", "id") != id {
				t.Fatalf("by slug %v", got)
			}
			e.clock.Advance(time.Minute)
			up := e.ok("PATCH", prefix+"/groups/"+id, map[string]any{"group": map[string]any{"name": "Yoga Monday", "teaser": "t"}})
			if str(up, "group", "slug") != "yoga-monday" || str(up, "group", "teaser") != "t" || str(up, "group", "lastActivityDate") == str(g, "lastActivityDate") {
				t.Fatalf("update %v", up)
			}
			if r := e.call("GET", prefix+"/groups/slugs/zoe-s-cafe-creme-club", nil); r.status != 404 {
				t.Fatalf("old slug still resolves: %d", r.status)
			}
			if del := e.ok("DELETE", prefix+"/groups/"+id, nil); str(del, "group", "id") != id {
				t.Fatalf("delete %v", del)
			}
			for _, method := range []string{"GET", "DELETE"} {
				r := e.call(method, prefix+"/groups/"+id, nil)
				if r.status != 404 || str(r.body, "details", "applicationError", "code") != "GROUP_NOT_FOUND" || str(r.body, "message") == "" {
					t.Fatalf("%s deleted: %d %v", method, r.status, r.body)
				}
			}
		})
	}
}

func memberPrefix(groupPrefix string) string {
	if groupPrefix == G {
		return M
	}
	return L
}

func TestListAndQueryGroups(t *testing.T) {
	e := newEnv(t, Options{Members: -1, Groups: -1})
	st := e.srv.Site(testSite)
	var ids []string
	for i := range 7 {
		m := st.AddMember(MemberSeed{FirstName: fmt.Sprint("P", i), LoginEmail: fmt.Sprintf("p%d@example.com", i)})
		ids = append(ids, m.ID)
	}
	names := []string{"Yoga Monday", "Pilates Beginners", "Yoga Friday", "Zumba", "Hot Yoga", "Book Club", "Spinning"}
	for i, n := range names {
		e.clock.Advance(time.Hour)
		st.AddGroup(n, "", ids[:i+1]...) // group i has i+1 members
	}
	// paging across boundaries, default sort createdDate DESC
	var seen []string
	for _, off := range []int{0, 3, 6, 9} {
		r := e.ok("GET", fmt.Sprintf("%s/groups?limit=3&offset=%d", G, off), nil)
		wantCount := max(0, min(3, 7-off))
		if num(r, "metadata", "count") != wantCount || num(r, "metadata", "offset") != off || num(r, "metadata", "total") != 7 || len(list(r, "groups")) != wantCount {
			t.Fatalf("offset %d: metadata %v", off, get(r, "metadata"))
		}
		for _, g := range list(r, "groups") {
			seen = append(seen, str(g, "name"))
		}
	}
	if strings.Join(seen, ",") != "Spinning,Book Club,Hot Yoga,Zumba,Yoga Friday,Pilates Beginners,Yoga Monday" {
		t.Fatalf("order %v", seen)
	}
	cases := []struct {
		name  string
		query map[string]any
		want  string
	}{
		{"startsWith title case-insensitive", map[string]any{"filter": map[string]any{"title": map[string]any{"$startsWith": "yoga"}}, "sort": []any{map[string]any{"fieldName": "title"}}}, "Yoga Friday,Yoga Monday"},
		{"eq name shorthand", map[string]any{"filter": map[string]any{"name": "Zumba"}}, "Zumba"},
		{"in", map[string]any{"filter": map[string]any{"title": map[string]any{"$in": []any{"Zumba", "Book Club"}}}, "sort": []any{map[string]any{"fieldName": "name", "order": "DESC"}}}, "Zumba,Book Club"},
		{"ne + most popular", map[string]any{"filter": map[string]any{"title": map[string]any{"$ne": "Spinning"}}, "sort": []any{map[string]any{"fieldName": "membersCount", "order": "DESC"}}, "paging": map[string]any{"limit": 2}}, "Book Club,Hot Yoga"},
		{"idle first", map[string]any{"sort": []any{map[string]any{"fieldName": "recentActivityDate", "order": "ASC"}}, "paging": map[string]any{"limit": 1}}, "Yoga Monday"},
		{"exists", map[string]any{"filter": map[string]any{"title": map[string]any{"$exists": false}}}, ""},
		{"or", map[string]any{"filter": map[string]any{"$or": []any{map[string]any{"title": "Zumba"}, map[string]any{"title": "Spinning"}}}, "sort": []any{map[string]any{"fieldName": "createdDate"}}}, "Zumba,Spinning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.ok("POST", L+"/groups/query", map[string]any{"query": c.query})
			var got []string
			for _, g := range list(r, "groups") {
				got = append(got, str(g, "name"))
			}
			if strings.Join(got, ",") != c.want {
				t.Fatalf("got %v want %s", got, c.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, Options{})
	st := e.srv.Site(testSite)
	gid := st.Groups()[0].ID
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		}
		return out
	}
	qs := func(n int, text string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"text": text}
		}
		return out
	}
	rules := make([]any, 101)
	for i := range rules {
		rules[i] = map[string]any{"title": "r", "description": "d"}
	}
	del := url.Values{"memberIds": ids(101)}.Encode()
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"groups list limit", "GET", G + "/groups?limit=101", nil, "limit"},
		{"groups list negative offset", "GET", G + "/groups?offset=-1", nil, "offset"},
		{"groups query limit", "POST", G + "/groups/query", map[string]any{"query": map[string]any{"paging": map[string]any{"limit": 101}}}, "query.paging.limit"},
		{"groups query unsupported field", "POST", G + "/groups/query", map[string]any{"query": map[string]any{"filter": map[string]any{"slug": "x"}}}, "query.filter.slug"},
		{"groups query unsupported op", "POST", G + "/groups/query", map[string]any{"query": map[string]any{"filter": map[string]any{"title": map[string]any{"$gt": "x"}}}}, "query.filter.title"},
		{"groups query bad sort", "POST", G + "/groups/query", map[string]any{"query": map[string]any{"sort": []any{map[string]any{"fieldName": "slug"}}}}, "query.sort[0].fieldName"},
		{"group name missing", "POST", G + "/groups", map[string]any{"group": map[string]any{}}, "group.name"},
		{"group name too long", "POST", G + "/groups", map[string]any{"group": map[string]any{"name": strings.Repeat("é", 101)}}, "group.name"},
		{"update name too long", "PATCH", G + "/groups/" + gid, map[string]any{"group": map[string]any{"name": strings.Repeat("a", 101)}}, "group.name"},
		{"members list limit", "GET", M + "/groups/" + gid + "/members?limit=101", nil, "limit"},
		{"members query limit", "POST", M + "/groups/" + gid + "/members/query", map[string]any{"query": map[string]any{"paging": map[string]any{"limit": "101"}}}, "query.paging.limit"},
		{"group members filter", "POST", M + "/groups/" + gid + "/members/query", map[string]any{"query": map[string]any{"filter": map[string]any{"joinedDate": "x"}}}, "query.filter.joinedDate"},
		{"add 101", "POST", M + "/groups/" + gid + "/members", map[string]any{"memberIds": ids(101)}, "memberIds"},
		{"add none", "POST", M + "/groups/" + gid + "/members", map[string]any{"memberIds": []string{}}, "memberIds"},
		{"remove 101 query", "DELETE", M + "/groups/" + gid + "/members?" + del, nil, "memberIds"},
		{"remove 101 body", "DELETE", L + "/groups/" + gid + "/members", map[string]any{"memberIds": ids(101)}, "memberIds"},
		{"answers 501", "POST", Q + "/" + gid + "/answers", map[string]any{"memberIds": ids(501)}, "memberIds"},
		{"answers limit", "POST", Q + "/" + gid + "/answers", map[string]any{"paging": map[string]any{"limit": 101}}, "paging.limit"},
		{"questions 51", "PUT", Q + "/" + gid, map[string]any{"questions": qs(51, "q")}, "questions"},
		{"question empty", "PUT", Q + "/" + gid, map[string]any{"questions": qs(1, "")}, "questions[0].text"},
		{"question 301", "PUT", Q + "/" + gid, map[string]any{"questions": qs(2, strings.Repeat("x", 301))}, "questions[0].text"},
		{"rules 101", "PUT", L + "/rules/" + gid, map[string]any{"rules": rules}, "rules"},
		{"site members limit", "POST", MV + "/query", map[string]any{"query": map[string]any{"paging": map[string]any{"limit": 101}}}, "query.paging.limit"},
		{"site members list limit", "GET", MV + "?paging.limit=101", nil, "paging.limit"},
		{"fieldsets > 3", "POST", MV + "/query", map[string]any{"fieldsets": []string{"PUBLIC", "FULL", "EXTENDED", "FULL"}}, "fieldsets"},
		{"unknown fieldset", "GET", MV + "?fieldsets=ALL", nil, "fieldsets"},
		{"members unsupported field", "POST", MV + "/query", map[string]any{"query": map[string]any{"filter": map[string]any{"contact.phones": "1"}}}, "query.filter.contact.phones"},
		{"members status $startsWith", "POST", MV + "/query", map[string]any{"query": map[string]any{"filter": map[string]any{"status": map[string]any{"$startsWith": "A"}}}}, "query.filter.status"},
		{"members sort (not sorting)", "POST", MV + "/query", map[string]any{"query": map[string]any{"sort": []any{map[string]any{"fieldName": "createdDate"}}}}, "query.sort"},
		{"email query without filter", "POST", ES + "/query", map[string]any{"paging": map[string]any{"limit": 10}}, "filter"},
		{"email query in query wrapper", "POST", ES + "/query", map[string]any{"query": map[string]any{"filter": map[string]any{"email": map[string]any{"$in": []string{"a@b.c"}}}}}, "filter"},
		{"email query $eq", "POST", ES + "/query", map[string]any{"filter": map[string]any{"email": map[string]any{"$eq": "a@b.c"}}}, "filter.email"},
		{"email query other field", "POST", ES + "/query", map[string]any{"filter": map[string]any{"subscriptionStatus": map[string]any{"$in": []string{"SUBSCRIBED"}}}}, "filter.subscriptionStatus"},
		{"email upsert bad email", "POST", ES, map[string]any{"subscription": map[string]any{"email": "nope"}}, "subscription.email"},
		{"bulk empty", "POST", ES + "/bulk", map[string]any{"subscriptions": []any{}}, "subscriptions"},
		{"contacts unsupported field", "POST", "/contacts/v4/contacts/query", map[string]any{"query": map[string]any{"filter": map[string]any{"info.name.first": "x"}}}, "query.filter.info.name.first"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(c.method, c.path, c.body)
			if r.status != 400 || violation(r) != c.field {
				t.Fatalf("status %d field %q want 400 %q: %v", r.status, violation(r), c.field, r.body)
			}
			if rule := str(r.body, "details", "validationError", "fieldViolations", 0, "violatedRule"); rule == "" {
				t.Fatalf("no violatedRule: %v", r.body)
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		if r := e.call("POST", G+"/groups/query", "{"); r.status != 400 {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("unknown group 404 everywhere", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"GET", G + "/groups/nope"}, {"GET", M + "/groups/nope/members"}, {"GET", L + "/groups/nope/members"},
			{"POST", M + "/groups/nope/members/query"}, {"GET", Q + "/nope"}, {"GET", L + "/rules/nope"}, {"GET", G + "/groups/slugs/nope"},
		} {
			r := e.call(c.method, c.path, map[string]any{})
			if r.status != 404 || str(r.body, "details", "applicationError", "code") != "GROUP_NOT_FOUND" {
				t.Fatalf("%s %s: %d %v", c.method, c.path, r.status, r.body)
			}
		}
	})
	t.Run("unknown path 404", func(t *testing.T) {
		if r := e.call("GET", "/nope/v1/x", nil); r.status != 404 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func TestGroupMembers(t *testing.T) {
	e := newEnv(t, Options{})
	st := e.srv.Site(testSite)
	all := st.Members()
	g := st.AddGroup("Pilates Beginners", "PUBLIC", all[0].ID)
	base := M + "/groups/" + g.ID + "/members"
	count := func() int { gg, _ := st.Group(g.ID); return gg.MembersCount }

	e.clock.Advance(time.Minute)
	add := e.ok("POST", base, map[string]any{"memberIds": []string{all[1].ID, all[2].ID}})
	if len(list(add, "members")) != 2 || str(add, "members", 0, "role", "value") != "MEMBER" || str(add, "members", 0, "joinedDate") == "" {
		t.Fatalf("add %v", add)
	}
	gg, _ := st.Group(g.ID)
	if gg.MembersCount != 3 || !gg.LastActivityDate.Equal(e.clock.Now()) {
		t.Fatalf("after add: %+v", gg)
	}
	// idempotent: the answer has an entry for every id that is a member
	// afterwards, those that already were included (issue 13 item 6)
	e.clock.Advance(time.Minute)
	again := e.ok("POST", L+"/groups/"+g.ID+"/members", map[string]any{"siteMemberIds": []string{all[1].ID, all[3].ID}})
	if len(list(again, "members")) != 2 || str(again, "members", 0, "memberId") != all[1].ID ||
		str(again, "members", 1, "memberId") != all[3].ID || count() != 4 {
		t.Fatalf("idempotent add %v count %d", again, count())
	}
	if r := e.call("POST", base, map[string]any{"memberIds": []string{"not-a-member"}}); r.status != 404 || count() != 4 {
		t.Fatalf("unknown member: %d %v", r.status, r.body)
	}
	// list: joinedDate DESC
	l := e.ok("GET", base+"?limit=2", nil)
	if str(l, "members", 0, "memberId") != all[3].ID || num(l, "metadata", "total") != 4 || num(l, "metadata", "count") != 2 {
		t.Fatalf("list %v", l)
	}
	l2 := e.ok("GET", L+"/groups/"+g.ID+"/members?limit=2&offset=2", nil)
	if str(l2, "members", 1, "memberId") != all[0].ID || str(l2, "members", 1, "role", "value") != "ADMIN" {
		t.Fatalf("list page 2 %v", l2)
	}
	// query role
	q := e.ok("POST", base+"/query", map[string]any{"query": map[string]any{"filter": map[string]any{"role": map[string]any{"$eq": "ADMIN"}}}})
	if num(q, "metadata", "total") != 1 || str(q, "members", 0, "memberId") != all[0].ID {
		t.Fatalf("query admin %v", q)
	}
	q = e.ok("POST", base+"/query", map[string]any{"query": map[string]any{"sort": []any{map[string]any{"fieldName": "joinedDate", "order": "ASC"}}, "paging": map[string]any{"limit": 1, "offset": 1}}})
	if str(q, "members", 0, "memberId") != all[1].ID || num(q, "metadata", "total") != 4 {
		t.Fatalf("query asc %v", q)
	}
	// remove via query params and via body
	e.clock.Advance(time.Minute)
	if r := e.ok("DELETE", base+"?memberIds="+all[1].ID+"&memberIds="+all[2].ID, nil); len(r) != 0 {
		t.Fatalf("remove response %v", r)
	}
	e.ok("DELETE", L+"/groups/"+g.ID+"/members", map[string]any{"memberIds": []string{all[3].ID, "not-there"}})
	gg, _ = st.Group(g.ID)
	if gg.MembersCount != 1 || !gg.LastActivityDate.Equal(e.clock.Now()) || strings.Join(st.GroupMemberIDs(g.ID), ",") != all[0].ID {
		t.Fatalf("after remove %+v %v", gg, st.GroupMemberIDs(g.ID))
	}
	if got := e.ok("GET", G+"/groups/"+g.ID, nil); num(got, "group", "membersCount") != 1 {
		t.Fatalf("membersCount over HTTP %v", got)
	}
	ms := e.ok("GET", M+"/members/"+all[0].ID+"/memberships", nil)
	found := false
	for _, m := range list(ms, "memberships") {
		found = found || str(m, "groupId") == g.ID
	}
	if !found {
		t.Fatalf("memberships %v", ms)
	}
}

func TestSeededGroupsConsistent(t *testing.T) {
	e := newEnv(t, Options{Members: 300, Groups: 20})
	st := e.srv.Site(testSite)
	for _, g := range st.Groups() {
		ids := st.GroupMemberIDs(g.ID)
		if g.MembersCount != len(ids) || g.MembersCount < 1 {
			t.Fatalf("%s: count %d ids %d", g.Name, g.MembersCount, len(ids))
		}
		gms := st.GroupMembers(g.ID)
		if gms[0].Role != "ADMIN" || gms[0].MemberID != g.OwnerID {
			t.Fatalf("%s: first member %+v owner %s", g.Name, gms[0], g.OwnerID)
		}
		for i := 1; i < len(gms); i++ {
			if gms[i].JoinedDate.Before(gms[i-1].JoinedDate) {
				t.Fatalf("%s: join order", g.Name)
			}
		}
		if g.LastActivityDate.Before(e.clock.Now().Add(-121*24*time.Hour)) || g.LastActivityDate.After(e.clock.Now()) {
			t.Fatalf("%s: last activity %v", g.Name, g.LastActivityDate)
		}
		// paging through the whole list by HTTP gives every member once
		seen := map[string]bool{}
		for off := 0; off < len(ids); off += 100 {
			r := e.ok("GET", fmt.Sprintf("%s/groups/%s/members?limit=100&offset=%d", M, g.ID, off), nil)
			for _, m := range list(r, "members") {
				seen[str(m, "memberId")] = true
			}
		}
		if len(seen) != len(ids) {
			t.Fatalf("%s: paged %d of %d", g.Name, len(seen), len(ids))
		}
	}
}
