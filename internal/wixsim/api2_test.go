package wixsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

// scenario builds a small exact site.
func scenario(t *testing.T, e *env) (st *Site, zoe, jose, ann, anon Member) {
	st = e.srv.Site(testSite)
	st.Reset(0, 0)
	zoe = st.AddMember(MemberSeed{FirstName: "Zoë", LastName: "Martin", LoginEmail: "Zoe.Martin@example.com", Emails: []string{"zoe@work.example"}, Phones: []string{"+1 212-555-0142"}})
	jose = st.AddMember(MemberSeed{FirstName: "José", LastName: "García", Nickname: "yogi", LoginEmail: "jose@example.com", Phones: []string{"(415) 555-0101"}, Private: true})
	ann = st.AddMember(MemberSeed{FirstName: "Ann", LastName: "Martin", Nickname: "yogi", LoginEmail: "ann@example.org"})
	anon = st.AddMember(MemberSeed{FirstName: "Nobody"})
	return
}

func TestMembersQuery(t *testing.T) {
	e := newEnv(t, Options{})
	_, zoe, jose, ann, anon := scenario(t, e)
	ids := func(r map[string]any) string {
		var out []string
		for _, m := range list(r, "members") {
			switch str(m, "id") {
			case zoe.ID:
				out = append(out, "zoe")
			case jose.ID:
				out = append(out, "jose")
			case ann.ID:
				out = append(out, "ann")
			case anon.ID:
				out = append(out, "anon")
			}
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name   string
		filter map[string]any
		sort   []any
		want   string
	}{
		{"all", nil, nil, "zoe,jose,ann,anon"},
		{"eq shorthand", map[string]any{"contact.lastName": "Martin"}, nil, "zoe,ann"},
		{"loginEmail eq case-insensitive", map[string]any{"loginEmail": map[string]any{"$eq": "ZOE.MARTIN@example.com"}}, nil, "zoe"},
		{"id in (index)", map[string]any{"id": map[string]any{"$in": []any{ann.ID, zoe.ID, "nope"}}}, nil, "zoe,ann"},
		{"_id alias", map[string]any{"_id": jose.ID}, nil, "jose"},
		{"contactId in", map[string]any{"contactId": map[string]any{"$in": []any{jose.ContactID}}}, nil, "jose"},
		{"nin", map[string]any{"id": map[string]any{"$nin": []any{zoe.ID, jose.ID}}}, nil, "ann,anon"},
		{"ne", map[string]any{"profile.nickname": map[string]any{"$ne": "yogi"}}, nil, "zoe,anon"},
		{"exists false", map[string]any{"loginEmail": map[string]any{"$exists": false}}, nil, "anon"},
		{"startsWith insensitive", map[string]any{"contact.firstName": map[string]any{"$startsWith": "zo"}}, nil, "zoe"},
		{"gt", map[string]any{"contact.firstName": map[string]any{"$gt": "N"}}, nil, "zoe,anon"},
		{"lte", map[string]any{"contact.firstName": map[string]any{"$lte": "Ann"}}, nil, "ann"},
		{"privacy", map[string]any{"privacyStatus": "PRIVATE"}, nil, "jose"},
		{"and", map[string]any{"$and": []any{map[string]any{"contact.lastName": "Martin"}, map[string]any{"profile.nickname": "yogi"}}}, nil, "ann"},
		{"or", map[string]any{"$or": []any{map[string]any{"contact.firstName": "José"}, map[string]any{"contact.firstName": "Ann"}}}, nil, "jose,ann"},
		{"not", map[string]any{"$not": map[string]any{"profile.nickname": "yogi"}}, nil, "zoe,anon"},
		{"two ops on one field", map[string]any{"contact.firstName": map[string]any{"$gte": "A", "$lt": "O"}}, nil, "jose,ann,anon"},
		{"sort nickname desc", map[string]any{"id": map[string]any{"$in": []any{zoe.ID, jose.ID, ann.ID}}}, []any{map[string]any{"fieldName": "profile.nickname", "order": "DESC"}}, "zoe,jose,ann"},
		{"sort lastName", nil, []any{map[string]any{"fieldName": "contact.lastName"}, map[string]any{"fieldName": "contact.firstName", "order": "DESC"}}, "anon,jose,zoe,ann"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := map[string]any{"paging": map[string]any{"limit": 100}}
			if c.filter != nil {
				q["filter"] = c.filter
			}
			if c.sort != nil {
				q["sorting"] = c.sort
			}
			r := e.ok("POST", MV+"/query", map[string]any{"query": q})
			if got := ids(r); got != c.want {
				t.Fatalf("got %s want %s", got, c.want)
			}
			if num(r, "metadata", "total") != len(strings.Split(c.want, ",")) {
				t.Fatalf("metadata %v", get(r, "metadata"))
			}
		})
	}
	t.Run("fieldsets", func(t *testing.T) {
		for _, c := range []struct {
			name      string
			fieldsets any
			email     bool
			contact   bool
			status    string
		}{
			{"default PUBLIC", nil, false, false, "UNKNOWN"},
			{"PUBLIC", []string{"PUBLIC"}, false, false, "UNKNOWN"},
			{"EXTENDED", []string{"EXTENDED"}, true, false, "APPROVED"},
			{"FULL array", []string{"FULL"}, true, true, "APPROVED"},
			{"FULL plain string", "FULL", true, true, "APPROVED"},
			{"PUBLIC+FULL", []string{"PUBLIC", "FULL"}, true, true, "APPROVED"},
		} {
			body := map[string]any{"query": map[string]any{"filter": map[string]any{"id": zoe.ID}}}
			if c.fieldsets != nil {
				body["fieldsets"] = c.fieldsets
			}
			m := get(e.ok("POST", MV+"/query", body), "members", 0)
			if (str(m, "loginEmail") != "") != c.email || (get(m, "contact") != nil) != c.contact || str(m, "status") != c.status {
				t.Fatalf("%s: %v", c.name, m)
			}
			if str(m, "profile", "nickname") != "Zoë M." || str(m, "contactId") != zoe.ContactID || str(m, "createdDate") == "" {
				t.Fatalf("%s: public fields %v", c.name, m)
			}
			if c.contact {
				if strings.Join(strs(get(m, "contact", "emails")), ",") != "zoe.martin@example.com,zoe@work.example" ||
					strings.Join(strs(get(m, "contact", "phones")), ",") != "+1 212-555-0142" || str(m, "contact", "firstName") != "Zoë" {
					t.Fatalf("%s: contact %v", c.name, get(m, "contact"))
				}
			}
		}
	})
	t.Run("list and get", func(t *testing.T) {
		r := e.ok("GET", MV+"?paging.limit=2&paging.offset=2&fieldsets=FULL", nil)
		if num(r, "metadata", "total") != 4 || num(r, "metadata", "count") != 2 || str(r, "members", 0, "id") != ann.ID || get(r, "members", 0, "contact") == nil {
			t.Fatalf("list %v", r)
		}
		g := e.ok("GET", MV+"/"+jose.ID+"?fieldsets=EXTENDED", nil)
		if str(g, "member", "loginEmail") != "jose@example.com" || str(g, "member", "privacyStatus") != "PRIVATE" {
			t.Fatalf("get %v", g)
		}
		if r := e.call("GET", MV+"/nope", nil); r.status != 404 {
			t.Fatalf("get unknown %d", r.status)
		}
	})
	t.Run("search", func(t *testing.T) {
		r := e.ok("POST", MV+"/query", map[string]any{"search": map[string]any{"expression": "zoe", "fields": []string{"contact.firstName"}}})
		if ids(r) != "zoe" {
			t.Fatalf("search %v", r)
		}
	})
	t.Run("paging default 50", func(t *testing.T) {
		e.srv.Site(testSite).Reset(120, 0)
		r := e.ok("POST", MV+"/query", map[string]any{})
		if num(r, "metadata", "count") != 50 || num(r, "metadata", "total") != 120 {
			t.Fatalf("default paging %v", get(r, "metadata"))
		}
		r = e.ok("POST", MV+"/query", map[string]any{"query": map[string]any{"paging": map[string]any{"limit": 100, "offset": 100}}})
		if num(r, "metadata", "count") != 20 || num(r, "metadata", "offset") != 100 {
			t.Fatalf("last page %v", get(r, "metadata"))
		}
	})
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestEmailSubscriptions(t *testing.T) {
	e := newEnv(t, Options{})
	st, zoe, _, _, _ := scenario(t, e)
	st.SetSubscription(zoe.LoginEmail, "SUBSCRIBED")
	st.SetSubscription("ann@example.org", "UNSUBSCRIBED")
	q := e.ok("POST", ES+"/query", map[string]any{"filter": map[string]any{"email": map[string]any{"$in": []string{"ann@example.org", "ZOE.MARTIN@example.com", "nobody@example.com"}}}})
	subs := list(q, "subscriptions")
	if len(subs) != 2 || str(subs, 0, "subscriptionStatus") != "UNSUBSCRIBED" || str(subs, 1, "email") != "zoe.martin@example.com" || str(subs, 1, "id") == "" || num(q, "metadata", "total") != 2 {
		t.Fatalf("query %v", q)
	}
	up := e.ok("POST", ES, map[string]any{"subscription": map[string]any{"email": "new@example.com", "subscriptionStatus": "PENDING"}})
	if str(up, "subscription", "subscriptionStatus") != "PENDING" || str(up, "subscription", "deliverabilityStatus") != "NOT_SET" {
		t.Fatalf("upsert %v", up)
	}
	e.ok("POST", ES, map[string]any{"subscription": map[string]any{"email": "new@example.com", "subscriptionStatus": "SUBSCRIBED"}})
	if s, ok := st.Subscription("new@example.com"); !ok || s != "SUBSCRIBED" {
		t.Fatalf("after upsert %s %v", s, ok)
	}
	got := e.ok("GET", ES+"/"+str(up, "subscription", "id"), nil)
	if str(got, "emailSubscription", "email") != "new@example.com" {
		t.Fatalf("get %v", got)
	}
	bulk := e.ok("POST", ES+"/bulk", map[string]any{"subscriptions": []any{
		map[string]any{"email": "a@example.com", "subscriptionStatus": "SUBSCRIBED"},
		map[string]any{"email": "broken"},
		map[string]any{"email": "ann@example.org", "subscriptionStatus": "SUBSCRIBED"},
	}})
	if num(bulk, "metadata", "totalSuccess") != 2 || num(bulk, "metadata", "totalFailure") != 1 || get(bulk, "results", 1, "error") == nil || num(bulk, "results", 2, "originalIndex") != 2 {
		t.Fatalf("bulk %v", bulk)
	}
	if s, _ := st.Subscription("ann@example.org"); s != "SUBSCRIBED" {
		t.Fatalf("bulk did not update: %s", s)
	}
}

func TestQuestionsAndAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	st, zoe, jose, ann, _ := scenario(t, e)
	g := st.AddGroup("Hot Yoga", "PRIVATE", zoe.ID, jose.ID, ann.ID)
	put := e.ok("PUT", Q+"/"+g.ID, map[string]any{"questions": []any{
		map[string]any{"text": "What classes do you like?", "required": true},
		map[string]any{"text": "How did you hear about us?"},
	}})
	qs := list(put, "questions")
	if len(qs) != 2 || str(qs, 0, "id") == "" || get(qs, 0, "required") != true {
		t.Fatalf("put %v", put)
	}
	q1, q2 := str(qs, 0, "id"), str(qs, 1, "id")
	if l := e.ok("GET", Q+"/"+g.ID, nil); len(list(l, "questions")) != 2 || str(l, "questions", 1, "text") != "How did you hear about us?" {
		t.Fatalf("list %v", l)
	}
	st.SetAnswer(g.ID, zoe.ID, q1, "I love pilates and hot yoga")
	st.SetAnswer(g.ID, jose.ID, q1, "Zumba, spinning")
	st.SetAnswer(g.ID, jose.ID, q2, "Instagram")
	all := e.ok("POST", Q+"/"+g.ID+"/answers", map[string]any{})
	if num(all, "metadata", "total") != 2 || len(get(all, "questions").(map[string]any)) != 2 {
		t.Fatalf("answers %v", all)
	}
	one := e.ok("POST", Q+"/"+g.ID+"/answers", map[string]any{"memberIds": []string{zoe.ID, ann.ID}})
	if num(one, "metadata", "total") != 1 || str(one, "memberAnswers", 0, "answers", 0, "text") != "I love pilates and hot yoga" ||
		str(one, "memberAnswers", 0, "answers", 0, "id") != q1 || str(one, "questions", q1, "text") != "What classes do you like?" || get(one, "questions", q2) != nil {
		t.Fatalf("filtered answers %v", one)
	}
	page := e.ok("POST", Q+"/"+g.ID+"/answers", map[string]any{"paging": map[string]any{"limit": 1, "offset": 1}})
	if num(page, "metadata", "count") != 1 || str(page, "memberAnswers", 0, "memberId") != jose.ID {
		t.Fatalf("paged answers %v", page)
	}
	// replace keeping q1 drops q2 and its answers
	e.ok("PUT", Q+"/"+g.ID, map[string]any{"questions": []any{map[string]any{"id": q1, "text": "What classes do you like?"}}})
	after := e.ok("POST", Q+"/"+g.ID+"/answers", map[string]any{"memberIds": []string{jose.ID}})
	if len(list(after, "memberAnswers", 0, "answers")) != 1 {
		t.Fatalf("after replace %v", after)
	}
	if r := e.ok("PUT", Q+"/"+g.ID, map[string]any{"questions": []any{}}); len(list(r, "questions")) != 0 {
		t.Fatalf("clear %v", r)
	}
}

