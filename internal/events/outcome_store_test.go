package events_test

import (
	"bytes"
	"context"
	"testing"

	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestOutcomeStoredOnASmallMaxPayload: the outcomes store is used for
// bodies too large for one message, so its chunks must fit one: on a
// broker taking 64 KiB a message, a 300 KB body is stored and read back.
// The object store's default 128 KiB chunks were refused ("maximum
// payload exceeded") on every attempt, and the command dead-lettered.
func TestOutcomeStoredOnASmallMaxPayload(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet(), testenv.WithMaxPayload(64<<10))
	o := env.Outcomes()
	ctx := context.Background()
	body := bytes.Repeat([]byte("0123456789"), 30_000)
	r := messages.OutcomeRef{Bucket: o.Bucket(), Object: "t.big-1.json"}
	if err := o.Put(ctx, r, "t", body); err != nil {
		t.Fatalf("store a %d-byte outcome on a 64 KiB broker: %v", len(body), err)
	}
	got, err := o.Get(ctx, r)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back: %d bytes, %v; want the %d stored", len(got), err, len(body))
	}
}
