package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"groupflow/internal/ops"
)

func (a *app) opsClient() (*ops.Client, error) {
	if _, err := a.connect(); err != nil {
		return nil, err
	}
	return &ops.Client{NC: a.nc, Subjects: a.subjects()}, nil
}

func (a *app) groupsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "groups",
		Short: "Find groups and their ids: list them, show one (asks the running processor)",
		Long: `Asks a running groupflow processor (request/reply on groups.ops.groups.*), which
reads the site through its own Wix client and rate limiter: read-only, and
what it costs in Wix calls is printed.`,
		Example: `  groupctl groups ls
  groupctl groups ls --prefix Yoga --with-questions
  groupctl groups show "Yoga Monday"
  groupctl groups show 28b3412a-3c4d-42d0-bc63-c1b56c70c151 --json`,
	}
	c.AddCommand(a.groupsLsCmd(), a.groupsShowCmd())
	return c
}

func (a *app) groupsLsCmd() *cobra.Command {
	var req ops.ListRequest
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [--prefix NAME_PREFIX] [--with-questions|--with-rules] [--limit N]",
		Short: "List the site's groups: id, name, privacy, members (oldest first)",
		Long: fmt.Sprintf(`Lists the groups of the site (--site, default the processor's), at most --limit
(default %d, at most %d). --with-questions / --with-rules keep the groups that
have membership questions / rules, and cost one Wix call per group read.`, ops.DefaultListLimit, ops.MaxListLimit),
		Example: `  groupctl groups ls --prefix Yoga
  groupctl groups ls --with-questions --limit 20
  groupctl groups ls --with-rules --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := a.opsClient()
			if err != nil {
				return err
			}
			r, err := cl.ListGroups(c.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(a, r)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPRIVACY\tMEMBERS"+optCol(req.WithQuestions, "\tQUESTIONS")+optCol(req.WithRules, "\tRULES"))
			for _, g := range r.Groups {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d%s%s\n", safe(g.ID), safe(truncate(g.Name, 60)), safe(g.PrivacyStatus), g.MembersCount, optCount(g.Questions), optCount(g.Rules))
			}
			_ = tw.Flush()
			more := ""
			if r.Truncated {
				more = " (stopped at --limit; more may exist: narrow with --prefix or raise --limit)"
			}
			a.errf("%d group(s) on site %s%s; %d Wix call(s)\n", len(r.Groups), safe(r.SiteID), more, r.WixCalls)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&req.SiteID, "site", "", "Wix site id (default: the processor's default site)")
	f.StringVar(&req.Prefix, "prefix", "", "only groups whose name starts with this (case-insensitive)")
	f.BoolVar(&req.WithQuestions, "with-questions", false, "only groups with membership questions (1 Wix call per group)")
	f.BoolVar(&req.WithRules, "with-rules", false, "only groups with rules (1 Wix call per group)")
	f.IntVar(&req.Limit, "limit", ops.DefaultListLimit, "at most this many groups")
	f.BoolVar(&asJSON, "json", false, "print the answer as JSON")
	return c
}

func optCol(on bool, col string) string {
	if on {
		return col
	}
	return ""
}

func optCount(n *int) string {
	if n == nil {
		return ""
	}
	return "\t" + strconv.Itoa(*n)
}

func (a *app) groupsShowCmd() *cobra.Command {
	var req ops.ShowRequest
	var asJSON bool
	c := &cobra.Command{
		Use:   "show GROUP_ID|NAME",
		Short: "Show one group: members count, privacy, membership questions, rules",
		Long: `Looks the group up by id, else by exact name; when several groups have that
name, lists them (with their ids) instead. Costs 3 Wix calls.`,
		Example: `  groupctl groups show "Yoga Monday"
  groupctl groups show 28b3412a-3c4d-42d0-bc63-c1b56c70c151`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			req.Group = args[0]
			cl, err := a.opsClient()
			if err != nil {
				return err
			}
			r, err := cl.ShowGroup(c.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndented(a, r)
			}
			if r.Group == nil {
				a.outf("%d groups are named %q; show one by id:\n", len(r.Matches), safe(req.Group))
				for _, g := range r.Matches {
					a.outf("  %s  %s  %d members\n", safe(g.ID), safe(g.PrivacyStatus), g.MembersCount)
				}
				return nil
			}
			a.printGroup(r.Group)
			a.errf("%d Wix call(s)\n", r.WixCalls)
			return nil
		},
	}
	c.Flags().StringVar(&req.SiteID, "site", "", "Wix site id (default: the processor's default site)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")
	return c
}

func (a *app) printGroup(g *ops.GroupDetail) {
	a.outf("id:       %s\nname:     %s\n", safe(g.ID), safe(g.Name))
	if g.Slug != "" {
		a.outf("slug:     %s\n", safe(g.Slug))
	}
	a.outf("privacy:  %s\nmembers:  %d\n", safe(g.PrivacyStatus), g.MembersCount)
	a.outf("questions (%d):\n", len(g.QuestionList))
	for i, q := range g.QuestionList {
		req := ""
		if q.Required {
			req = " (required)"
		}
		a.outf("  %d. %s%s  [%s]\n", i+1, safe(truncate(q.Text, 300)), req, safe(q.ID))
	}
	a.outf("rules (%d):\n", len(g.RuleList))
	for i, r := range g.RuleList {
		a.outf("  %d. %s: %s\n", i+1, safe(truncate(r.Title, 100)), safe(truncate(r.Description, 300)))
	}
}

// writeIndented prints a processor's answer as indented JSON, terminal-safe
// (writeJSON): group names and texts come from Wix, the answer from whoever
// replied.
func writeIndented(a *app, v any) error { return writeJSON(a.stdout, v) }