func TestRules(t *testing.T) {
	e := newEnv(t, Options{})
	st, zoe, _, _, _ := scenario(t, e)
	g := st.AddGroup("Book Club", "", zoe.ID)
	if r := e.ok("GET", L+"/rules/"+g.ID, nil); r["rules"] == nil || len(list(r, "rules")) != 0 {
		t.Fatalf("empty rules %v", r)
	}
	put := e.ok("PUT", L+"/rules/"+g.ID, map[string]any{"rules": []any{map[string]any{"title": "Be kind", "description": "Always"}}})
	if str(put, "groupId") != g.ID || str(put, "rules", 0, "title") != "Be kind" {
		t.Fatalf("put %v", put)
	}
	if r := st.Rules(g.ID); len(r) != 1 || r[0].Description != "Always" {
		t.Fatalf("rules %v", r)
	}
}

func TestContactsQuery(t *testing.T) {
	e := newEnv(t, Options{})
	st, zoe, jose, _, _ := scenario(t, e)
	lead := st.AddContact(ContactSeed{FirstName: "Lead", Phones: []string{"+44 20 7946 0123"}, Emails: []string{"lead@example.net"}})
	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"formatted phone", map[string]any{"info.phones.phone": "+1 212-555-0142"}, []string{zoe.ContactID}},
		// info.phones.phone holds the phone as entered: its E.164 form is
		// info.phones.e164Phone, and matches only there (Contacts v4 filters).
		{"e164 phone", map[string]any{"info.phones.e164Phone": map[string]any{"$in": []any{"+14155550101", "+442079460123"}}}, []string{jose.ContactID, lead}},
		{"e164 on phone field", map[string]any{"info.phones.phone": map[string]any{"$in": []any{"+12125550142", "+442079460123"}}}, nil},
		{"entered on e164 field", map[string]any{"info.phones.e164Phone": "+1 212-555-0142"}, nil},
		{"primary phone", map[string]any{"primaryInfo.phone": map[string]any{"$eq": "+1 212-555-0142"}}, []string{zoe.ContactID}},
		{"primary phone e164", map[string]any{"primaryInfo.phone": map[string]any{"$eq": "+12125550142"}}, nil},
		{"email any", map[string]any{"info.emails.email": "ZOE@work.example"}, []string{zoe.ContactID}},
		{"primary email", map[string]any{"primaryInfo.email": "zoe@work.example"}, nil},
		{"id", map[string]any{"id": map[string]any{"$in": []any{lead}}}, []string{lead}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.ok("POST", "/contacts/v4/contacts/query", map[string]any{"query": map[string]any{"filter": c.filter, "paging": map[string]any{"limit": 10}}})
			var got []string
			for _, ct := range list(r, "contacts") {
				got = append(got, str(ct, "id"))
			}
			if !slices.Equal(got, c.want) || num(r, "pagingMetadata", "total") != len(c.want) {
				t.Fatalf("got %v want %v (%v)", got, c.want, r)
			}
		})
	}
	r := e.ok("POST", "/contacts/v4/contacts/query", map[string]any{"query": map[string]any{"filter": map[string]any{"id": zoe.ContactID}}})
	c := get(r, "contacts", 0)
	if str(c, "info", "name", "first") != "Zoë" || str(c, "info", "phones", "items", 0, "e164Phone") != "+12125550142" ||
		str(c, "info", "phones", "items", 0, "countryCode") != "US" || str(c, "info", "emails", "items", 0, "tag") != "MAIN" ||
		str(c, "primaryInfo", "email") != "zoe.martin@example.com" || str(c, "primaryInfo", "phone") != "+1 212-555-0142" {
		t.Fatalf("contact shape %v", c)
	}
}

