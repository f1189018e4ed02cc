package report_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"groupflow/internal/report"
	"groupflow/internal/testenv"
)

// TestStoreAnyIDKeepsConnection (issue 12 item 1): a report id of 3,100
// characters used to become an object name whose meta subject was longer
// than the server's control line, and the server closed the connection.
// Any id now gives a bounded object name; safe ids keep readable names.
func TestStoreAnyIDKeepsConnection(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range []string{strings.Repeat("i", 3100), "a.b>*", "r-readable"} {
		objs, err := report.Store(ctx, env.JS, id, []byte("<p>h</p>"), []byte("c\n"), []byte("{}\n"))
		if err != nil {
			t.Fatalf("store %.20q: %v", id, err)
		}
		if len(objs.HTML) > 80 || len(objs.CSV) > 80 || len(objs.JSON) > 80 {
			t.Errorf("object names not bounded: %q", objs.HTML)
		}
		if b, err := report.Load(ctx, env.JS, id, "csv"); err != nil || string(b) != "c\n" {
			t.Errorf("load %.20q: %q, %v", id, b, err)
		}
		if !env.NC.IsConnected() {
			t.Fatalf("connection %s after storing report %.20q…", env.NC.Status(), id)
		}
	}
	if got := report.Objects("r-readable").HTML; got != "r-readable.html" {
		t.Errorf("safe id renamed: %q", got)
	}
}

// TestStoreOnASmallMaxPayload: a rendered report larger than the object
// store's default 128 KiB chunk is stored, and read back, on a broker
// taking 64 KiB a message: its chunks fit one message. With the default
// chunk, the store was refused ("maximum payload exceeded") every attempt.
func TestStoreOnASmallMaxPayload(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	html := strings.Repeat("<tr><td>group</td></tr>\n", 12_000) // 288 KB
	if _, err := report.Store(ctx, env.JS, "r-big", []byte(html), []byte("c\n"), []byte("{}\n")); err != nil {
		t.Fatalf("store a %d-byte report on a 64 KiB broker: %v", len(html), err)
	}
	if b, err := report.Load(ctx, env.JS, "r-big", "html"); err != nil || string(b) != html {
		t.Fatalf("load: %d bytes, %v; want the %d stored", len(b), err, len(html))
	}
}
