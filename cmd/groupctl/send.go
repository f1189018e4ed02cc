package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"groupflow/internal/roster"
	"groupflow/messages"
)

// sendOpts are the flags every send verb shares.
type sendOpts struct {
	id, site, correlation string
	wait                  bool
	timeout, idle         time.Duration
}

func (o *sendOpts) bind(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVar(&o.id, "id", "", "command id (default: <type>-<random>)")
	f.StringVar(&o.site, "site", "", "Wix site id (default: the processor's default site)")
	f.StringVar(&o.correlation, "correlation-id", "", "correlation id echoed on every resulting event")
	f.BoolVar(&o.wait, "wait", false, "wait for the completion event (or command_failed) and print it, with the command's progress (a bar on a terminal)")
	f.DurationVar(&o.idle, "idle-timeout", 5*time.Minute, "--wait gives up after this long without progress (no counter or Wix call moved)")
	f.DurationVar(&o.timeout, "timeout", 0, "--wait gives up after this long in total (default: never while there is progress)")
}

func (a *app) sendCmd() *cobra.Command {
	o := &sendOpts{}
	var subject string
	c := &cobra.Command{
		Use:   "send (provision|campaign|questions|rules|report) [flags] | send --subject SUBJECT FILE.json",
		Short: "Send a command and print its id (--wait: and its outcome)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if subject == "" || len(args) != 1 {
				return fmt.Errorf("%w: send --subject SUBJECT FILE.json (or a send subcommand, see --help)", errUsage)
			}
			return a.sendRaw(c.Context(), o, subject, args[0])
		},
	}
	o.bind(c)
	c.Flags().StringVar(&subject, "subject", "", "subject (groups.cmd.<type>) or command type of a raw command in FILE.json ('-' reads stdin)")
	c.AddCommand(a.sendProvisionCmd(o), a.sendCampaignCmd(o), a.sendQuestionsCmd(o), a.sendRulesCmd(o), a.sendReportCmd(o))
	return c
}

