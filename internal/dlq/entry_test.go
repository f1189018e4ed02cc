package dlq_test

import (
	"strings"
	"testing"

	"groupflow/internal/dlq"
)

// TestOriginalHeadersFilter: credentials (whatever the case or separator)
// and broker-steering headers never travel; trace and id headers do.
func TestOriginalHeadersFilter(t *testing.T) {
	cases := []struct {
		name, value string
		keep        bool
	}{
		{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true},
		{"tracestate", "congo=t61rcWkgMzE", true},
		{"Groupflow-Correlation-Id", "corr-1", true},
		{"Groupflow-Command-Id", "cmd-1", true},
		{"X-Request-Id", "r-1", true},
		{"Content-Type", "application/json", true},
		{"X-Auth", "abc", false},
		{"x-auth-user", "abc", false},
		{"Authorization", "Bearer abc", false},
		{"Proxy-Authorization", "Basic Zm9v", false},
		{"Cookie", "sid=1", false},
		{"Set-Cookie", "sid=1", false},
		{"X-Api_Key", "k", false},
		{"X_API_KEY", "k", false},
		{"X-ApiKey", "k", false},
		{"Api-Key", "k", false},
		{"X-Access-Token", "t", false},
		{"X-Client-Secret", "s", false},
		{"X-Password", "p", false},
		{"X-Session-Id", "s", false},
		{"X-Credentials", "c", false},
		{"X-Hub-Signature-256", "sha256=…", false},
		{"X-Forwarded-Stuff", "Bearer eyJhbGciOi", false},
		{"Nats-Expected-Stream", "GROUPS_COMMANDS", false},
		{"Nats-Expected-Last-Sequence", "3", false},
		{"Nats-Msg-Id", "m-1", false},
		{"nats-msg-id", "m-1", false},
		{"Nats-Rollup", "all", false},
		{"Nats-TTL", "1s", false},
		{"Nats-Schedule", "@every 1s", false},
		{"Nats-Schedule-Target", "groups.cmd.provision_group", false},
		{"Groupflow-Dlq-Original-Subject", "groups.cmd.provision_group", false},
		{"Groupflow-Replay-Of", "3", false},
		{"_watermill_message_uuid", "u", false},
	}
	in := map[string]string{}
	for _, c := range cases {
		in[c.name] = c.value
	}
	out := dlq.OriginalHeaders(in)
	for _, c := range cases {
		if _, ok := out[c.name]; ok != c.keep {
			t.Errorf("%s: kept=%v, want %v", c.name, ok, c.keep)
		}
	}
}

// TestOriginalHeadersBounded: oversized headers are cut or left out, with a
// note, and what is kept stays within the limit.
func TestOriginalHeadersBounded(t *testing.T) {
	in := map[string]string{"traceparent": "00-1-2-01", "X-Long": strings.Repeat("é", 5000)}
	for i := 0; i < 100; i++ {
		in["X-Pad-"+strings.Repeat("p", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26))] = strings.Repeat("v", 900)
	}
	out := dlq.OriginalHeaders(in)
	size := 0
	for k, v := range out {
		if k != dlq.HeaderHeadersDropped {
			size += len(k) + len(v)
		}
	}
	if size > dlq.MaxCopiedHeaderBytes || out["traceparent"] == "" || out[dlq.HeaderHeadersDropped] == "" {
		t.Fatalf("size %d, traceparent %q, note %q", size, out["traceparent"], out[dlq.HeaderHeadersDropped])
	}
	if v, ok := out["X-Long"]; ok && len(v) > dlq.MaxCopiedHeaderValue {
		t.Errorf("long value kept with %d bytes", len(v))
	}
}

// NewEntry, the dead-letter builder of groupflow and groupmail: the
// runtime's metadata and credentials stay out of the copied headers, the
// body is untouched, and the failure times default to now.
func TestNewEntryFromDelivery(t *testing.T) {
	e := dlq.NewEntry(dlq.Delivery{Subject: "groups.evt.member_selected", Seq: 7, Deliveries: 3, Body: []byte(`{"x":1}`),
		Headers: map[string]string{"_gf_subject": "groups.evt.member_selected", "traceparent": "00-abc", "Authorization": "Bearer s3cret"}},
		dlq.Failure{CommandType: "member_selected", CommandID: "e-1", Kind: "permanent", Reason: "smtp 550", Handler: "groupmail"})
	if e.OriginalSubject != "groups.evt.member_selected" || e.OriginalSeq != 7 || e.Deliveries != 3 || string(e.Body) != `{"x":1}` ||
		e.CommandID != "e-1" || e.Handler != "groupmail" || e.Kind != "permanent" {
		t.Fatalf("entry %+v", e)
	}
	if e.LastFailure.IsZero() || !e.FirstFailure.Equal(e.LastFailure) {
		t.Fatalf("failure times %v / %v", e.FirstFailure, e.LastFailure)
	}
	if len(e.Headers) != 1 || e.Headers["traceparent"] != "00-abc" {
		t.Fatalf("copied headers %v, want only traceparent", e.Headers)
	}
}
