package runtime

import (
	"context"
	"fmt"

	"groupflow/internal/failure"
	"groupflow/messages"
)

// TypedHandler carries out one command type, receiving the command already
// decoded to its type C (e.g. *messages.ProvisionGroup): handlers never
// type-assert Command.Payload.
type TypedHandler[C messages.Command] interface {
	// CommandType names the command ("provision_group").
	CommandType() string
	// Handle does the work and returns the completion event, which the
	// runtime publishes and records in the ledger. An error marked permanent
	// (see package failure) dead-letters the command at once; any other error
	// is retried. c is cmd.Payload, typed.
	Handle(ctx context.Context, cmd *Command, c C) (messages.Event, error)
}

// Register adds h to r, running up to concurrency commands at once (at least
// one). It is Runtime.Register(Adapt(h), concurrency).
func Register[C messages.Command](r *Runtime, h TypedHandler[C], concurrency int) {
	r.Register(Adapt(h), concurrency)
}

// Adapt returns the Handler the runtime runs for h: it hands h the payload as
// C, and answers a payload of any other type (a decoder and handler that
// disagree on the command type) with a permanent error, without calling h.
func Adapt[C messages.Command](h TypedHandler[C]) Handler { return adapted[C]{h: h} }

// adapted is a TypedHandler seen as a Handler.
type adapted[C messages.Command] struct{ h TypedHandler[C] }

func (a adapted[C]) CommandType() string { return a.h.CommandType() }

func (a adapted[C]) Handle(ctx context.Context, cmd *Command) (messages.Event, error) {
	c, ok := cmd.Payload.(C)
	if !ok {
		var want C
		return nil, failure.Permanent(fmt.Errorf("%s: payload is %T, handler takes %T", a.h.CommandType(), cmd.Payload, want))
	}
	return a.h.Handle(ctx, cmd, c)
}

func (adapted[C]) adapted() {}
