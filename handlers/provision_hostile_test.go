package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"groupflow/internal/runtime"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestProvisionHostileWixHugeErrorMessage: a Create Group refused with an
// error body whose message is 2 MiB of text with control characters (a
// hostile or buggy Wix, a proxy dumping a page into JSON) is dead-lettered
// and announced like any permanent refusal, with a bounded, single-line
// reason: the error text goes into the ledger, the dead letter and the
// command_failed event, each bounded by the broker's payload limit.
func TestProvisionHostileWixHugeErrorMessage(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	huge := strings.Repeat("refused\x1b[31m\r\n", (2<<20)/15)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":` + mustJSON(t, huge) + `,"details":{"applicationError":{"code":` + mustJSON(t, huge) + `,"description":` + mustJSON(t, huge) + `}}}`))
			return
		}
		e.Wix.Sim.Handler().ServeHTTP(w, r)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "huge-err", map[string]any{
		"group": map[string]any{"name": "Huge Error"}, "people": []messages.Person{{Email: "a@example.com"}}})
	expectFailed(t, e, m, "huge-err", messages.FailurePermanent, "400 Bad Request")
	f := expect[messages.CommandFailed](t, e, m, messages.EvtCommandFailed)
	if len(f.Reason) > 4<<10 || strings.ContainsAny(f.Reason, "\x1b\r\n") {
		t.Fatalf("command_failed reason of %d bytes (control characters: %v)", len(f.Reason), strings.ContainsAny(f.Reason, "\x1b\r\n"))
	}
}

// TestProvisionHostileWixInvalidGroupID: a Create Group answer whose group
// id carries a terminal escape and 2 MiB of text fails the command
// (permanent) instead of becoming the id of group_provisioned, of the
// ledger's checkpoint and of the URLs of the calls after it.
func TestProvisionHostileWixInvalidGroupID(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	evil := "evil\x1b]0;pwned\x07" + strings.Repeat("x", 2<<20)
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.Wix.Sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/groups") && rec.Code == http.StatusOK {
			var v map[string]map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Error(err)
			}
			v["group"]["id"] = evil
			body, _ = json.Marshal(v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(provisionHandler(e)))
	m := e.send(messages.CmdProvisionGroup, "evil-id", map[string]any{
		"group": map[string]any{"name": "Evil Id"}, "people": []messages.Person{{Email: "a@example.com"}}})
	expectFailed(t, e, m, "evil-id", messages.FailurePermanent, "invalid group id")
	if strings.Contains(string(m.Data), "pwned") || len(m.Data) > 8<<10 {
		t.Fatalf("command_failed of %d bytes names the id", len(m.Data))
	}
}