func TestRateLimit(t *testing.T) {
	// 12000/minute = 200/s, burst 3; the fake clock is frozen so the bucket never refills.
	e := newEnv(t, Options{RatePerMinute: 12000, Burst: 3, RetryAfter: true})
	for i := range 3 {
		e.ok("GET", G+"/groups?limit=1", nil)
		_ = i
	}
	r := e.call("GET", G+"/groups?limit=1", nil)
	if r.status != 429 || str(r.body, "details", "applicationError", "code") != "RESOURCE_EXHAUSTED" || str(r.body, "message") != "Too many requests" || r.header.Get("Retry-After") != "1" {
		t.Fatalf("429 %d %v %v", r.status, r.body, r.header)
	}
	// other sites have their own bucket
	e.ok("GET", G+"/groups?limit=1", nil, "wix-site-id", "site-z")
	if e.srv.TotalCalls(testSite) != 3 || e.srv.Throttled(testSite) != 1 || e.srv.Calls(testSite)["groups.list"] != 3 {
		t.Fatalf("calls %d throttled %d", e.srv.TotalCalls(testSite), e.srv.Throttled(testSite))
	}
	e.clock.Advance(10 * time.Millisecond) // 2 tokens at 200/s
	e.ok("GET", G+"/groups?limit=1", nil)
	e.ok("GET", G+"/groups?limit=1", nil)
	if r := e.call("GET", G+"/groups?limit=1", nil); r.status != 429 {
		t.Fatalf("after refill: %d", r.status)
	}
	e.srv.SetRateLimit(0, 0)
	for range 20 {
		e.ok("GET", G+"/groups?limit=1", nil)
	}
	// control endpoints are neither limited nor counted
	e.srv.SetRateLimit(60, 1)
	for range 5 {
		e.ok("GET", "/_sim/calls?site="+testSite, nil)
	}
	if e.srv.TotalCalls(testSite) != 25 {
		t.Fatalf("total %d", e.srv.TotalCalls(testSite))
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, Options{})
	path := G + "/groups?limit=1"
	e.srv.SetFaults(Faults{ErrorRates: map[int]float64{503: 1}})
	r := e.call("GET", path, nil)
	if r.status != 503 || str(r.body, "message") != "" || len(get(r.body, "details").(map[string]any)) != 0 {
		t.Fatalf("503 %d %v", r.status, r.body)
	}
	e.srv.SetFaults(Faults{})
	e.ok("GET", path, nil)

	e.srv.SetFaults(Faults{Burst429: 2})
	for i := range 2 {
		if r := e.call("GET", path, nil); r.status != 429 {
			t.Fatalf("burst %d: %d", i, r.status)
		}
	}
	e.ok("GET", path, nil)

	// only some operations
	e.srv.SetFaults(Faults{ErrorRates: map[int]float64{500: 1}, Ops: []string{"members.query"}})
	e.ok("GET", path, nil)
	if r := e.call("POST", MV+"/query", map[string]any{}); r.status != 500 {
		t.Fatalf("op filter: %d", r.status)
	}

	// error mix is deterministic under a seed
	run := func() string {
		e.srv.SetFaults(Faults{ErrorRates: map[int]float64{500: 0.3, 503: 0.2}, Seed: 7})
		var b strings.Builder
		for range 30 {
			fmt.Fprint(&b, e.call("GET", path, nil).status, " ")
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b || !strings.Contains(a, "500") || !strings.Contains(a, "503") || !strings.Contains(a, "200") {
		t.Fatalf("seeded faults %q vs %q", a, b)
	}

	// timeout: hang until TimeoutMax, then 504
	e.srv.SetFaults(Faults{TimeoutProb: 1, TimeoutMax: 20 * time.Millisecond})
	if r := e.call("GET", path, nil); r.status != 504 {
		t.Fatalf("timeout: %d", r.status)
	}
	// timeout: the client gives up first
	e.srv.SetFaults(Faults{TimeoutProb: 1, TimeoutMax: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
	req.Header.Set("Authorization", "k")
	req.Header.Set("wix-site-id", testSite)
	_, err := http.DefaultClient.Do(req)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client timeout: %v", err)
	}
	// connection reset
	e.srv.SetFaults(Faults{ResetProb: 1})
	req, _ = http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "k")
	req.Header.Set("wix-site-id", testSite)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("reset: got status %d", res.StatusCode)
	}
	// latency still serves
	e.srv.SetFaults(Faults{Latency: time.Millisecond, Jitter: time.Millisecond, SpikeProb: 1, Spike: time.Millisecond})
	e.ok("GET", path, nil)

	// control endpoint
	put := e.ok("PUT", "/_sim/faults", map[string]any{"errorRates": map[string]any{"500": 1}, "latency": "0s", "burst429": 1})
	if get(put, "errorRates", "500") != 1.0 || num(put, "burst429") != 1 {
		t.Fatalf("put faults %v", put)
	}
	if r := e.call("GET", path, nil); r.status != 429 {
		t.Fatalf("burst via control: %d", r.status)
	}
	if r := e.call("GET", path, nil); r.status != 500 {
		t.Fatalf("500 via control: %d", r.status)
	}
	e.ok("DELETE", "/_sim/faults", nil)
	e.ok("GET", path, nil)
	if f := e.srv.Faults(); len(f.ErrorRates) != 0 || f.Burst429 != 0 {
		t.Fatalf("faults not cleared %+v", f)
	}
}

func TestSiteIsolationAndDeterminism(t *testing.T) {
	e := newEnv(t, Options{})
	a, b := e.srv.Site("site-1"), e.srv.Site("site-2")
	if a.Members()[0].ID == b.Members()[0].ID {
		t.Fatal("sites share ids")
	}
	g := a.AddGroup("Only In A", "")
	if r := e.call("GET", G+"/groups/"+g.ID, nil, "wix-site-id", "site-2"); r.status != 404 {
		t.Fatalf("cross-site read: %d", r.status)
	}
	e.ok("GET", G+"/groups/"+g.ID, nil, "wix-site-id", "site-1")

	clock := testutil.NewClock(time.Time{})
	mk := func(seed int64) *Site {
		return New(Options{Members: 300, Groups: 15, Seed: seed, Now: clock.Now}).Site("same")
	}
	dump := func(st *Site) string {
		data, _ := json.Marshal([]any{st.Members(), st.Groups(), st.Contacts(), st.GroupMembers(st.Groups()[0].ID)})
		return string(data)
	}
	if first, again := dump(mk(1)), dump(mk(1)); first != again {
		t.Fatal("same seed, different data")
	}
	if dump(mk(1)) == dump(mk(2)) {
		t.Fatal("different seeds, same data")
	}
	st := mk(3)
	before := dump(st)
	st.AddGroup("x", "")
	st.Reset(300, 15)
	if dump(st) != before {
		t.Fatal("Reset does not reseed identically")
	}
}

func TestSeedRealism(t *testing.T) {
	e := newEnv(t, Options{Members: 1000, Groups: 50})
	st := e.srv.Site(testSite)
	ms := st.Members()
	noEmail, accented, extraEmails, phones := 0, 0, 0, 0
	names, nicks, logins := map[string]int{}, map[string]int{}, map[string]bool{}
	for _, m := range ms {
		if m.LoginEmail == "" && len(m.Emails) == 0 {
			noEmail++
		}
		if m.LoginEmail != "" {
			if logins[m.LoginEmail] {
				t.Fatalf("duplicate login email %s", m.LoginEmail)
			}
			logins[m.LoginEmail] = true
		}
		if strings.ContainsAny(m.FirstName+m.LastName, "ëéüøłáíó") {
			accented++
		}
		if len(m.Emails) > 1 {
			extraEmails++
		}
		if len(m.Phones) > 0 {
			phones++
		}
		names[m.FirstName+" "+m.LastName]++
		nicks[m.Nickname]++
	}
	dupNames, dupNicks := 0, 0
	for _, n := range names {
		if n > 1 {
			dupNames++
		}
	}
	for _, n := range nicks {
		if n > 1 {
			dupNicks++
		}
	}
	if noEmail == 0 || accented == 0 || extraEmails == 0 || phones < 500 || dupNames == 0 || dupNicks == 0 {
		t.Fatalf("noEmail %d accented %d extra %d phones %d dupNames %d dupNicks %d", noEmail, accented, extraEmails, phones, dupNames, dupNicks)
	}
	statuses := map[string]int{}
	for email := range logins {
		s, ok := st.Subscription(email)
		if !ok {
			s = "(none)"
		}
		statuses[s]++
	}
	sub := float64(statuses["SUBSCRIBED"]) / float64(len(logins))
	if sub < 0.5 || sub > 0.7 || statuses["(none)"] == 0 || statuses["NOT_SET"] == 0 || statuses["UNSUBSCRIBED"] == 0 || statuses["PENDING"] == 0 {
		t.Fatalf("subscription mix %v", statuses)
	}
	if nonMembers := len(st.Contacts()) - len(ms); nonMembers < 50 {
		t.Fatalf("non-member contacts %d", nonMembers)
	}
	withQ, dupGroupNames := 0, map[string]int{}
	sizes := []int{}
	for _, g := range st.Groups() {
		if len(st.Questions(g.ID)) > 0 {
			withQ++
		}
		dupGroupNames[g.Name]++
		sizes = append(sizes, g.MembersCount)
	}
	slices.Sort(sizes)
	if withQ == 0 || sizes[len(sizes)-1] < 5*sizes[len(sizes)/2] {
		t.Fatalf("questions on %d groups, sizes %v", withQ, sizes)
	}
	if len(dupGroupNames) == len(st.Groups()) {
		t.Fatal("no duplicate group names")
	}
	for _, c := range st.Contacts() {
		for _, p := range c.Phones {
			if !strings.HasPrefix(p.E164Phone, "+") || strings.ContainsAny(p.E164Phone, " ()-") {
				t.Fatalf("bad e164 %+v", p)
			}
		}
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	clock := testutil.NewClock(time.Time{})
	s1 := New(Options{Members: 50, Groups: 5, StateFile: path, Now: clock.Now})
	st := s1.Site(testSite)
	m := st.AddMember(MemberSeed{FirstName: "Renée", LoginEmail: "renee@example.com"})
	g := st.AddGroup("Round Trip", "SECRET", m.ID)
	qs := st.SetQuestions(g.ID, "Why?")
	st.SetAnswer(g.ID, m.ID, qs[0].ID, "Because")
	st.SetRules(g.ID, []Rule{{Title: "R", Description: "D"}})
	st.SetSubscription("renee@example.com", "SUBSCRIBED")
	want := st.snapshot()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	s2 := New(Options{Members: 50, Groups: 5, StateFile: path, Now: clock.Now})
	got := s2.Site(testSite).snapshot()
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	if string(wj) != string(gj) {
		t.Fatal("state differs after round trip")
	}
	st2 := s2.Site(testSite)
	if a := st2.GroupsByName("Round Trip"); len(a) != 1 || a[0].MembersCount != 1 {
		t.Fatalf("group %v", a)
	}
	// new ids after a restore do not collide with restored ones
	m2 := st2.AddMember(MemberSeed{FirstName: "New"})
	if _, dup := s1.Site(testSite).Member(m2.ID); dup {
		t.Fatal("id collision after restore")
	}
	// the control endpoint saves too
	hs := e2e(t, s2)
	res, err := http.Post(hs+"/_sim/save", "application/json", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("save via control: %v %v", err, res)
	}
	res.Body.Close()
}

func e2e(t *testing.T, s *Server) string {
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return url
}

func TestControlEndpoints(t *testing.T) {
	e := newEnv(t, Options{Sites: []string{testSite}}) // + empty-site, added by its reset below
	e.ok("GET", G+"/groups", nil)
	e.ok("POST", G+"/groups/query", map[string]any{})
	e.call("GET", G+"/groups/nope", nil)
	calls := e.ok("GET", "/_sim/calls?site="+testSite, nil, "Authorization", "")
	if num(calls, "total") != 3 || num(calls, "calls", "groups.get") != 1 || num(calls, "throttled") != 0 {
		t.Fatalf("calls %v", calls)
	}
	reqs := e.ok("GET", "/_sim/requests?site="+testSite+"&n=2", nil)
	if len(list(reqs, "requests")) != 2 || num(reqs, "requests", 1, "status") != 404 || str(reqs, "requests", 1, "op") != "groups.get" {
		t.Fatalf("requests %v", reqs)
	}
	if rr := e.srv.RecentRequests(testSite, 10); len(rr) != 3 || rr[0].Op != "groups.list" {
		t.Fatalf("recent %v", rr)
	}
	e.ok("POST", "/_sim/calls/reset", nil)
	if e.srv.TotalCalls(testSite) != 0 {
		t.Fatal("reset failed")
	}
	rl := e.ok("PUT", "/_sim/ratelimit", map[string]any{"perMinute": 60, "burst": 1, "retryAfter": true})
	if num(rl, "perMinute") != 60 || get(rl, "retryAfter") != true {
		t.Fatalf("ratelimit %v", rl)
	}
	e.ok("GET", G+"/groups", nil)
	if r := e.call("GET", G+"/groups", nil); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("ratelimit via control %d", r.status)
	}
	e.ok("PUT", "/_sim/ratelimit", map[string]any{"perMinute": 0})
	sum := e.ok("GET", "/_sim/sites/"+testSite+"/groups", nil)
	if len(list(sum, "groups")) != 10 || str(sum, "groups", 0, "slug") == "" {
		t.Fatalf("summary %v", sum)
	}
	e.ok("POST", "/_sim/sites/empty-site/reset?members=0&groups=0", nil)
	if len(e.srv.Site("empty-site").Members()) != 0 {
		t.Fatal("reset via control")
	}
	if r := e.call("POST", "/_sim/save", nil); r.status != 400 {
		t.Fatalf("save without state file: %d", r.status)
	}
	if sites := e.ok("GET", "/_sim/sites", nil); len(list(sites, "sites")) != 2 {
		t.Fatalf("sites %v", sites)
	}
}
