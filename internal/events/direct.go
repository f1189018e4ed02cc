package events

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishTimeout bounds how long PublishAcked waits for the stream's
// PubAck: a reply lost in a stream leader change must not hold the command
// until its handler times out; the timeout is a transient error (retried,
// and the event's id deduplicates the retry).
const PublishTimeout = 10 * time.Second

// PublishAcked publishes a message made by Message straight on js (the
// same subject and headers as PublishMessage) and returns the stream
// sequence of the event it duplicates: 0 when the event is new, else the
// sequence of the message with the same id that the stream already holds
// (inside its duplicate window), which was kept instead.
func (p *Publisher) PublishAcked(ctx context.Context, js jetstream.JetStream, eventType string, msg *message.Message) (dupOf uint64, err error) {
	nm, err := Marshaler{}.Marshal(p.subjects.Event(eventType), msg)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	ack, err := js.PublishMsg(ctx, nm)
	if err != nil {
		return 0, fmt.Errorf("publish %s event %s: %w", eventType, msg.UUID, err)
	}
	if ack.Duplicate {
		return ack.Sequence, nil
	}
	return 0, nil
}
