package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"groupflow/internal/schedule"
	"groupflow/messages"
)

// scheduleCmd manages JetStream message schedules (package schedule): the
// server itself republishes the command at each fire.
func (a *app) scheduleCmd() *cobra.Command {
	c := &cobra.Command{Use: "schedule", Short: "Schedule reports and campaigns on the NATS server (JetStream message schedules)"}
	c.AddCommand(a.scheduleKindCmd("report", "Schedule generate_report", `{"allGroups":true}`),
		a.scheduleKindCmd("campaign", "Schedule send_campaign (usually once, with --at)", ""))
	c.AddCommand(&cobra.Command{
		Use: "ls", Short: "List the schedules", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			js, err := a.connect()
			if err != nil {
				return err
			}
			list, err := schedule.List(c.Context(), js, a.subjects())
			if err != nil {
				return err
			}
			slices.SortFunc(list, func(x, y schedule.Schedule) int { return strings.Compare(x.Kind+"."+x.Name, y.Kind+"."+y.Name) })
			for _, s := range list {
				tz := s.TimeZone
				if tz == "" {
					tz = "UTC"
				}
				// Escaped (safe): whoever may publish on the schedules
				// stream wrote these, and a tab or newline in one would
				// shift the columns.
				fmt.Fprintf(a.stdout, "%s.%s\t%s\t%s\t%s\t%s\n", safe(s.Kind), safe(s.Name), safe(s.Pattern), safe(tz), safe(s.Target), safe(string(s.Body)))
			}
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use: "rm KIND.NAME", Short: "Remove a schedule (e.g. report.weekly)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			kind, name, _ := strings.Cut(args[0], ".")
			js, err := a.connect()
			if err != nil {
				return err
			}
			ok, err := schedule.Remove(c.Context(), js, a.subjects(), kind, name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("no schedule %s", args[0])
			}
			a.errf("removed schedule %s\n", args[0])
			return nil
		},
	})
	return c
}

func (a *app) scheduleKindCmd(kind, short, defaultBody string) *cobra.Command {
	var s schedule.Spec
	var at, body, file, site string
	c := &cobra.Command{
		Use:   kind + " NAME (--cron EXPR [--tz ZONE] | --every DURATION | --at RFC3339) [--body JSON | --file F] [--site-id S]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s.Kind, s.Name, s.CreatedBy = kind, args[0], "groupctl"
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--at: %w", err)
				}
				if !t.After(a.now()) {
					return fmt.Errorf("--at %s is in the past", at)
				}
				s.At = t
			}
			b, err := scheduleBody(body, file, defaultBody, site)
			if err != nil {
				return err
			}
			s.Body = b
			js, err := a.connect()
			if err != nil {
				return err
			}
			out, err := schedule.Create(c.Context(), js, a.subjects(), s)
			if err != nil {
				return err
			}
			a.errf("schedule %s.%s: %s -> %s (stream seq %d)\n", kind, s.Name, out.Pattern, out.Target, out.Seq)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&s.Cron, "cron", "", `6-field cron: seconds minutes hours day-of-month month day-of-week, e.g. "0 0 8 * * MON"`)
	f.StringVar(&s.TimeZone, "tz", "", "IANA time zone of --cron, e.g. Europe/Berlin (default UTC)")
	f.DurationVar(&s.Every, "every", 0, "fire every DURATION (at least 1s)")
	f.StringVar(&at, "at", "", "fire once at this time (RFC 3339, e.g. 2027-01-10T09:00:00Z; no time zone)")
	f.StringVar(&body, "body", "", "the command's JSON body, without \"id\" (default "+strings.TrimSpace(defaultBody+" for a report")+")")
	f.StringVar(&file, "file", "", "read the command's JSON body from this file")
	f.StringVar(&site, "site-id", "", "the site (sets siteId in the body)")
	return c
}

// scheduleBody is the command body: --body, --file or the default, with
// siteId set when given.
func scheduleBody(body, file, def, site string) ([]byte, error) {
	b := []byte(body)
	switch {
	case file != "" && body != "":
		return nil, fmt.Errorf("give --body or --file, not both")
	case file != "":
		var err error
		if b, err = readFileBounded(file); err != nil {
			return nil, err
		}
	case body == "" && def == "":
		return nil, fmt.Errorf("give the command body with --body or --file")
	case body == "":
		b = []byte(def)
	}
	if site == "" {
		return b, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if p := messages.SiteIDProblem(site); p != "" {
		return nil, fmt.Errorf("--site-id: %s", p)
	}
	m["siteId"], _ = json.Marshal(site)
	return json.Marshal(m)
}
