package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/ledger"
	"groupflow/messages"
)

func (a *app) statusCmd() *cobra.Command {
	var cmdType string
	c := &cobra.Command{
		Use:   "status COMMAND_ID [--type T] [--events]",
		Short: "Tell what happened to a command: processing (with its progress), completed, failed or dead-lettered",
		Long: `Looks the command up in the ledger (under --type, or every command type),
and in the streams: the command itself, its events (counted by type;
--events lists them), and its dead letters. While it is processing, the
instance running it tells its progress (groups.ops.progress): rows, pages,
members, Wix calls made and left by the budget, and an ETA at the site's rate.`,
		Example: `  groupctl status prov-3f9a2c
  groupctl status send-campaign-fb05a0e18ca7 --events`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return a.status(c.Context(), args[0], cmdType)
		},
	}
	c.Flags().StringVar(&cmdType, "type", "", "command type (default: try every type)")
	c.Flags().BoolVar(&a.listEvents, "events", false, "list every event of the command (default: counts by type)")
	return c
}

// foundEvent is an event of a command found in the events stream.
type foundEvent struct {
	Type string
	Seq  uint64
	Time time.Time
}

// findEvents lists the events of command id in the events stream (headers only).
func findEvents(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, id string) ([]foundEvent, error) {
	var out []foundEvent
	err := scanStream(ctx, js, subj.EventStream(), subj.Events(), time.Time{}, true, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if m.Headers().Get(events.HeaderCommandID) == id {
			et, _ := subj.EventTypeOf(m.Subject())
			out = append(out, foundEvent{Type: et, Seq: md.Sequence.Stream, Time: md.Timestamp})
		}
		return nil
	})
	return out, err
}

func (a *app) status(ctx context.Context, id, cmdType string) error {
	if cmdType != "" && !messages.IsCommandType(cmdType) {
		return fmt.Errorf("unknown command type %q (known: %v)", cmdType, messages.CommandTypes())
	}
	js, err := a.connect()
	if err != nil {
		return err
	}
	// A refused grant ends status at once, with the server's reason.
	ctx, stop := a.permissionGuard(ctx)
	defer stop()
	return guardErr(ctx, a.lookUp(ctx, js, id, cmdType))
}

// lookUp finds and prints what happened to command id (of cmdType, or any).
func (a *app) lookUp(ctx context.Context, js jetstream.JetStream, id, cmdType string) error {
	subj := a.subjects()
	types := messages.CommandTypes()
	if cmdType != "" {
		types = []string{cmdType}
	}

	// The ledger.
	var rec *ledger.Record
	if l, err := ledger.Open(ctx, js, broker.LedgerBucket); err != nil {
		if err := guardErr(ctx, nil); err != nil {
			return err
		}
		a.errf("warning: %v\n", safe(err.Error()))
	} else {
		for _, t := range types {
			if rec, err = l.Record(ctx, t, id); err != nil {
				return err
			}
			if rec != nil {
				break
			}
		}
	}

	// The commands stream: messages carrying this id.
	type cmdMsg struct {
		seq     uint64
		subject string
		at      time.Time
	}
	var cmds []cmdMsg
	filter := subj.Commands()
	if cmdType != "" {
		filter = subj.Command(cmdType)
	}
	if err := scanStream(ctx, js, subj.CommandStream(), filter, time.Time{}, false, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if messages.CommandIDOf(m.Data(), m.Headers(), md.Stream, md.Sequence.Stream) == id {
			cmds = append(cmds, cmdMsg{md.Sequence.Stream, m.Subject(), md.Timestamp})
		}
		return nil
	}); err != nil {
		return err
	}
	evts, err := findEvents(ctx, js, subj, id)
	if err != nil {
		return err
	}
	var dead []*dlq.Entry
	store := dlq.NewStore(js, subj)
	if err := store.Each(ctx, dlq.Filter{CommandType: cmdType}, false, func(e *dlq.Entry) error {
		if e.CommandID == id {
			dead = append(dead, e)
		}
		return nil
	}); err != nil {
		return err
	}

	if rec == nil && len(cmds) == 0 && len(evts) == 0 && len(dead) == 0 {
		return fmt.Errorf("no command %s: not in the ledger, the commands stream, the events or the DLQ", safe(id))
	}
	t := cmdType
	if rec != nil {
		t = rec.CommandType
	}
	status := "unknown"
	switch {
	case rec != nil:
		status = rec.Status
	case len(dead) > 0:
		status = ledger.StatusDeadLettered
	case len(cmds) > 0:
		status = "pending (not picked up yet)"
	}
	a.outf("command:  %s\n", safe(id))
	if t != "" {
		a.outf("type:     %s\n", safe(t))
	}
	a.outf("status:   %s\n", safe(status))
	if rec != nil {
		a.outf("started:  %s\nupdated:  %s\n", rec.StartedAt.Format(time.RFC3339), rec.UpdatedAt.Format(time.RFC3339))
		if rec.Deliveries > 0 {
			a.outf("deliveries: %d\n", rec.Deliveries)
		}
		if rec.LastError != "" {
			a.outf("last error: %s (at %s)\n", safe(rec.LastError), rec.LastFailure.Format(time.RFC3339))
		}
		if rec.Reason != "" {
			a.outf("reason:   %s\n", safe(rec.Reason))
		}
	}
	for _, c := range cmds {
		a.outf("published: %s seq %d at %s\n", safe(c.subject), c.seq, c.at.UTC().Format(time.RFC3339))
	}
	if rec != nil && rec.Status == ledger.StatusProcessing {
		a.printProgress(ctx, id)
	}
	a.printEvents(evts)
	for _, e := range dead {
		a.outf("dead letter: seq %d, %s, %d deliveries, %s ago: %s\n", e.Seq, e.Kind, e.Deliveries, age(a.now().Sub(e.Stored)), safe(e.Reason))
	}
	if rec != nil && rec.Status == ledger.StatusCompleted && len(rec.Event) > 0 {
		a.outf("outcome (%s):\n%s\n", safe(rec.EventType), pretty(rec.Event))
		if note := truncationNote(rec.Event); note != "" {
			a.outf("%s\n", note)
		}
	}
	if len(dead) > 0 {
		a.outf("replay with: groupctl dlq replay %d\n", dead[len(dead)-1].Seq)
	}
	return nil
}
