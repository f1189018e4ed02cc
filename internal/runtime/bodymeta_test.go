package runtime

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"groupflow/messages"
)

// TestBodyMetaPeekedOnce: the middleware uses the id, site and correlation
// id the Source peeked (carried in the message context) and parses the body
// itself only for a message that did not come through the Source.
func TestBodyMetaPeekedOnce(t *testing.T) {
	body := []byte(`{"id":"c-1","siteId":"body-site","correlationId":"corr-1"}`)
	msg := message.NewMessage("c-1", body)
	if got, want := bodyMeta(msg), (messages.CommandMeta{ID: "c-1", SiteID: "body-site", CorrelationID: "corr-1"}); got != want {
		t.Fatalf("without a peeked meta: got %+v, want %+v", got, want)
	}
	peeked := messages.CommandMeta{ID: "c-1", SiteID: "peeked-site", CorrelationID: "corr-2"}
	msg.SetContext(withMeta(context.Background(), peeked))
	if got := bodyMeta(msg); got != peeked {
		t.Fatalf("with a peeked meta: got %+v, want %+v", got, peeked)
	}
}
