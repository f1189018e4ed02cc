package messages_test

import (
	"net/http"
	"testing"

	"groupflow/messages"
)

// One derivation of a command's id for the runtime, the DLQ capture and
// groupctl: body id, then Groupflow-Command-Id, then Nats-Msg-Id, then the
// stream position.
func TestCommandIDOf(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		name, body string
		h          messages.HeaderGetter
		stream     string
		want       string
	}{
		{"body id wins", `{"id":"c-1"}`, h(messages.HeaderCommandID, "x", messages.HeaderNatsMsgID, "y"), "S", "c-1"},
		{"command id header", `{"id":""}`, h(messages.HeaderCommandID, "x", messages.HeaderNatsMsgID, "y"), "S", "x"},
		{"non-string body id", `{"id":7}`, h(messages.HeaderNatsMsgID, "y"), "S", "y"},
		{"stream fallback", `not json`, h(), "GROUPS_COMMANDS", "GROUPS_COMMANDS-42"},
		{"nil headers", `[]`, nil, "GROUPS_COMMANDS", "GROUPS_COMMANDS-42"},
		{"no stream", `{}`, nil, "", ""},
	} {
		if got := messages.CommandIDOf([]byte(c.body), c.h, c.stream, 42); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
