package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"groupflow/messages"
)

func (a *app) eventsCmd() *cobra.Command {
	c := &cobra.Command{Use: "events", Short: "Follow groupflow's events"}
	var types []string
	var since string
	var asJSON bool
	var count int
	tail := &cobra.Command{
		Use:   "tail [--type T]... [--since 1h] [--json]",
		Short: "Print events as they arrive, one line each (Ctrl-C stops)",
		Long: `Follows the events stream from now on, or from --since (a duration such as
1h or 7d, or an RFC 3339 time), printing one readable line per event, or
the event body as one JSON line with --json.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.tail(c.Context(), types, since, asJSON, count)
		},
	}
	f := tail.Flags()
	f.StringSliceVar(&types, "type", nil, "event type(s) to follow, e.g. member_selected (default: all)")
	f.StringVar(&since, "since", "", "start this long ago (1h, 7d) or at an RFC 3339 time (default: now)")
	f.BoolVar(&asJSON, "json", false, "print each event body as one JSON line")
	f.IntVar(&count, "count", 0, "stop after this many events (0: follow until interrupted)")
	c.AddCommand(tail)
	return c
}

func (a *app) tail(ctx context.Context, types []string, sinceStr string, asJSON bool, count int) error {
	since, err := a.parseSince(sinceStr)
	if err != nil {
		return err
	}
	subj := a.subjects()
	var filters []string
	for _, t := range types {
		if !messages.IsEventType(t) {
			return fmt.Errorf("unknown event type %q (known: %v)", t, messages.EventTypes())
		}
		filters = append(filters, subj.Event(t))
	}
	if len(filters) == 0 {
		filters = []string{subj.Events()}
	}
	js, err := a.connect()
	if err != nil {
		return err
	}
	// A refused grant ends tail at once, with the server's reason.
	ctx, stop := a.permissionGuard(ctx)
	defer stop()
	err = a.follow(ctx, js, subj, filters, since, asJSON, count)
	return guardErr(ctx, err)
}

// follow prints the events on filters from since (or from now on) until
// count events were printed (count <= 0: until ctx ends).
func (a *app) follow(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, filters []string, since time.Time, asJSON bool, count int) error {
	st, err := js.Stream(ctx, subj.EventStream())
	if err != nil {
		return fmt.Errorf("stream %s: %w", subj.EventStream(), err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverNewPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	printed := 0
	for count <= 0 || printed < count {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if ctx.Err() != nil {
			if gerr := guardErr(ctx, nil); gerr != nil {
				return gerr
			}
			return nil // interrupted: a normal end of tail
		}
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			return err
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		et, _ := subj.EventTypeOf(m.Subject())
		if asJSON {
			writeJSONLine(a.stdout, m.Data())
		} else {
			a.outf("%s\n", eventLine(et, md.Timestamp, m.Data()))
		}
		printed++
	}
	return nil
}

// writeJSONLine writes a JSON body on one line.
func writeJSONLine(w io.Writer, b []byte) {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		out.Reset()
		out.Write(b)
	}
	fmt.Fprintf(w, "%s\n", jsonSafe(out.String()))
}

func readAll(r io.Reader) ([]byte, error) { return readBounded(r, "stdin") }

// readBounded reads a command body (or part of one) from r, named name in
// the error: at most messages.MaxCommandBytes, which Decode would refuse
// anyway, so an endless or huge input fails at once instead of filling
// memory.
func readBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, messages.MaxCommandBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > messages.MaxCommandBytes {
		return nil, fmt.Errorf("%s: more than %d bytes (a command's limit)", name, messages.MaxCommandBytes)
	}
	return b, nil
}

// readFileBounded is readBounded of the file name.
func readFileBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f, name)
}
