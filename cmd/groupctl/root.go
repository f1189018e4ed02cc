package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"groupflow/internal/broker"
	"groupflow/internal/version"
	"groupflow/messages"
)

// defaultNATSURL is where a single-machine groupflow's embedded server listens.
const defaultNATSURL = "nats://127.0.0.1:4222"

// app holds the global flags and the lazily opened connection.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// terminal reports whether f is an interactive terminal (tests override it).
	terminal func(f any) bool
	now      func() time.Time

	natsURL, creds, nkey, tlsCert, tlsKey, tlsCA, prefix string
	// context names a nats CLI context; user, password and token come from it.
	context, user, password, token string
	// listEvents: status lists every event instead of counting them.
	listEvents bool
	// inboxPrefix replaces _INBOX in reply subjects (per-user permissions).
	inboxPrefix string

	nc *nats.Conn
	js jetstream.JetStream
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, terminal: isTerminal, now: time.Now}
}

func isTerminal(f any) bool {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		return term.IsTerminal(int(fd.Fd()))
	}
	return false
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "groupctl",
		Short: "Send groupflow commands, follow events, and manage dead letters",
		Long: `groupctl talks to groupflow through NATS: it publishes commands on
groups.cmd.<type>, follows events on groups.evt.<type>, reads the command
ledger, asks the running processor for progress and for the site's groups
(groups.ops.*), and lists, replays and purges dead letters (stream GROUPS_DLQ).

Connection, first found wins: --nats-url, GROUPCTL_NATS_URL, the nats CLI
context of --context (or GROUPCTL_CONTEXT; ~/.config/nats/context/NAME.json:
url, creds, nkey, cert, key, ca, user, password, token, inbox_prefix),
NATS_URL, then nats://127.0.0.1:4222 (make run's embedded server).
GROUPFLOW_NATS_URL is groupflow's own variable and is NOT read by groupctl:
exporting it would also switch the next make run to an external NATS.`,
		Example: `  groupctl send provision --name "Yoga Monday" --roster roster.csv --wait
  groupctl groups ls --prefix Yoga --with-questions
  groupctl status prov-3f9a2c --events
  groupctl dlq ls --since 24h
  NATS_URL=nats://nats.internal:4222 groupctl --context ops dlq replay --all --dry-run`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return a.resolveConnection()
		},
	}
	root.SetVersionTemplate("groupctl {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.natsURL, "nats-url", "", "NATS server URL(s), comma-separated (env GROUPCTL_NATS_URL, then the context's, then NATS_URL; default "+defaultNATSURL+")")
	pf.StringVar(&a.context, "context", os.Getenv("GROUPCTL_CONTEXT"), "nats CLI context name (~/.config/nats/context/NAME.json) (env GROUPCTL_CONTEXT)")
	pf.StringVar(&a.creds, "creds", "", "NATS credentials file (.creds)")
	pf.StringVar(&a.nkey, "nkey", "", "NATS nkey seed file")
	pf.StringVar(&a.tlsCert, "tls-cert", "", "client TLS certificate (mutual TLS)")
	pf.StringVar(&a.tlsKey, "tls-key", "", "client TLS key")
	pf.StringVar(&a.tlsCA, "tls-ca", "", "CA certificate to verify the server")
	pf.StringVar(&a.prefix, "prefix", messages.DefaultPrefix, "subject prefix of the deployment")
	pf.StringVar(&a.inboxPrefix, "inbox-prefix", os.Getenv("GROUPCTL_INBOX_PREFIX"),
		"reply subject prefix instead of _INBOX, e.g. _INBOX_ops to match per-user permissions (see deploy/nats/accounts.conf) (env GROUPCTL_INBOX_PREFIX)")

	root.AddCommand(a.sendCmd(), a.eventsCmd(), a.statusCmd(), a.groupsCmd(), a.dlqCmd(), a.reportCmd(), a.scheduleCmd(), a.wixCmd())
	requireSubcommands(root)
	addExamples(root)
	return root
}

// resolveConnection fills the connection settings from the environment and
// the nats CLI context, flags first.
func (a *app) resolveConnection() error {
	var nc *natsContext
	if a.context != "" {
		var err error
		if nc, err = loadNATSContext(a.context, os.Getenv); err != nil {
			return err
		}
	} else {
		nc = &natsContext{}
	}
	a.natsURL = cmp.Or(a.natsURL, os.Getenv("GROUPCTL_NATS_URL"), nc.URL, os.Getenv("NATS_URL"), defaultNATSURL)
	a.creds = cmp.Or(a.creds, nc.Creds)
	a.nkey = cmp.Or(a.nkey, nc.NKey)
	a.tlsCert, a.tlsKey, a.tlsCA = cmp.Or(a.tlsCert, nc.Cert), cmp.Or(a.tlsKey, nc.Key), cmp.Or(a.tlsCA, nc.CA)
	a.inboxPrefix = cmp.Or(a.inboxPrefix, nc.InboxPrefix)
	a.user, a.password, a.token = nc.User, nc.Password, nc.Token
	return nil
}

func (a *app) subjects() messages.Subjects { return messages.Subjects{Prefix: a.prefix} }

// connect opens the connection on first use. Unlike the processor's
// connection it fails fast: a CLI should say the server is unreachable.
func (a *app) connect() (jetstream.JetStream, error) {
	if a.js != nil {
		return a.js, nil
	}
	opts := []nats.Option{nats.Name("groupctl"), nats.Timeout(5 * time.Second)}
	if a.creds != "" {
		opts = append(opts, nats.UserCredentials(a.creds))
	}
	if a.nkey != "" {
		o, err := nats.NkeyOptionFromSeed(a.nkey)
		if err != nil {
			return nil, fmt.Errorf("nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if a.tlsCert != "" || a.tlsKey != "" {
		opts = append(opts, nats.ClientCert(a.tlsCert, a.tlsKey))
	}
	if a.tlsCA != "" {
		opts = append(opts, nats.RootCAs(a.tlsCA))
	}
	if a.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.inboxPrefix))
	}
	if a.user != "" {
		opts = append(opts, nats.UserInfo(a.user, a.password))
	}
	if a.token != "" {
		opts = append(opts, nats.Token(a.token))
	}
	nc, err := nats.Connect(a.natsURL, opts...)
	if err != nil {
		// One line, without the URL's password or token; a refusal names
		// the server's reason and the user.
		return nil, broker.DescribeConnectError(broker.ConnConfig{URL: a.natsURL, CredsFile: a.creds, NKeyFile: a.nkey,
			TLSCert: a.tlsCert}, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	a.nc, a.js = nc, js
	return js, nil
}

func (a *app) close() {
	if a.nc != nil {
		a.nc.Close()
	}
}

// outf prints to stdout.
func (a *app) outf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// errf prints to stderr.
func (a *app) errf(format string, args ...any) { fmt.Fprintf(a.stderr, format, args...) }

// parseSince reads --since: a duration before now ("1h", "7d") or an RFC 3339 time.
func (a *app) parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseSince(s, a.now())
}

// timeoutCtx bounds ctx by d when d > 0.
func timeoutCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

var errUsage = errors.New("usage")
