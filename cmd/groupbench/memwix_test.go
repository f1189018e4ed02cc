package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"groupflow/internal/wix"
)

// The stub answers the four calls of a one-person provision_group through
// the real Wix client, as Wix would: no group of that name, a new group
// with a distinct id each time, the member asked by email, the member
// added; a call it does not stub is an error, never a made-up success.
func TestWixStubAnswersProvisionCalls(t *testing.T) {
	stub := &wixStub{}
	c := wix.New(wix.Config{BaseURL: "http://wix.in-memory", AllowInsecureHTTP: true, RequestsPerMinute: 1e9,
		MaxRetries: -1, HTTPClient: &http.Client{Transport: stub}})
	if err := c.AddSite("s1", wix.Credentials{APIKey: "k"}); err != nil {
		t.Fatal(err)
	}
	site, err := c.Site("s1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	page, err := site.QueryGroups(ctx, wix.Query{Filter: map[string]any{"title": map[string]any{"$eq": "g"}}})
	if err != nil || len(page.Groups) != 0 {
		t.Fatalf("query groups: %v %+v", err, page)
	}
	ids := map[string]bool{}
	for _, name := range []string{`g "1"`, "g 2"} {
		g, err := site.CreateGroup(ctx, wix.Group{Name: name}, "")
		if err != nil || g.Name != name || g.ID == "" || ids[g.ID] || g.OwnerID == "" || g.Slug == "" || g.PrivacyStatus != "PUBLIC" {
			t.Fatalf("create %q: %v %+v", name, err, g)
		}
		ids[g.ID] = true
	}
	mp, err := site.QueryMembers(ctx, wix.MembersQuery{Filter: map[string]any{"loginEmail": map[string]any{"$in": []string{"ann@example.com"}}}})
	if err != nil || len(mp.Members) != 1 || mp.Members[0].LoginEmail != "ann@example.com" || mp.Members[0].ID == "" {
		t.Fatalf("query members: %v %+v", err, mp)
	}
	added, err := site.AddGroupMembers(ctx, "00000000-0000-4000-8000-000000000001", []string{mp.Members[0].ID})
	if err != nil || len(added) != 1 || added[0].MemberID != mp.Members[0].ID {
		t.Fatalf("add members: %v %+v", err, added)
	}
	if _, err := site.GetGroup(ctx, "x"); err == nil {
		t.Fatal("an unstubbed call succeeded")
	}
	if got := stub.calls.Load(); got != 6 {
		t.Errorf("calls %d, want 6", got)
	}
}

func TestAskedEmails(t *testing.T) {
	for body, want := range map[string]string{
		`{"query":{"filter":{"loginEmail":{"$in":["a@x.com","b@y.org"]}}}}`: "a@x.com b@y.org",
		`{"query":{"filter":{"loginEmail":{"$in":["a\u0040x.com"]}}}}`:      "a@x.com",
		`{"query":{"filter":{"loginEmail":{"$in":[]}}}}`:                    "",
	} {
		got, ok := askedEmails([]byte(body))
		if !ok || strings.Join(got, " ") != want {
			t.Errorf("%s: %q %v, want %q", body, got, ok, want)
		}
	}
	for _, bad := range []string{`{}`, `{"query":{"filter":{"loginEmail":{"$in":[1]}}}}`, `{"loginEmail":{"$in":"a"}}`} {
		if got, ok := askedEmails([]byte(bad)); ok {
			t.Errorf("%s: %q accepted", bad, got)
		}
	}
}
