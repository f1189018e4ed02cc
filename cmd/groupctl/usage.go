package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// requireSubcommands makes every command that only groups subcommands
// (dlq, events, ...) refuse an unknown subcommand with a suggestion ("did
// you mean ls?") and a usage error (exit 2), instead of printing its help
// and succeeding; flag errors are usage errors too.
func requireSubcommands(c *cobra.Command) {
	c.SuggestionsMinimumDistance = 2
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	for _, sub := range c.Commands() {
		requireSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%w: %s needs a subcommand (%s); see %s --help", errUsage, c.CommandPath(), subcommandNames(c), c.CommandPath())
		}
		return unknownSubcommand(c, args[0])
	}
	c.RunE = func(*cobra.Command, []string) error { return nil } // never reached: Args refuses
}

// unknownSubcommand is the usage error of "c arg" when arg is no subcommand of c.
func unknownSubcommand(c *cobra.Command, arg string) error {
	msg := fmt.Sprintf("unknown command %q for %q", arg, c.CommandPath())
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	} else {
		msg += fmt.Sprintf(" (known: %s)", subcommandNames(c))
	}
	return fmt.Errorf("%w: %s", errUsage, msg)
}

func subcommandNames(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return strings.Join(names, ", ")
}