func (a *app) sendProvisionCmd(o *sendOpts) *cobra.Command {
	var name, rosterPath, privacy, description, creator string
	var sync, strict, allowDup, massRemoval, updateSettings bool
	c := &cobra.Command{
		Use:   "provision --name NAME --roster roster.csv",
		Short: "Create (or reuse) a group and add the people of a CSV roster",
		Long: `Reads a CSV roster whose header row names the columns (email, phone,
contactId, name, first name, last name; any order, extra columns ignored),
reports the rows it cannot use with their line numbers, and sends a
provision_group command with the others.

With --sync, members not in the roster are removed (admins never). A sync
that would remove more than half of the group's members, or that keeps no
one (an empty roster, or no row found), is refused before anyone is added
or removed, unless --allow-mass-removal is given.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cmd := &messages.ProvisionGroup{Group: messages.GroupSpec{Name: name, Description: description, PrivacyStatus: strings.ToUpper(privacy)}, CreatorID: creator, AllowDuplicateName: allowDup, AllowMassRemoval: massRemoval, UpdateSettings: updateSettings}
			if sync {
				cmd.Membership = messages.MembershipSync
			}
			if rosterPath != "" {
				res, err := roster.ReadFile(rosterPath)
				if err != nil {
					return err
				}
				for _, b := range res.Bad {
					a.errf("%s: %s\n", rosterPath, b)
				}
				if len(res.Bad) > 0 {
					a.errf("%s: %d usable rows, %d rows left out\n", rosterPath, len(res.People), len(res.Bad))
					if strict {
						return fmt.Errorf("%s: %d bad rows (--strict)", rosterPath, len(res.Bad))
					}
				}
				if len(res.Ignored) > 0 {
					a.errf("%s: ignored columns: %s\n", rosterPath, strings.Join(res.Ignored, ", "))
				}
				cmd.People = res.People
			}
			return a.sendTyped(c.Context(), o, cmd)
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "group name (required)")
	f.StringVar(&rosterPath, "roster", "", "CSV roster of the people to add")
	f.StringVar(&privacy, "privacy", "", "PUBLIC (default), PRIVATE or SECRET")
	f.StringVar(&description, "description", "", "group description")
	f.StringVar(&creator, "creator", "", "Wix member id to create the group as")
	f.BoolVar(&sync, "sync", false, "make the members exactly the roster (removes members not listed)")
	f.BoolVar(&allowDup, "allow-duplicate-name", false, "create a new group even if one has this name")
	f.BoolVar(&massRemoval, "allow-mass-removal", false, "with --sync: allow removing more than half of the members, or everyone but the admins")
	f.BoolVar(&strict, "strict", false, "refuse to send when the roster has bad rows")
	f.BoolVar(&updateSettings, "update-settings", false, "a reused group takes --privacy (and the other settings given) when its own differ; without it they are only reported")
	_ = c.MarkFlagRequired("name")
	return c
}

func (a *app) sendCampaignCmd(o *sendOpts) *cobra.Command {
	var campaignID, match, content string
	var groups, keywords, questionIDs []string
	c := &cobra.Command{
		Use:   "campaign --campaign-id ID --group GROUP_ID...",
		Short: "Select the members of groups who should receive a campaign",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cmd := &messages.SendCampaign{CampaignID: campaignID, GroupIDs: groups}
			if len(keywords) > 0 {
				cmd.Audience = messages.Audience{Type: messages.AudienceInterest, Keywords: keywords, Match: match, QuestionIDs: questionIDs}
			}
			if content != "" {
				raw, err := readArg(content)
				if err != nil {
					return fmt.Errorf("--content: %w", err)
				}
				if !json.Valid(raw) {
					return errors.New("--content: not valid JSON")
				}
				cmd.Content = raw
			}
			return a.sendTyped(c.Context(), o, cmd)
		},
	}
	f := c.Flags()
	f.StringVar(&campaignID, "campaign-id", "", "campaign id (required)")
	f.StringSliceVar(&groups, "group", nil, "group id (repeat or comma-separate)")
	f.StringSliceVar(&keywords, "keywords", nil, "interest keywords matched against membership answers (interest audience)")
	f.StringVar(&match, "match", "", "any (default) or all keywords")
	f.StringSliceVar(&questionIDs, "question-id", nil, "restrict keyword matching to these questions' answers")
	f.StringVar(&content, "content", "", "JSON object passed to every member_selected event, or @file")
	_ = c.MarkFlagRequired("campaign-id")
	return c
}

func (a *app) sendQuestionsCmd(o *sendOpts) *cobra.Command {
	var groups, questions, required []string
	var clear bool
	c := &cobra.Command{
		Use:   "questions --group GROUP_ID... --question TEXT...",
		Short: "Replace the membership questions of groups",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(questions)+len(required) == 0 && !clear {
				return fmt.Errorf("%w: give --question (or --clear to remove every question)", errUsage)
			}
			cmd := &messages.SetMembershipQuestions{GroupIDs: groups, Questions: []messages.Question{}}
			for _, q := range questions {
				cmd.Questions = append(cmd.Questions, messages.Question{Text: q})
			}
			for _, q := range required {
				cmd.Questions = append(cmd.Questions, messages.Question{Text: q, Required: true})
			}
			return a.sendTyped(c.Context(), o, cmd)
		},
	}
	f := c.Flags()
	f.StringSliceVar(&groups, "group", nil, "group id (repeat or comma-separate)")
	f.StringArrayVar(&questions, "question", nil, "question text (repeat)")
	f.StringArrayVar(&required, "required-question", nil, "question that must be answered (repeat)")
	f.BoolVar(&clear, "clear", false, "remove every question")
	return c
}

func (a *app) sendRulesCmd(o *sendOpts) *cobra.Command {
	var source, prefix string
	var groups []string
	var all, dry, allowEmpty bool
	c := &cobra.Command{
		Use:   "rules --source GROUP_ID (--all | --group ID... | --prefix NAME_PREFIX)",
		Short: "Copy the rules of a group to other groups",
		Long: `Makes the rules of every target equal to the source group's rules.
A source group with no rules would clear the targets' rules: that is
refused unless --allow-empty is given.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cmd := &messages.PropagateRules{SourceGroupID: source, DryRun: dry, AllowEmpty: allowEmpty,
				Targets: messages.Targets{All: all, GroupIDs: groups, NamePrefix: prefix}}
			return a.sendTyped(c.Context(), o, cmd)
		},
	}
	f := c.Flags()
	f.StringVar(&source, "source", "", "group whose rules are copied (required)")
	f.BoolVar(&all, "all", false, "every other group of the site")
	f.StringSliceVar(&groups, "group", nil, "target group id (repeat or comma-separate)")
	f.StringVar(&prefix, "prefix", "", "target the groups whose name starts with this")
	f.BoolVar(&dry, "dry-run", false, "compute the diffs without writing")
	f.BoolVar(&allowEmpty, "allow-empty", false, "let a source with no rules clear the targets' rules")
	_ = c.MarkFlagRequired("source")
	c.MarkFlagsMutuallyExclusive("all", "group", "prefix")
	c.MarkFlagsOneRequired("all", "group", "prefix")
	return c
}

