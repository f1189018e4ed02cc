package handlers

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/events"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

// TestCampaignStreamCallsBounded: a JetStream API request whose answer is
// lost (as in a stream-leader failover) ends after the handler's call
// timeout with an error (transient: retried), instead of waiting out the
// handler's one-hour context with the campaign's message kept alive.
func TestCampaignStreamCallsBounded(t *testing.T) {
	// A server without JetStream, whose only responder to the JetStream API
	// swallows every request.
	nc, js := testutil.JetStream(t, testutil.NATS(t, nil).ClientURL())
	if _, err := nc.Subscribe("$JS.API.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	h := NewSendCampaign(nil, events.NewPublisher(nil, messages.Subjects{}, "test"), js, nil)
	h.callTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // the handler's deadline
	defer cancel()
	for name, call := range map[string]func() error{
		"last sequence": func() error { _, err := h.eventsLastSeq(ctx); return err },
		"scan":          func() error { _, err := h.scanPublished(ctx, 0, "c", nil); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: no error without an answer", name)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: still waiting for an answer that will never come", name)
		}
	}
}
