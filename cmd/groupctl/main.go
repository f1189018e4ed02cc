// Command groupctl is groupflow's operator and integrator tool: it sends
// commands (a CSV roster becomes a provision_group command), follows events,
// tells what happened to a command, and lists, shows, replays and purges dead
// letters.
//
//	groupctl send provision --name "Yoga Monday" --roster roster.csv --wait
//	groupctl events tail --type member_selected --since 1h
//	groupctl status prov-3f9a2c
//	groupctl dlq ls --since 24h
//	groupctl dlq replay --command provision_group
//
// It connects to --nats-url, else GROUPCTL_NATS_URL, else the nats CLI
// context of --context, else NATS_URL, else nats://127.0.0.1:4222 (the
// embedded server of a single-machine groupflow); GROUPFLOW_NATS_URL, the
// processor's variable, is not read. Against a server with per-user inbox
// permissions (deploy/nats/accounts.conf) give --inbox-prefix _INBOX_ops
// (env GROUPCTL_INBOX_PREFIX). Exit status: 0 ok, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// maxErrorRunes bounds the error groupctl exits with as printed.
const maxErrorRunes = 2000

// printError prints the error groupctl exits with, unless it is errSilent:
// escaped like any untrusted text (safeBlock) and cut to maxErrorRunes, for
// its text may come from elsewhere (a processor's answer on groups.ops.*,
// forged or relaying Wix's words, a server's reason).
func printError(w io.Writer, err error) {
	if errors.Is(err, errSilent) {
		return
	}
	msg := err.Error()
	if r := []rune(msg); len(r) > maxErrorRunes {
		msg = string(r[:maxErrorRunes-1]) + "…"
	}
	fmt.Fprintln(w, "groupctl:", safeBlock(msg))
}

// exitCode is 2 for a usage error (unknown subcommand, bad flag), else 1.
func exitCode(err error) int {
	if errors.Is(err, errUsage) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

// errSilent is returned when the command already said what went wrong.
var errSilent = errors.New("failed")

// run executes groupctl with args; it is main without the process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := newApp(stdin, stdout, stderr)
	defer a.close()
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}