func (a *app) sendReportCmd(o *sendOpts) *cobra.Command {
	var top, idle, idleDays, large, small int
	var all bool
	var tz string
	c := &cobra.Command{
		Use:   "report [--all-groups] [--tz ZONE] [--top N] [--idle N] [--idle-days D] [--large N] [--small N]",
		Short: "Build the site's group report (top and idle groups; with --all-groups every group and the changes since the last such report)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.sendTyped(c.Context(), o, &messages.GenerateReport{Top: top, Idle: idle, IdleDays: idleDays,
				AllGroups: all, TimeZone: tz, LargeGroup: large, SmallGroup: small})
		},
	}
	f := c.Flags()
	f.BoolVar(&all, "all-groups", false, "list every group (⌈G/100⌉ Wix calls for G groups) and compare with the site's previous all-groups report")
	f.StringVar(&tz, "tz", "", "IANA time zone of the report's times (default the site's, else UTC)")
	f.IntVar(&large, "large", 0, "members from which an idle group is flagged (default 20)")
	f.IntVar(&small, "small", 0, "groups with fewer members are flagged (default 3)")
	f.IntVar(&top, "top", 0, "how many largest groups to list (default 10)")
	f.IntVar(&idle, "idle", 0, "how many idle groups to list (default 10)")
	f.IntVar(&idleDays, "idle-days", 0, "list as idle only groups without activity for this many days")
	return c
}

// readArg returns s, or the content of file s[1:] when s starts with '@'.
func readArg(s string) ([]byte, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		return readFileBounded(name)
	}
	return []byte(s), nil
}

// newID returns "<type>-<12 hex digits>".
func newID(commandType string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.ReplaceAll(commandType, "_", "-") + "-" + hex.EncodeToString(b[:])
}

func (a *app) sendTyped(ctx context.Context, o *sendOpts, cmd messages.Command) error {
	meta := cmd.Meta()
	meta.ID = o.id
	if meta.ID == "" {
		meta.ID = newID(cmd.CommandType())
	}
	meta.SiteID = o.site
	meta.CorrelationID = o.correlation
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	return a.publish(ctx, o, cmd.CommandType(), body, meta.ID)
}

