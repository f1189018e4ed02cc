// Command groupmail is groupflow's reference downstream mailer: it consumes
// groups.evt.member_selected from the GROUPS_EVENTS stream, renders each
// email from the event's content.templateId and content.variables with the
// templates in --templates, sends it over SMTP, and publishes
// groups.evt.email_sent or groups.evt.email_failed. Each event id is sent
// at most once except after a crash inside a tiny window (see package
// groupflow/internal/mailer).
//
// Every flag can also be set with an environment variable GROUPMAIL_<FLAG>
// (upper case, '-' as '_'), e.g. GROUPMAIL_SMTP_HOST; a flag on the command
// line wins. Give the SMTP password with GROUPMAIL_SMTP_PASSWORD, not on the
// command line (it would show in the process list). It is never logged.
//
// Endpoints on --http-listen: /healthz, /readyz, /metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"groupflow/internal/admin"
	"groupflow/internal/broker"
	"groupflow/internal/config"
	"groupflow/internal/events"
	"groupflow/internal/mailer"
	"groupflow/internal/runtime"
	"groupflow/internal/version"
	"groupflow/messages"
)

func main() {
	if version.PrintIfAsked("groupmail", os.Args[1:], os.Stdout) {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "groupmail:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	NATSURL, NATSCreds, NATSNKey, NATSTLSCert, NATSTLSKey, NATSTLSCA string
	NATSInboxPrefix                                                  string
	Prefix                                                           string

	Templates      string
	From           string
	UnsubscribeURL string
	MessageIDDom   string

	SMTPHost, SMTPTLS, SMTPAuth, SMTPUser, SMTPPassword, SMTPHELO string
	SMTPPort                                                      int
	SMTPTimeout                                                   time.Duration
	SMTPSkipVerify                                                bool

	Rate                     float64
	Burst, Concurrency       int
	MaxDeliver, SendAttempts int
	AckWait, ClaimTimeout    time.Duration
	ShutdownGrace            time.Duration
	Durable, Bucket          string
	KVReplicas               int
	KVTTL                    time.Duration

	HTTPListen          string
	LogLevel, LogFormat string
	MemoryLimit         int64 // Go soft memory limit in bytes (0: GOMEMLIMIT or none)

	passwordOnCommandLine bool
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "GROUPMAIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parse(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("groupmail", flag.ContinueOnError)
	fs.SetOutput(out)
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+envName(name)+")")
	}
	str(&o.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server or comma-separated cluster seeds")
	str(&o.NATSCreds, "nats-creds", "", "NATS credentials file (.creds)")
	str(&o.NATSNKey, "nats-nkey", "", "file holding a NATS nkey seed")
	str(&o.NATSTLSCert, "nats-tls-cert", "", "NATS client TLS certificate")
	str(&o.NATSTLSKey, "nats-tls-key", "", "NATS client TLS key")
	str(&o.NATSTLSCA, "nats-tls-ca", "", "CA bundle that verifies the NATS servers")
	str(&o.NATSInboxPrefix, "nats-inbox-prefix", "", "reply subject prefix instead of _INBOX (e.g. _INBOX_mailer, to match per-user permissions; see deploy/nats/accounts.conf)")
	str(&o.Prefix, "subject-prefix", messages.DefaultPrefix, "groupflow's subject prefix")

	str(&o.Templates, "templates", "deploy/templates", "directory of <templateId>.subject.tmpl, .txt.tmpl and .html.tmpl (SIGHUP reloads)")
	str(&o.From, "from", "", "sender address, e.g. 'Acme Club <news@acme.example>' (required)")
	str(&o.UnsubscribeURL, "unsubscribe-url", "", "List-Unsubscribe URL template, e.g. 'https://acme.example/unsub?m={{.MemberID}}&c={{.CampaignID}}' (values are query-escaped; empty: no header)")
	str(&o.MessageIDDom, "message-id-domain", "", "domain of the Message-ID header (default: the from address's domain)")

	str(&o.SMTPHost, "smtp-host", "127.0.0.1", "SMTP server host")
	fs.IntVar(&o.SMTPPort, "smtp-port", 1025, "SMTP server port (25/587 starttls, 465 tls; 1025 is Mailpit) (env "+envName("smtp-port")+")")
	str(&o.SMTPTLS, "smtp-tls", mailer.TLSNone, "none, starttls or tls (implicit TLS)")
	str(&o.SMTPAuth, "smtp-auth", "", "none, plain, login (over TLS), plain-noenc or login-noenc (local test servers); default plain with --smtp-user, else none")
	str(&o.SMTPUser, "smtp-user", "", "SMTP username")
	str(&o.SMTPPassword, "smtp-password", "", "SMTP password; prefer the environment variable")
	str(&o.SMTPHELO, "smtp-helo", "", "name sent in EHLO (default: the host name)")
	fs.DurationVar(&o.SMTPTimeout, "smtp-timeout", 60*time.Second, "bound of one SMTP attempt (env "+envName("smtp-timeout")+")")
	fs.BoolVar(&o.SMTPSkipVerify, "smtp-tls-skip-verify", false, "do not verify the SMTP server's certificate (test servers only) (env "+envName("smtp-tls-skip-verify")+")")

	fs.Float64Var(&o.Rate, "rate", 10, "emails per second (0 = unlimited) (env "+envName("rate")+")")
	fs.IntVar(&o.Burst, "burst", 1, "emails sent at once above the rate (env "+envName("burst")+")")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "events handled at once (env "+envName("concurrency")+")")
	fs.IntVar(&o.MaxDeliver, "max-deliver", 10, "deliveries of an event before it is dead-lettered (env "+envName("max-deliver")+")")
	fs.IntVar(&o.SendAttempts, "send-attempts", 3, "SMTP attempts per delivery, with backoff (env "+envName("send-attempts")+")")
	fs.DurationVar(&o.AckWait, "ack-wait", 30*time.Second, "consumer ack wait; events in work are kept alive (env "+envName("ack-wait")+")")
	fs.DurationVar(&o.ClaimTimeout, "claim-timeout", 5*time.Minute, "age after which a 'sending' claim left by a crash is taken over and the email resent; more than --smtp-timeout + 15s (env "+envName("claim-timeout")+")")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 20*time.Second, "how long shutdown waits for in-flight emails (env "+envName("shutdown-grace")+")")
	str(&o.Durable, "durable", mailer.DefaultDurable, "consumer name on the events stream")
	str(&o.Bucket, "kv-bucket", mailer.DefaultBucket, "JetStream KV bucket of send records")
	fs.IntVar(&o.KVReplicas, "kv-replicas", 1, "replicas of the KV bucket (3 on a cluster) (env "+envName("kv-replicas")+")")
	fs.DurationVar(&o.KVTTL, "kv-ttl", mailer.DefaultRecordTTL, "how long send records are kept (longer than the events stream keeps events) (env "+envName("kv-ttl")+")")

	str(&o.HTTPListen, "http-listen", "127.0.0.1:8081", "admin HTTP: /healthz /readyz /metrics")
	str(&o.LogLevel, "log-level", "info", "debug, info, warn or error (email addresses are logged at debug only)")
	str(&o.LogFormat, "log-format", "console", "console or json")
	fs.Var(config.SizeValue(&o.MemoryLimit), "memory-limit", "Go soft memory limit, e.g. 256MiB (0: GOMEMLIMIT if set, else none) (env "+envName("memory-limit")+")")
	fs.Usage = func() {
		fmt.Fprintf(out, "groupmail: sends one email per groups.evt.member_selected event.\n\nUsage: groupmail [flags]\n\nSecrets: GROUPMAIL_SMTP_PASSWORD.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	// The environment first; the command line overrides it.
	if err := config.ParseWithEnv(fs, args, getenv, func(name string) []string { return []string{envName(name)} }); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "smtp-password" {
			o.passwordOnCommandLine = true
		}
	})
	if o.From == "" {
		return nil, errors.New("--from (or GROUPMAIL_FROM) is required")
	}
	if err := messages.CheckPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("--subject-prefix: %w", err)
	}
	return o, nil
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console", "":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log format must be console or json, not %q", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// run runs groupmail until ctx is done or a NATS connection is closed for
// good; the error of the latter makes the exit status non-zero.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	o, err := parse(args, getenv, out)
	if err != nil {
		return err
	}
	log, err := newLogger(o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	applySettings(o, log)

	smtpCfg := o.smtpConfig()
	sender, err := mailer.NewSMTPSender(smtpCfg)
	if err != nil {
		return err
	}
	nc, pubConn, pub, err := connect(o, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	defer func() { _ = pub.Close() }()
	// Both connections reconnect forever; one closed all the same cannot
	// come back: /healthz fails and run returns an error (exit status 1)
	// so that the supervisor restarts groupmail. Registered after the
	// connections' deferred closes, Stopping runs before them.
	watch := admin.WatchConns(nc, pubConn)
	defer watch.Stopping()
	if testHookConnected != nil {
		testHookConnected(nc)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	subjects := messages.Subjects{Prefix: o.Prefix}
	reg := admin.NewRegistry()
	m, err := newMailer(o, subjects, mailer.Deps{JS: js, Publisher: pub, Sender: sender, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	// Serve /healthz at once; /readyz turns ready once the consumer exists.
	prepared := make(chan struct{})
	addr, stopAdmin, err := serveAdmin(o, readiness(nc, js, subjects, m, prepared), reg, watch, log)
	if err != nil {
		return err
	}
	defer stopAdmin()
	log.Info("groupmail starting", zap.String("http", addr), zap.String("nats", nc.ConnectedUrlRedacted()),
		zap.Stringer("smtp", smtpCfg), zap.String("templates", o.Templates))
	if ok, err := waitForStream(ctx, m, watch, log); !ok {
		return err
	}
	close(prepared)
	return serve(ctx, m, watch, log)
}

// applySettings applies the memory limit and warns of an SMTP password given
// on the command line.
func applySettings(o *options, log *zap.Logger) {
	if lim := config.ApplyMemoryLimit(o.MemoryLimit); lim != math.MaxInt64 {
		log.Info("memory limit", zap.Int64("bytes", lim))
	}
	if o.passwordOnCommandLine {
		log.Warn("the SMTP password was given on the command line, where other users may see it; use GROUPMAIL_SMTP_PASSWORD")
	}
}

// smtpConfig is the SMTP server the flags name.
func (o *options) smtpConfig() mailer.SMTPConfig {
	return mailer.SMTPConfig{
		Host: o.SMTPHost, Port: o.SMTPPort, TLS: o.SMTPTLS, TLSSkipVerify: o.SMTPSkipVerify,
		Auth: o.SMTPAuth, Username: o.SMTPUser, Password: o.SMTPPassword, Timeout: o.SMTPTimeout, HELO: o.SMTPHELO,
	}
}

// connConfig is the consumer's NATS connection the flags name.
func (o *options) connConfig() broker.ConnConfig {
	return broker.ConnConfig{
		URL: o.NATSURL, Name: "groupmail", CredsFile: o.NATSCreds, NKeyFile: o.NATSNKey,
		TLSCert: o.NATSTLSCert, TLSKey: o.NATSTLSKey, TLSCA: o.NATSTLSCA, InboxPrefix: o.NATSInboxPrefix,
	}
}

// connect opens the consumer connection and the publisher with its own
// connection, pubConn; on error nothing is left open.
func connect(o *options, log *zap.Logger) (nc, pubConn *nats.Conn, pub message.Publisher, err error) {
	connCfg := o.connConfig()
	nc, err = broker.Connect(connCfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	// The publisher has a connection of its own (its Close closes it).
	pubCfg := connCfg
	pubCfg.Name = "groupmail-publisher"
	pubConn, err = broker.Connect(pubCfg, log)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	pub, err = events.NewJetStreamPublisher(pubConn, runtime.WatermillLogger(log))
	if err != nil {
		pubConn.Close()
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, pubConn, pub, nil
}

// newMailer makes the mailer the flags configure.
func newMailer(o *options, subjects messages.Subjects, deps mailer.Deps) (*mailer.Mailer, error) {
	return mailer.New(mailer.Config{
		Subjects: subjects, Durable: o.Durable,
		Store:     mailer.StoreConfig{Bucket: o.Bucket, Replicas: o.KVReplicas, TTL: o.KVTTL},
		Templates: o.Templates, From: o.From, UnsubscribeURL: o.UnsubscribeURL, MessageIDDomain: o.MessageIDDom,
		Rate: o.Rate, Burst: o.Burst, Concurrency: o.Concurrency, MaxDeliver: o.MaxDeliver,
		AckWait: o.AckWait, ClaimTimeout: o.ClaimTimeout, SendTimeout: o.SMTPTimeout, SendAttempts: o.SendAttempts,
		ShutdownGrace: o.ShutdownGrace,
	}, deps)
}

// readiness is /readyz: the broker is up, prepared is closed (the events
// stream and the consumer exist) and the mailer is ready.
func readiness(nc *nats.Conn, js jetstream.JetStream, subjects messages.Subjects, m *mailer.Mailer, prepared <-chan struct{}) admin.ReadyCheck {
	brokerReady := admin.BrokerReady(nc, js, subjects.EventStream())
	return func(ctx context.Context) error {
		if err := brokerReady(ctx); err != nil {
			return err
		}
		select {
		case <-prepared:
		default:
			return errors.New("waiting for the events stream and the consumer")
		}
		return m.Ready(ctx)
	}
}

// serveAdmin starts the admin HTTP server, live while watch is; stop shuts
// it down within 5s.
func serveAdmin(o *options, ready admin.ReadyCheck, reg *prometheus.Registry, watch *admin.ConnWatch, log *zap.Logger) (addr string, stop func(), err error) {
	srv := admin.New(o.HTTPListen, ready, reg, log)
	srv.SetLive(watch.Live)
	addr, err = srv.Start()
	if err != nil {
		return "", nil, fmt.Errorf("http listen %s: %w", o.HTTPListen, err)
	}
	return addr, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// waitForStream prepares the mailer, retrying until groupflow's events
// stream exists. Not ok: ctx is done (err nil) or a connection is closed
// for good (its error).
func waitForStream(ctx context.Context, m *mailer.Mailer, watch *admin.ConnWatch, log *zap.Logger) (bool, error) {
	// The events stream belongs to groupflow: wait for it rather than create it.
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := m.Prepare(pctx)
		cancel()
		if err == nil {
			return true, nil
		}
		log.Warn("waiting for groupflow's events stream", zap.Error(err))
		select {
		case <-ctx.Done():
			return false, nil
		case <-watch.Closed():
			return false, watch.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// serve runs the prepared mailer until ctx is done or a connection is
// closed for good, handling SIGHUP and a second stop signal meanwhile.
func serve(ctx context.Context, m *mailer.Mailer, watch *admin.ConnWatch, log *zap.Logger) error {
	// The mailer runs until ctx is done or a connection is closed for good.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() {
		select {
		case <-watch.Closed():
			log.Error("groupmail cannot go on; stopping so that it is restarted", zap.Error(watch.Err()))
			cancelRun()
		case <-runCtx.Done():
		}
	}()
	stopSignals := handleSignals(m, log)
	defer stopSignals()

	err := m.Run(runCtx) // member and report mails on one Source and router
	log.Info("groupmail stopped", zap.Any("stats", m.Stats()))
	if closed := watch.Err(); closed != nil {
		return errors.Join(closed, err)
	}
	return err
}

// handleSignals reloads the templates on SIGHUP and aborts the mailer on a
// second SIGINT/SIGTERM, until stop is called.
func handleSignals(m *mailer.Mailer, log *zap.Logger) (stop func()) {
	// SIGHUP reloads the templates; a second SIGINT/SIGTERM during the
	// graceful shutdown aborts at once (in-flight events are redelivered).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, os.Interrupt, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
		signals := 0
		for {
			select {
			case <-stopped:
				return
			case <-hup:
				m.Renderer().Reset()
				log.Info("templates will be reloaded")
			case <-quit:
				// The first one also cancelled ctx (graceful shutdown).
				if signals++; signals >= 2 {
					log.Warn("second signal: aborting; in-flight emails are left to redelivery")
					m.Abort()
				}
			}
		}
	}()
	return func() {
		close(stopped)
		signal.Stop(quit)
		signal.Stop(hup)
	}
}

// testHookConnected, when set by a test, receives the consumer connection
// once it is open.
var testHookConnected func(nc *nats.Conn)
