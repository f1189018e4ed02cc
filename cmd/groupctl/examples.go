package main

import "github.com/spf13/cobra"

// examples are the help examples of the commands that do not set their own
// (by command path); TestEveryCommandHasExamples holds every command to it.
var examples = map[string]string{
	"groupctl send": `  groupctl send report --top 10 --idle 10 --idle-days 30 --wait
  groupctl send --subject groups.cmd.provision_group cmd.json --id prov-1 --wait
  echo '{"id":"r-1","top":3}' | groupctl send --subject generate_report -`,
	"groupctl send provision": `  groupctl send provision --name "Yoga Monday" --roster roster.csv --privacy PRIVATE --wait
  groupctl send provision --name "Yoga Monday" --roster roster.csv --sync --strict
  groupctl send provision --name "Yoga Monday" --privacy PRIVATE --update-settings --wait`,
	"groupctl send campaign": `  groupctl send campaign --campaign-id spring --group <groupId> --content '{"templateId":"spring-offer"}' --wait
  groupctl send campaign --campaign-id pilates --group <groupId> --keywords 'pilates,"hot yoga"' --match any`,
	"groupctl send questions": `  groupctl send questions --group <groupId> --question "Which classes interest you?" --wait
  groupctl send questions --group g1,g2 --question "Why do you join?" --required-question "Which classes interest you?"
  groupctl send questions --group <groupId> --clear`,
	"groupctl send rules": `  groupctl send rules --source <groupId> --prefix Yoga --dry-run --wait
  groupctl send rules --source <groupId> --all`,
	"groupctl send report": `  groupctl send report --wait
  groupctl send report --top 5 --idle 5 --idle-days 30 --wait`,
	"groupctl events": `  groupctl events tail --type member_selected --since 1h`,
	"groupctl events tail": `  groupctl events tail
  groupctl events tail --type campaign_completed --type command_failed --since 24h
  groupctl events tail --since 2026-11-26T07:00:00Z --json`,
	"groupctl dlq": `  groupctl dlq ls
  groupctl dlq replay --all --dry-run`,
	"groupctl dlq ls": `  groupctl dlq ls --since 24h
  groupctl dlq ls --command provision_group --reason-contains "400" --wide`,
	"groupctl dlq show":   `  groupctl dlq show 1`,
	"groupctl dlq replay": "  groupctl dlq replay 1\n  groupctl dlq replay --all --dry-run\n  groupctl dlq replay --command send_campaign",
	"groupctl dlq purge":  "  groupctl dlq purge 3 4\n  groupctl dlq purge --reason-contains boom --yes",
	"groupctl report":     `  groupctl report get r-1 --format html -o report.html`,
	"groupctl report get": "  groupctl report get r-1 --format html -o report.html\n  groupctl report get r-1 --format csv",
	"groupctl schedule":   "  groupctl schedule report weekly --cron \"0 0 8 * * MON\" --tz Europe/Berlin\n  groupctl schedule ls",
	"groupctl schedule report": "  groupctl schedule report weekly --cron \"0 0 8 * * MON\" --tz Europe/Berlin --site-id school\n" +
		"  groupctl schedule report daily --every 24h",
	"groupctl schedule campaign": `  groupctl schedule campaign spring --at 2027-01-10T09:00:00Z --file campaign.json`,
	"groupctl schedule ls":       `  groupctl schedule ls`,
	"groupctl schedule rm":       `  groupctl schedule rm report.weekly`,
	"groupctl wix":               `  groupctl wix check`,
	"groupctl wix check":         `  groupctl wix check`,
}

// addExamples sets the examples of c and its subcommands from examples.
func addExamples(c *cobra.Command) {
	if c.Example == "" {
		c.Example = examples[c.CommandPath()]
	}
	for _, s := range c.Commands() {
		addExamples(s)
	}
}