func (a *app) sendRaw(ctx context.Context, o *sendOpts, subject, file string) error {
	subj := a.subjects()
	t, ok := subj.CommandTypeOf(subject)
	if !ok {
		if !strings.Contains(subject, ".") {
			t = subject // a bare command type
		} else {
			return fmt.Errorf("--subject %s is not a command subject (%s)", subject, subj.Commands())
		}
	}
	var body []byte
	var err error
	if file == "-" {
		body, err = readAll(a.stdin)
	} else {
		body, err = readFileBounded(file)
	}
	if err != nil {
		return err
	}
	id := o.id
	if id == "" {
		var peek struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &peek)
		id = peek.ID
	}
	if id == "" {
		id = newID(t)
	}
	return a.publish(ctx, o, t, body, id)
}

// publish validates body as a command of type t, publishes it with id as
// Nats-Msg-Id (the command id when the body has none), prints the id and,
// with --wait, the outcome.
func (a *app) publish(ctx context.Context, o *sendOpts, t string, body []byte, id string) error {
	if _, err := messages.Decode(t, body); err != nil {
		var verr *messages.ValidationError
		if errors.As(err, &verr) {
			a.errf("invalid %s command:\n", t)
			for _, f := range verr.Fields {
				a.errf("  %s\n", f)
			}
			return errSilent
		}
		return err
	}
	js, err := a.connect()
	if err != nil {
		return err
	}
	subj := a.subjects()
	want := completionEvent[t]
	var evts jetstream.Consumer
	if o.wait {
		// A refused grant ends the wait at once, with the server's reason.
		var stop func()
		ctx, stop = a.permissionGuard(ctx)
		defer stop()
		// Follow the outcome events from before publishing: a fast processor
		// must not beat us. An ordered consumer on the events stream (what
		// the ops grants allow), not a subscription to every event.
		if evts, err = outcomeConsumer(ctx, js, subj, want); err != nil {
			return guardErr(ctx, err)
		}
	}
	m := nats.NewMsg(subj.Command(t))
	m.Data = body
	m.Header.Set(nats.MsgIdHdr, id)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, guardErr(ctx, err))
	}
	a.outf("%s\n", id)
	if ack.Duplicate {
		a.errf("note: a command with id %s was published within the last 2 minutes; this one was dropped as its duplicate\n", id)
	} else {
		a.errf("published %s on %s (stream seq %d)\n", t, m.Subject, ack.Sequence)
	}
	if !o.wait {
		return nil
	}
	if ack.Duplicate {
		// The original may be done already: its outcome is in the stream.
		found, err := findEvents(ctx, js, subj, id)
		if err != nil {
			return guardErr(ctx, err)
		}
		for _, e := range found {
			if e.Type != want && e.Type != messages.EvtCommandFailed {
				continue
			}
			st, err := js.Stream(ctx, subj.EventStream())
			if err != nil {
				return err
			}
			m, err := st.GetMsg(ctx, e.Seq)
			if err != nil {
				return err
			}
			return a.printOutcome(e.Type, m.Time, m.Data, id, t)
		}
	}
	return a.awaitOutcome(ctx, o, evts, id, t, want)
}

// outcomeConsumer follows, from now on, the events that can end a command
// whose completion event is want: want itself and command_failed.
func outcomeConsumer(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, want string) (jetstream.Consumer, error) {
	st, err := js.Stream(ctx, subj.EventStream())
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", subj.EventStream(), err)
	}
	filters := []string{subj.Event(messages.EvtCommandFailed)}
	if want != "" {
		filters = append(filters, subj.Event(want))
	}
	// From the sequence after the stream's last message now, not
	// DeliverNew: an ordered consumer is recreated on its first fetch, and
	// DeliverNew would then skip what arrived in between.
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", subj.EventStream(), err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: info.State.LastSeq + 1, InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	return cons, nil
}

// printOutcome prints a command's outcome event; command_failed is an error.
func (a *app) printOutcome(et string, at time.Time, body []byte, id, t string) error {
	a.outf("%s\n%s\n", eventLine(et, at, body), pretty(body))
	if et == messages.EvtCommandFailed {
		return fmt.Errorf("command %s failed (see groupctl dlq ls --command %s)", id, t)
	}
	return nil
}
