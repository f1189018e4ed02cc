package dlq_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestHTTPReplayRefusesForgedEntry: POST /dlq/replay of an entry whose DLQ
// subject does not allow the command its headers name answers 409 with the
// refusal, runs nothing, and GET /dlq/{seq} marks the entry.
func TestHTTPReplayRefusesForgedEntry(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	srv := httptest.NewServer(dlq.NewHTTPHandler(dlq.NewStore(env.JS, env.Subjects), "tok", nil))
	defer srv.Close()
	m := nats.NewMsg(env.Subjects.DLQ(messages.EvtMemberSelected))
	m.Data = []byte(`{"id":"forged-http","membership":"sync","people":[]}`)
	m.Header.Set(dlq.HeaderOriginalSubject, env.Subjects.Command(messages.CmdProvisionGroup))
	m.Header.Set(dlq.HeaderCommandID, "forged-http")
	m.Header.Set(dlq.HeaderReason, "wix: 503")
	ack, err := env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return resp.StatusCode, v
	}
	code, res := do("POST", "/dlq/replay", `{"seqs":[`+itoa(ack.Sequence)+`]}`)
	if code != http.StatusConflict || res["replayed"] != 0.0 || res["refused"] != 1.0 {
		t.Fatalf("replay: %d %v", code, res)
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 0 {
		t.Fatalf("%d commands published by a refused replay", n)
	}
	code, one := do("GET", "/dlq/"+itoa(ack.Sequence), "")
	if code != 200 || one["refused"] == nil || one["refused"] == "" {
		t.Fatalf("get: %d %v", code, one)
	}
}
