package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/failure"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// wfEnv is an end-to-end environment for the workflow handlers: embedded
// NATS with groupflow's topology, the Wix simulator with a real client, and
// the real runtime.
type wfEnv struct {
	*testenv.Env
	Wix    *testenv.WixEnv
	Site   *wixsim.Site
	Evts   *testenv.Watcher
	Sites  Sites
	Config runtime.Config
}

func wfConfig() runtime.Config {
	return runtime.Config{
		AckWait:       2 * time.Second,
		MaxDeliver:    10,
		Retries:       -1,
		RetryInitial:  10 * time.Millisecond,
		RetryMax:      50 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		NakDelay:      func(int) time.Duration { return 100 * time.Millisecond },
	}
}

// newWF starts NATS (with opts) and the simulator (an empty site); start
// the runtime with start.
func newWF(t *testing.T, opts ...testenv.Option) *wfEnv {
	t.Helper()
	env := testenv.Start(t, opts...)
	w := testenv.StartWix(t, wixsim.Options{Members: -1, Groups: -1})
	e := &wfEnv{Env: env, Wix: w, Site: w.Site(), Sites: WixSites(w.Client), Config: wfConfig()}
	e.Evts = env.Watch(env.Subjects.Events())
	return e
}

func (e *wfEnv) start(hs ...runtime.Handler) *testenv.Running {
	e.T.Helper()
	return e.StartRuntime(e.Config, hs...)
}

// send publishes a command body (with its "id") and returns the first event
// for that command (completion or command_failed).
func (e *wfEnv) send(cmdType, id string, body any, header ...string) *nats.Msg {
	e.T.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.T.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.T.Fatal(err)
	}
	m["id"] = id
	raw, _ = json.Marshal(m)
	e.Publish(cmdType, string(raw), header...)
	return e.Evts.Next(60*time.Second, testenv.ForCommand(id))
}

// expect decodes m as an event of type T, failing when m is another type.
func expect[T any](t *testing.T, e *wfEnv, m *nats.Msg, eventType string) T {
	t.Helper()
	if want := e.Subjects.Event(eventType); m.Subject != want {
		t.Fatalf("got %s, want %s: %s", m.Subject, want, m.Data)
	}
	return testenv.Decode[T](t, m)
}

// expectFailed asserts a command_failed event and one DLQ entry for id.
func expectFailed(t *testing.T, e *wfEnv, m *nats.Msg, id, kind, reasonPart string) {
	t.Helper()
	f := expect[messages.CommandFailed](t, e, m, messages.EvtCommandFailed)
	if f.Kind != kind || !strings.Contains(f.Reason, reasonPart) {
		t.Fatalf("command_failed = %+v, want kind %s, reason containing %q", f, kind, reasonPart)
	}
	n := 0
	for _, d := range e.DeadLetters() {
		if d.CommandID == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("DLQ entries for %s = %d, want 1", id, n)
	}
}

// writes counts the simulator's write calls for the test site.
func (e *wfEnv) writes() int64 {
	c := e.Wix.Sim.Calls(e.Wix.SiteID)
	var n int64
	for _, op := range []string{wix.OpGroupsCreate, wix.OpGroupsUpdate, wix.OpGroupsDelete, wix.OpGroupMembersAdd,
		wix.OpGroupMembersRemove, wix.OpQuestionsReplace, wix.OpRulesReplace} {
		n += c[op]
	}
	return n
}

func (e *wfEnv) calls(op string) int64 { return e.Wix.Sim.Calls(e.Wix.SiteID)[op] }

var jsonMarshal = json.Marshal

// A 401 refusal of a member endpoint under a member credential concerns that
// group (the member is not its admin), so it is an item outcome; a bare 401
// (the site's credentials) and a refusal that needs a member credential are not.
func TestItemRefusedMember401(t *testing.T) {
	ae := &wix.APIError{Op: wix.OpRulesReplace, Status: 401, Code: "UNAUTHENTICATED"}
	member := fmt.Errorf("replace rules: %w", &wix.AuthRefusedError{Site: "s", GroupID: "g", Endpoint: "Create Or Replace All Rules", Credential: "member credential", Err: ae})
	if !itemRefused(member) {
		t.Error("401 under a member credential must be refused per group")
	}
	if itemRefused(fmt.Errorf("x: %w", failure.Permanent(ae))) {
		t.Error("a bare 401 must fail the attempt")
	}
	apiKey := &wix.AuthRefusedError{Site: "s", GroupID: "g", Credential: "API key", Err: ae}
	if itemRefused(apiKey) {
		t.Error("a 401 with the API key is about the site's credentials")
	}
}

// proxiedWix returns a Wix client for siteID (API key "k", no rate limit
// to speak of) whose requests go through proxy, an HTTP server closed when
// the test ends: a hostile or shifting Wix in front of the simulator.
func proxiedWix(t *testing.T, siteID string, proxy http.HandlerFunc) *wix.Client {
	t.Helper()
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	client := wix.New(wix.Config{BaseURL: srv.URL, RequestsPerMinute: 1e6, Burst: 1000})
	if err := client.AddSite(siteID, wix.Credentials{APIKey: "k"}); err != nil {
		t.Fatal(err)
	}
	return client
}

// serveFirstPageForEver answers r, a query, from sim as if its body were
// query (a first page's, whatever offset r asks for), its metadata
// replaced by "a full page, too many to count": a Wix whose paging never
// ends nor advances.
func serveFirstPageForEver(w http.ResponseWriter, r *http.Request, sim http.Handler, query []byte) {
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(query)), int64(len(query))
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, r)
	var page map[string]any
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil {
		page["metadata"] = map[string]any{"count": 100, "tooManyToCount": true}
		body, _ = json.Marshal(page)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}
