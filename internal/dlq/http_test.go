package dlq_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

func TestHTTP(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	h := dlq.NewHTTPHandler(store, "s3cret", nil)
	mux := http.NewServeMux() // mounted like the admin server does
	mux.Handle("/dlq", h)
	mux.Handle("/dlq/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s1 := deadLetter(t, env, reportEntry(1))
	s2 := deadLetter(t, env, &dlq.Entry{CommandType: messages.CmdProvisionGroup, CommandID: "prov-1",
		Reason: "wix: 404 group not found", Body: []byte(`{"id":"prov-1","group":{"name":"Yoga"}}`)})

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, tok := range []string{"", "wrong", "s3cret2"} {
		if code, _ := do("GET", "/dlq", tok, ""); code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d", tok, code)
		}
	}
	if code, _ := do("POST", "/dlq/replay", "", `{"all":true}`); code != http.StatusUnauthorized {
		t.Fatalf("replay without token: %d", code)
	}

	code, body := do("GET", "/dlq", "s3cret", "")
	var list dlq.ListResponse
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Count != 2 || list.Entries[1].CommandID != "prov-1" {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body = do("GET", "/dlq?command=provision_group&reason=not+found&since=1h", "s3cret", "")
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Count != 1 || list.Entries[0].Seq != s2 {
		t.Fatalf("filtered list: %d %s", code, body)
	}
	if code, body = do("GET", "/dlq?since=yesterday", "s3cret", ""); code != 400 {
		t.Fatalf("bad since: %d %s", code, body)
	}
	code, body = do("GET", "/dlq/2", "s3cret", "")
	var one struct {
		CommandID string          `json:"commandId"`
		Body      json.RawMessage `json:"body"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil || one.CommandID != "prov-1" || !strings.Contains(string(one.Body), `"Yoga"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _ = do("GET", "/dlq/99", "s3cret", ""); code != 404 {
		t.Fatalf("get missing: %d", code)
	}
	if code, _ = do("GET", "/dlq/abc", "s3cret", ""); code != 400 {
		t.Fatalf("get bad seq: %d", code)
	}
	if code, body = do("POST", "/dlq/replay", "s3cret", `{}`); code != 400 {
		t.Fatalf("replay without selector: %d %s", code, body)
	}
	if code, body = do("POST", "/dlq/replay", "s3cret", `{"everything":true}`); code != 400 {
		t.Fatalf("unknown field: %d %s", code, body)
	}

	var res dlq.ReplayResult
	code, body = do("POST", "/dlq/replay", "s3cret", `{"all":true,"dryRun":true}`)
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Replayed != 2 || !res.DryRun {
		t.Fatalf("dry run: %d %s", code, body)
	}
	code, body = do("POST", "/dlq/replay", "s3cret", `{"seqs":[`+itoa(s1)+`]}`)
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Replayed != 1 || res.Skipped != 0 {
		t.Fatalf("replay: %d %s", code, body)
	}
	if left := env.DeadLetters(); len(left) != 1 || left[0].Seq != s2 {
		t.Fatalf("left: %v", left)
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 1 {
		t.Fatalf("%d commands", n)
	}

	var pr dlq.PurgeResponse
	code, body = do("POST", "/dlq/purge", "s3cret", `{"command":"provision_group"}`)
	if code != 200 || json.Unmarshal([]byte(body), &pr) != nil || pr.Purged != 1 {
		t.Fatalf("purge: %d %s", code, body)
	}
	if len(env.DeadLetters()) != 0 {
		t.Fatal("not purged")
	}

	// No token configured: open.
	open := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer open.Close()
	resp, err := http.Get(open.URL + "/dlq")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open: %v %v", err, resp)
	}
	resp.Body.Close()
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestHTTPRefusesHostileSelectors: a body with data after its JSON object
// (`{"all":true}=`, what a cross-site text/plain form post sends) is refused,
// and so is a command type that is a subject wildcard: "command": ">" made
// the purge's subject filter every DLQ subject, purging everything without
// "all".
func TestHTTPRefusesHostileSelectors(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	srv := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer srv.Close()
	deadLetter(t, env, reportEntry(1))
	for _, body := range []string{`{"all":true}=`, `{"command":">"}`, `{"command":"*"}`, `{"command":"a.b"}`, `{"command":"provision_group.>"}`} {
		for _, path := range []string{"/dlq/purge", "/dlq/replay"} {
			resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("POST %s %s: %d, want 400", path, body, resp.StatusCode)
			}
		}
	}
	if n, err := store.Purge(t.Context(), dlq.Filter{CommandType: ">"}); err == nil {
		t.Errorf("Purge(command >) = %d, nil", n)
	}
	if entries, err := store.List(t.Context(), dlq.Filter{}); err != nil || len(entries) != 1 {
		t.Fatalf("after the refused purges: %d entries, %v", len(entries), err)
	}
}

// TestHTTPListBounded: GET /dlq answers at most limit entries (default
// dlq.DefaultListLimit, at most dlq.MaxListLimit) and says when it left
// some out: a DLQ of 100,000 entries made one answer of every entry.
func TestHTTPListBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	srv := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer srv.Close()
	for i := range 3 {
		deadLetter(t, env, reportEntry(i))
	}
	list := func(query string) (int, dlq.ListResponse) {
		resp, err := http.Get(srv.URL + "/dlq" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l dlq.ListResponse
		_ = json.NewDecoder(resp.Body).Decode(&l)
		return resp.StatusCode, l
	}
	if code, l := list("?limit=2"); code != 200 || l.Count != 2 || len(l.Entries) != 2 || !l.Truncated {
		t.Errorf("limit=2: %d %+v", code, l)
	}
	if code, l := list(""); code != 200 || l.Count != 3 || l.Truncated {
		t.Errorf("default: %d %+v", code, l)
	}
	for _, bad := range []string{"?limit=0", "?limit=x", fmt.Sprintf("?limit=%d", dlq.MaxListLimit+1)} {
		if code, _ := list(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, code)
		}
	}
}
