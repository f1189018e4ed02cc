package messages

import (
	"encoding/json"
	"testing"
)

func TestPeekMeta(t *testing.T) {
	cases := []struct {
		body string
		want CommandMeta
	}{
		{`{"id":"c1","siteId":"s1","correlationId":"k1","group":{"siteId":"inner"}}`, CommandMeta{ID: "c1", SiteID: "s1", CorrelationID: "k1"}},
		{`{"siteId":"s1"}`, CommandMeta{SiteID: "s1"}},
		{`{"id":5,"siteId":"s\u00e9","correlationId":null}`, CommandMeta{SiteID: "sé"}},
		{`{"siteId":"a\"b"}`, CommandMeta{SiteID: `a"b`}},
		{`{"siteId":"a","siteId":"b"}`, CommandMeta{SiteID: "b"}},
		{`{"SITEID":"x"}`, CommandMeta{SiteID: "x"}}, // as Decode reads it
		{"{\"siteId\":\"\xff\"}", CommandMeta{SiteID: "\ufffd"}},
		{`[1]`, CommandMeta{}},
		{`{"siteId":"s1"`, CommandMeta{}},
		{``, CommandMeta{}},
	}
	for _, c := range cases {
		if got := PeekMeta([]byte(c.body)); got != c.want {
			t.Errorf("PeekMeta(%s) = %+v, want %+v", c.body, got, c.want)
		}
	}
}

// PeekMeta reads what Decode reads.
func TestPeekMetaAgreesWithDecode(t *testing.T) {
	body := []byte(`{"id":"c1","siteId":"s1","correlationId":"k1","group":{"name":"G"},"people":[{"email":"a@example.com"}]}`)
	cmd, err := Decode(CmdProvisionGroup, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := PeekMeta(body); got != *cmd.Meta() {
		t.Fatalf("PeekMeta %+v, Decode %+v", got, *cmd.Meta())
	}
}

var peekBody = []byte(`{"siteId":"overhead","group":{"name":"ovh 00001"},"people":[{"email":"ann@example.com"}],"id":"ovh-00001"}`)

// BenchmarkPeekMeta against the per-field peek it replaces: the runtime asks
// a body for id, correlationId and siteId (twice) before Decode.
func BenchmarkPeekMeta(b *testing.B) {
	b.Run("PeekMeta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = PeekMeta(peekBody)
		}
	})
	b.Run("map-per-field-x4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range []string{"id", "correlationId", "siteId", "siteId"} {
				var obj map[string]json.RawMessage
				if json.Unmarshal(peekBody, &obj) == nil {
					var s string
					_ = json.Unmarshal(obj[f], &s)
				}
			}
		}
	})
}
