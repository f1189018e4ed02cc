package main

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"groupflow/internal/dlq"
	"groupflow/messages"
)

// selectors are the flags that pick dead letters.
type selectors struct {
	command, reason, since string
	all                    bool
}

func (s *selectors) bind(c *cobra.Command, withAll bool) {
	f := c.Flags()
	f.StringVar(&s.command, "command", "", "command type, e.g. provision_group")
	f.StringVar(&s.reason, "reason-contains", "", "reason contains this text (case-insensitive)")
	f.StringVar(&s.since, "since", "", "stored within this duration (24h, 7d) or since an RFC 3339 time")
	if withAll {
		f.BoolVar(&s.all, "all", false, "every dead letter")
	}
}

func (a *app) filter(s *selectors, args []string) (dlq.Filter, error) {
	f := dlq.Filter{CommandType: s.command, ReasonContains: s.reason, All: s.all}
	if s.command != "" && !messages.IsCommandType(s.command) && s.command != "unknown" {
		return f, fmt.Errorf("unknown command type %q (known: %v)", s.command, messages.CommandTypes())
	}
	since, err := a.parseSince(s.since)
	if err != nil {
		return f, err
	}
	f.Since = since
	for _, arg := range args {
		seq, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || seq == 0 {
			return f, fmt.Errorf("%q is not a DLQ sequence number", arg)
		}
		f.Seqs = append(f.Seqs, seq)
	}
	if len(f.Seqs) > dlq.MaxSeqs {
		return f, fmt.Errorf("%w: %d sequences given: %w", errUsage, len(f.Seqs), dlq.ErrTooManySeqs)
	}
	return f, nil
}

func (a *app) store() (*dlq.Store, error) {
	js, err := a.connect()
	if err != nil {
		return nil, err
	}
	return dlq.NewStore(js, a.subjects()), nil
}

func (a *app) dlqCmd() *cobra.Command {
	c := &cobra.Command{Use: "dlq", Short: "List, show, replay and purge dead letters"}
	c.AddCommand(a.dlqLsCmd(), a.dlqShowCmd(), a.dlqReplayCmd(), a.dlqPurgeCmd())
	return c
}

