package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/messages"
)

// RelayDurable is the consumer of fired schedules (Subjects.FiredAll() in
// the schedules stream).
const RelayDurable = "groupflow_schedule_relay"

// relaySource is the Source of the schedule relay: one durable consumer on
// the fired subjects of the schedules stream, run by the same router and
// middleware as the commands (correlation, tracing, dead-lettering, retry).
func (r *Runtime) relaySource() *Source {
	topic := r.cfg.Subjects.FiredAll()
	return NewSource(r.deps.JS, SourceConfig{
		Stream: r.cfg.Subjects.ScheduleStream(),
		Topics: map[string]Subscription{topic: {
			Consumer: broker.ConsumerSpec{
				Durable:       RelayDurable,
				Description:   "groupflow: relays each fired schedule to its command subject",
				FilterSubject: topic,
				AckWait:       r.cfg.AckWait,
				MaxDeliver:    r.consumerMaxDeliver(),
				MaxAckPending: 64,
			},
			Concurrency: 2,
		}},
		NakDelay: r.cfg.NakDelay,
		Grace:    r.cfg.ShutdownGrace,
		Paused:   r.dlqGate.paused,
		OnDone:   r.metrics.received,
		// Settle is the router's outermost middleware (newRouter).
		SettleInRouter: true,
	}, r.log.Named("relay"))
}

// relay republishes a message fired by a schedule to Command(<type>), body
// unchanged, with Nats-Msg-Id = messages.FiredCommandID of the fire: a
// redelivered relay is deduplicated by the commands stream, and
// messages.CommandIDOf gives the relayed command the fire's id (no body id,
// no Groupflow-Command-Id, no Nats-Scheduler: the Nats-Msg-Id). The
// server's schedule headers (Nats-Scheduler, Nats-Schedule-Next) are left
// out: clients may not publish them. A fired message of an unknown command
// type is dead-lettered, as an unknown command is; a refused publish (a
// full commands stream) is retried by redelivery. Cost: one JetStream
// publish, no Wix call.
func (r *Runtime) relay(msg *message.Message) error {
	t, _ := r.cfg.Subjects.FiredTypeOf(msg.Metadata.Get(MetaSubject))
	if !messages.IsCommandType(t) {
		return &messages.UnknownCommandError{CommandType: t}
	}
	id := messages.FiredCommandID(msg.Metadata)
	if id == "" {
		return &messages.UnknownCommandError{CommandType: t + " (fired message without " + messages.HeaderScheduler + ")"}
	}
	out := nats.NewMsg(r.cfg.Subjects.Command(t))
	out.Data = msg.Payload
	for k, v := range msg.Metadata {
		if !strings.HasPrefix(k, metaPrefix) && !strings.HasPrefix(strings.ToLower(k), "nats-") {
			out.Header.Set(k, v)
		}
	}
	out.Header.Set(messages.HeaderNatsMsgID, id)
	ctx, cancel := context.WithTimeout(msg.Context(), 10*time.Second)
	defer cancel()
	if _, err := r.deps.JS.PublishMsg(ctx, out, jetstream.WithExpectStream(r.cfg.Subjects.CommandStream())); err != nil {
		return fmt.Errorf("relay fired schedule to %s: %w", out.Subject, err)
	}
	return nil
}
