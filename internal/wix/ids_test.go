package wix

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"groupflow/internal/failure"
	"groupflow/messages"
)

// Ids in Wix's answers go into the ledger, events and logs and back into
// URLs: one with a control character, a space or more than maxAnswerIDBytes bytes
// is a permanent decode error naming neither the id nor its length's bytes.
func TestAnswersWithInvalidIDsAreRefused(t *testing.T) {
	ctx := context.Background()
	bad := map[string]string{
		"escape":   "g1\x1b]0;pwned\x07",
		"newline":  "g1\nforged log line",
		"space":    "g 1",
		"too long": strings.Repeat("a", maxAnswerIDBytes+1),
		"not utf8": "g\xff1",
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	calls := map[string]struct {
		body func(id string) string
		call func(s *Site) error
	}{
		"create group": {func(id string) string { return `{"group":{"id":` + q(id) + `,"name":"n"}}` },
			func(s *Site) error { _, err := s.CreateGroup(ctx, Group{Name: "n"}, ""); return err }},
		"create group owner": {func(id string) string { return `{"group":{"id":"g1","name":"n","ownerId":` + q(id) + `}}` },
			func(s *Site) error { _, err := s.CreateGroup(ctx, Group{Name: "n"}, ""); return err }},
		"get group": {func(id string) string { return `{"group":{"id":` + q(id) + `}}` },
			func(s *Site) error { _, err := s.GetGroup(ctx, "g1"); return err }},
		"list groups": {func(id string) string { return `{"groups":[{"id":"g0"},{"id":` + q(id) + `}],"metadata":{"count":2}}` },
			func(s *Site) error { _, err := s.ListGroups(ctx, Paging{Limit: 10}); return err }},
		"list group members": {func(id string) string { return `{"members":[{"memberId":"m0"},{"memberId":` + q(id) + `}]}` },
			func(s *Site) error { _, err := s.ListGroupMembers(ctx, "g1", Paging{Limit: 10}); return err }},
		"query members": {func(id string) string { return `{"members":[{"id":"m0"},{"id":` + q(id) + `}]}` },
			func(s *Site) error { _, err := s.QueryMembers(ctx, MembersQuery{}); return err }},
		"query members contact id": {func(id string) string { return `{"members":[{"id":"m0","contactId":` + q(id) + `}]}` },
			func(s *Site) error { _, err := s.QueryMembers(ctx, MembersQuery{}); return err }},
		"get member": {func(id string) string { return `{"member":{"id":` + q(id) + `}}` },
			func(s *Site) error { _, err := s.GetMember(ctx, "m1"); return err }},
		"query contacts": {func(id string) string { return `{"contacts":[{"id":` + q(id) + `}]}` },
			func(s *Site) error { _, err := s.QueryContacts(ctx, Query{}); return err }},
		"add group members": {func(id string) string { return `{"members":[{"memberId":` + q(id) + `}]}` },
			func(s *Site) error { _, err := s.AddGroupMembers(ctx, "g1", []string{"m1"}); return err }},
	}
	for cname, c := range calls {
		for bname, id := range bad {
			t.Run(cname+"/"+bname, func(t *testing.T) {
				f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) { replyJSON(w, 200, []byte(c.body(id))) })
				s := apiKeySite(t, testClient(t, f.srv.URL, nil))
				err := c.call(s)
				if err == nil || !failure.IsPermanent(err) || !strings.Contains(err.Error(), "invalid") {
					t.Fatalf("err %v", err)
				}
				if len(err.Error()) > 500 || strings.ContainsAny(err.Error(), "\x1b\n\ufffd") || strings.Contains(err.Error(), "\xff") {
					t.Fatalf("error repeats the id: %q", err)
				}
			})
		}
		t.Run(cname+"/valid", func(t *testing.T) {
			f := newFakeWix(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				replyJSON(w, 200, []byte(c.body("0e3a7b4c-9c2b-4a57-8f7e-2c1c2b4a6e10")))
			})
			if err := c.call(apiKeySite(t, testClient(t, f.srv.URL, nil))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An id Wix may give is one the contract accepts in events and commands.
func TestAnswerIDBoundIsWithinTheContract(t *testing.T) {
	if maxAnswerIDBytes > messages.MaxIDLen {
		t.Fatalf("maxAnswerIDBytes %d > messages.MaxIDLen %d", maxAnswerIDBytes, messages.MaxIDLen)
	}
}