func (a *app) dlqLsCmd() *cobra.Command {
	s := &selectors{}
	var asJSON, wide bool
	var limit int
	c := &cobra.Command{
		Use:     "ls [--command T] [--since 24h] [--reason-contains TEXT] [--limit N]",
		Aliases: []string{"list"},
		Short:   "List dead letters: sequence, command type, command id, reason, deliveries, age",
		Long: `Lists the first matching dead letters in DLQ order: at most --limit of
them and, as GET /dlq, at most 8 MiB of their text; when more match it says
so on stderr (narrow the selection, or raise --limit).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if limit < 1 || limit > dlq.MaxListLimit {
				return fmt.Errorf("%w: --limit %d: want 1 to %d", errUsage, limit, dlq.MaxListLimit)
			}
			f, err := a.filter(s, nil)
			if err != nil {
				return err
			}
			store, err := a.store()
			if err != nil {
				return err
			}
			entries, truncated, err := store.ListBounded(c.Context(), f, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if entries == nil {
					entries = []*dlq.Entry{}
				}
				err = writeJSON(a.stdout, entries)
			} else {
				a.writeTable(entries, wide)
			}
			if truncated {
				a.errf("more dead letters match: %d listed (narrow with --command, --since, --reason-contains, or raise --limit)\n", len(entries))
			}
			return err
		},
	}
	s.bind(c, false)
	c.Flags().IntVar(&limit, "limit", dlq.DefaultListLimit, fmt.Sprintf("list at most this many (at most %d)", dlq.MaxListLimit))
	c.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON")
	c.Flags().BoolVarP(&wide, "wide", "w", false, "do not shorten reasons")
	return c
}

func (a *app) writeTable(entries []*dlq.Entry, wide bool) {
	if len(entries) == 0 {
		a.errf("no dead letters\n")
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTYPE\tCOMMAND-ID\tREASON\tDELIVERIES\tAGE")
	now := a.now()
	for _, e := range entries {
		r := reason(e.Reason, wide)
		if e.Refused != "" {
			mark := "REFUSED (headers do not match the DLQ subject: see dlq show) "
			if t, ok := a.subjects().DLQTypeOf(e.Subject); ok && messages.IsEventType(t) {
				mark = "EVENT (not replayable) "
			}
			r = mark + r
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", e.Seq, safe(e.CommandType), safe(truncate(e.CommandID, 80)), safe(r), e.Deliveries, age(now.Sub(e.Stored)))
	}
	_ = tw.Flush()
}

func (a *app) dlqShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show everything about one dead letter, body included",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a DLQ sequence number", args[0])
			}
			store, err := a.store()
			if err != nil {
				return err
			}
			e, err := store.Get(c.Context(), seq)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, e.WithBody())
			}
			a.showEntry(e)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the entry as JSON")
	return c
}

func (a *app) showEntry(e *dlq.Entry) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%s\n", safe(k), safe(fmt.Sprint(v))) }
	row("seq", e.Seq)
	row("stored", fmt.Sprintf("%s (%s ago)", e.Stored.UTC().Format(time.RFC3339), age(a.now().Sub(e.Stored))))
	row("command type", e.CommandType)
	row("command id", e.CommandID)
	row("kind", e.Kind)
	if e.Refused != "" {
		row("REFUSED", e.Refused)
	}
	row("dlq subject", e.Subject)
	row("reason", e.Reason)
	for _, f := range e.Fields {
		row("  field", f.String())
	}
	row("original subject", e.OriginalSubject)
	row("original seq", e.OriginalSeq)
	row("handler", e.Handler)
	row("deliveries", e.Deliveries)
	row("first failure", e.FirstFailure.UTC().Format(time.RFC3339Nano))
	row("last failure", e.LastFailure.UTC().Format(time.RFC3339Nano))
	if e.HeadersDropped != "" {
		row("headers dropped", e.HeadersDropped)
	}
	keys := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("header "+k, e.Headers[k])
	}
	_ = tw.Flush()
	a.outf("body (%d bytes):\n%s\n", len(e.Body), pretty(e.Body))
}

func (a *app) dlqReplayCmd() *cobra.Command {
	s := &selectors{}
	var dry bool
	c := &cobra.Command{
		Use:   "replay (SEQ... | --all | --command T | --reason-contains TEXT) [--dry-run]",
		Short: "Republish dead letters to their original subject, then remove them",
		Long: `Republishes each selected dead letter to its original subject with its
original body, headers and command id (the ledger keeps Wix side effects
idempotent), and removes it from the DLQ only once the commands stream has
acknowledged the republish. Interrupting a replay loses nothing: an entry is
either still in the DLQ or replayed (at worst both, and replaying it again
is harmless).

An entry on groups.dlq.<T> is replayed only to groups.cmd.<T>, T a command
type: an entry whose headers name another subject or type (forged), and the
dead letters of events (the mailer's), are refused, reported and left in the
DLQ (dlq ls marks them REFUSED, dlq show says why).`,
		RunE: func(c *cobra.Command, args []string) error {
			f, err := a.filter(s, args)
			if err != nil {
				return err
			}
			if !selective(f) {
				return fmt.Errorf("%w: give sequences, --all, --command, --reason-contains or --since", errUsage)
			}
			store, err := a.store()
			if err != nil {
				return err
			}
			opts := dlq.ReplayOptions{DryRun: dry}
			var bar *progressbar.ProgressBar
			if a.terminal(a.stdout) && !dry {
				opts.Progress = func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(a.stderr),
							progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(),
							progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
					}
					_ = bar.Set(done)
				}
			}
			res, err := store.Replay(c.Context(), f, opts)
			if bar != nil {
				_ = bar.Finish()
			}
			verb := "replayed"
			if dry {
				verb = "would replay"
			}
			a.outf("%s %d, skipped %d, failed %d (of %d selected)\n", verb, res.Replayed, res.Skipped, res.Failed, res.Selected)
			if res.Refused > 0 {
				a.outf("refused %d: not replayable from their DLQ subject (forged or an event's dead letter); they stay in the DLQ\n", res.Refused)
			}
			for _, e := range res.Errors {
				mark := ""
				if e.Refused {
					mark = "REFUSED "
				}
				a.errf("  seq %d (%s): %s%s\n", e.Seq, safe(truncate(e.CommandID, 80)), mark, safe(e.Error))
			}
			if res.ErrorsLeftOut > 0 {
				a.errf("  (%d more not listed: the first %d are)\n", res.ErrorsLeftOut, dlq.MaxReplayErrors)
			}
			if err != nil {
				return fmt.Errorf("replay stopped: %w (the entries not replayed are still in the DLQ)", err)
			}
			if res.Failed > 0 {
				return errSilent
			}
			return nil
		},
	}
	s.bind(c, true)
	c.Flags().BoolVar(&dry, "dry-run", false, "count what would be replayed, change nothing")
	return c
}

func selective(f dlq.Filter) bool {
	return f.All || f.CommandType != "" || !f.Since.IsZero() || f.ReasonContains != "" || len(f.Seqs) > 0
}

func (a *app) dlqPurgeCmd() *cobra.Command {
	s := &selectors{}
	var yes bool
	c := &cobra.Command{
		Use:   "purge (SEQ... | --all | --command T | --reason-contains TEXT) [--yes]",
		Short: "Delete dead letters for good (asks for confirmation, or --yes)",
		RunE: func(c *cobra.Command, args []string) error {
			f, err := a.filter(s, args)
			if err != nil {
				return err
			}
			if !selective(f) {
				return fmt.Errorf("%w: give sequences, --all, --command, --reason-contains or --since", errUsage)
			}
			store, err := a.store()
			if err != nil {
				return err
			}
			if !yes {
				if !a.terminal(a.stdin) {
					return fmt.Errorf("%w: not a terminal: pass --yes to purge without confirmation", errUsage)
				}
				ok, err := a.confirm(c.Context(), store, f)
				if err != nil || !ok {
					return err
				}
			}
			n, err := store.Purge(c.Context(), f)
			if err != nil {
				return err
			}
			a.outf("purged %d\n", n)
			return nil
		},
	}
	s.bind(c, true)
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return c
}

// confirmShown is how many entries the purge confirmation lists: a larger
// selection is only counted.
const confirmShown = 20

// confirm shows what a purge would delete and asks. It holds at most
// confirmShown+1 entries, and counts every match.
func (a *app) confirm(ctx context.Context, store *dlq.Store, f dlq.Filter) (bool, error) {
	var entries []*dlq.Entry
	n := 0
	if err := store.Each(ctx, f, false, func(e *dlq.Entry) error {
		n++
		if len(entries) <= confirmShown {
			entries = append(entries, e)
		}
		return nil
	}); err != nil {
		return false, err
	}
	if n == 0 {
		a.outf("nothing to purge\n")
		return false, nil
	}
	if n <= confirmShown {
		a.writeTable(entries, false)
	}
	a.errf("Delete %d dead letter(s) for good? [y/N] ", n)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	a.outf("cancelled\n")
	return false, nil
}

func reason(s string, wide bool) string {
	if wide {
		return strings.Join(strings.Fields(s), " ")
	}
	return truncateMiddle(s, 90)
}
