package dlq_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestHTTPListBoundedByBytes: dead letters forged by anyone who may publish
// on a DLQ subject can each carry ~60 KiB of headers (JetStream's header
// limit), and JSON escapes "<" as 6 bytes: GET /dlq (up to 10,000 entries)
// would hold and encode gigabytes in the processor. The answer is bounded
// by bytes as well as by count, and says it is truncated.
func TestHTTPListBoundedByBytes(t *testing.T) {
	defer dlq.SetMaxListBytes(256 << 10)()
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	srv := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer srv.Close()

	ctx := context.Background()
	const forged = 12
	for i := range forged {
		m := nats.NewMsg(env.Subjects.DLQ(messages.CmdProvisionGroup))
		m.Header.Set(messages.HeaderDLQReason, "forged")
		for h := range 6 {
			m.Header.Set(fmt.Sprintf("X-Big-%d", h), strings.Repeat("<", 9<<10))
		}
		m.Header.Set(messages.HeaderDLQCommandID, fmt.Sprintf("forged-%d", i))
		m.Data = []byte(`{}`)
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(srv.URL + "/dlq?limit=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var list dlq.ListResponse
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list: %d %.300s", resp.StatusCode, b)
	}
	if list.Count == 0 || list.Count >= forged || !list.Truncated {
		t.Fatalf("listed %d of %d forged 54 KiB entries (truncated %v) within a 256 KiB budget", list.Count, forged, list.Truncated)
	}
	if len(b) > 8*(256<<10) {
		t.Fatalf("answer of %d bytes for a 256 KiB budget", len(b))
	}
}
