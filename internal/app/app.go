// Package app assembles the groupflow processor: broker (embedded or
// external), streams, ledger, Wix client (real or the embedded simulator),
// handlers, runtime and admin HTTP.
package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/admin"
	"groupflow/internal/broker"
	"groupflow/internal/config"
	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/ledger"
	"groupflow/internal/natsname"
	"groupflow/internal/ratelimit"
	"groupflow/internal/runtime"
	"groupflow/internal/sitematch"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// App is a running processor.
type App struct {
	cfg      *config.Config
	log      *zap.Logger
	embedded *broker.Embedded
	sim      *wixsim.Server
	conns    []*nats.Conn
	admin    *admin.Server
	rt       *runtime.Runtime
	rates    *ratelimit.Group
	capture  *dlq.Capture
	// watch notices a NATS connection closed for good (see Run).
	watch *admin.ConnWatch

	// NATSURL is the broker's client URL; AdminAddr the admin HTTP address;
	// WixURL the Wix base URL in use (the simulator's when simulated).
	NATSURL, AdminAddr, WixURL string
	// Sim is the embedded simulator, nil against real Wix.
	Sim *wixsim.Server

	runDone chan error
	cancel  context.CancelFunc
	stopOne sync.Once
	stopErr error
}

// Deps are what handlers are built from.
type Deps struct {
	Config    *config.Config
	Sites     Sites
	Ledger    *ledger.Ledger
	Events    *events.Publisher
	JS        jetstream.JetStream
	Logger    *zap.Logger
	Registry  prometheus.Registerer
	DLQ       *dlq.Store
	Subjects  messages.Subjects
	WixClient *wix.Client
}

// Sites resolves a site id to its Wix client.
type Sites interface {
	Site(siteID string) (*wix.Site, error)
}

// Options are StartWith's hooks for benchmarks; the zero value is what
// Start uses.
type Options struct {
	// SimTransport, when set and the embedded simulator is in use, serves
	// the simulator without a socket: the Wix client sends its requests
	// through SimTransport(the simulator's handler), and nothing listens on
	// --wix-sim-listen. The client still refuses redirects.
	SimTransport func(http.Handler) http.RoundTripper
}

// Start brings the processor up and runs it until Stop or ctx ends. Its
// steps, in order: the input checks before any side effect (the NATS files,
// broker.CheckFiles; the sites, checkSites), broker, streams and buckets,
// Wix, runtime, dead-letter capture, admin HTTP, run; a failing step undoes
// the earlier ones.
func Start(ctx context.Context, cfg *config.Config, getenv func(string) string, log *zap.Logger) (*App, error) {
	return StartWith(ctx, cfg, getenv, log, Options{})
}

// StartWith is Start with opts.
func StartWith(ctx context.Context, cfg *config.Config, getenv func(string) string, log *zap.Logger, opts Options) (_ *App, err error) {
	if err := broker.CheckFiles(connConfig(cfg)); err != nil {
		return nil, err
	}
	if err := checkSites(cfg, getenv); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, runDone: make(chan error, 1)}
	if lim := config.ApplyMemoryLimit(cfg.MemoryLimit); lim != math.MaxInt64 {
		log.Info("memory limit", zap.Int64("bytes", lim), zap.Int64("in_flight_bytes", cfg.InFlightBytes))
	}
	defer func() {
		if err != nil {
			if a.cancel != nil {
				a.cancel()
			}
			a.close()
		}
	}()
	s := &startup{App: a, opts: opts, getenv: getenv, subjects: messages.Subjects{Prefix: cfg.Prefix},
		instance: natsname.InstanceID()}
	for _, step := range []func(context.Context) error{s.broker, s.streams, s.wix, s.runtime, s.capture, s.adminHTTP, s.run} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// connConfig is the NATS connection cfg configures (without a name, nor
// the embedded server).
func connConfig(cfg *config.Config) broker.ConnConfig {
	return broker.ConnConfig{URL: cfg.NATSURL, CredsFile: cfg.NATSCreds, NKeyFile: cfg.NATSNKey,
		TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey, TLSCA: cfg.NATSTLSCA, InboxPrefix: cfg.NATSInbox}
}

// checkSites checks the sites cfg configures before Start's first side
// effect: the report profiles (ReportProfiles) and, against real Wix, the
// sites file's entries and the variables they name, added to a client that
// is then dropped (the wix step adds them again with their limiters).
func checkSites(cfg *config.Config, getenv func(string) string) error {
	if _, err := ReportProfiles(cfg); err != nil {
		return err
	}
	if cfg.Simulated() {
		return nil
	}
	local := func(string, float64) wix.Limiter { return wix.NewAdaptiveLimiter(wix.DefaultRequestsPerMinute, 1) }
	return addSites(wix.New(wix.Config{Logger: zap.NewNop()}), cfg, getenv, local)
}

// startup carries what Start's steps make to the steps after them.
type startup struct {
	*App
	opts         Options
	getenv       func(string) string
	subjects     messages.Subjects
	subNC, pubNC *nats.Conn
	js           jetstream.JetStream
	led          *ledger.Ledger
	outcomes     *events.Outcomes
	reg          *prometheus.Registry
	sites        Sites
	realWix      *wix.Client // for the startup preflight; nil when simulated
	wixClient    *wix.Client // the Wix client, for the console's limiter view
	store        *dlq.Store
	consumers    []string
	// instance names this process in rate-limit shares and command leases.
	instance string
}

// broker starts the embedded broker (if configured) and connects to it:
// one connection to consume, one to publish.
func (s *startup) broker(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	connCfg := connConfig(cfg)
	if cfg.Embedded() {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{DataDir: cfg.DataDir, Listen: cfg.NATSListen,
			SyncAlways: cfg.SyncAlways, MaxPayload: int32(cfg.MaxPayloadMB) << 20}, log)
		if err != nil {
			return err
		}
		s.embedded = e
		s.NATSURL = e.URL
		connCfg.InProcess = e.Server
		log.Info("embedded nats-server with JetStream", zap.String("url", e.URL), zap.String("store", cfg.DataDir))
	} else {
		s.NATSURL = cfg.NATSURL
	}
	connect := func(name string) (*nats.Conn, error) {
		c := connCfg
		c.Name = name
		nc, err := broker.Connect(c, log.Named("nats"))
		if err == nil {
			s.conns = append(s.conns, nc)
		}
		return nc, err
	}
	var err error
	if s.subNC, err = connect("groupflow-consumer"); err != nil {
		return err
	}
	if err := awaitConnected(ctx, s.subNC, s.NATSURL, s.cfg.NATSStartTimeout); err != nil {
		return err
	}
	if s.pubNC, err = connect("groupflow-publisher"); err != nil {
		return err
	}
	// Both connections reconnect forever; one closed all the same cannot
	// come back: /healthz fails and Run returns (see Run).
	s.watch = admin.WatchConns(s.subNC, s.pubNC)
	s.js, err = jetstream.New(s.subNC)
	return err
}

// streams provisions the streams and opens the ledger and outcome buckets,
// waiting up to 60s for a cluster that is still forming.
func (s *startup) streams(ctx context.Context) error {
	cfg := s.cfg
	topo := broker.Topology{Subjects: s.subjects, Replicas: cfg.Replicas, EventDuplicates: cfg.EventDupWin,
		CommandMaxBytes: cfg.CommandsMaxBytes, EventMaxBytes: cfg.EventsMaxBytes, DLQMaxBytes: cfg.DLQMaxBytes, DLQMaxMsgs: cfg.DLQMaxMsgs}
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := provisionWithRetry(pctx, topo, s.js, s.log); err != nil {
		return err
	}
	var err error
	if s.led, err = ledger.Open(pctx, s.js, broker.LedgerBucket); err != nil {
		return err
	}
	s.outcomes, err = events.OpenOutcomes(pctx, s.js, broker.OutcomesBucket)
	return err
}

// wix builds the Wix client: the embedded simulator's without credentials,
// else the real API's with the configured sites. Each site's Wix budget is
// shared by every instance through JetStream when SharedRateLimit is set.
func (s *startup) wix(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	s.reg = admin.NewRegistry()
	wixCfg := wix.Config{BaseURL: cfg.WixBaseURL, RequestsPerMinute: cfg.WixRatePerMinute,
		GroupsPrefix: cfg.GroupsPrefix, GroupMembersPrefix: cfg.GroupMembersPrefx, GroupRequestsPrefix: cfg.GroupRequestsPrefix,
		AllowInsecureHTTP: cfg.WixAllowInsecureHTTP, Logger: log.Named("wix"), Registerer: s.reg}
	// Instances with work split the site's rate between them, and the share
	// of one that stops comes back to the others within seconds.
	if cfg.SharedRateLimit {
		s.rates = ratelimit.NewGroup(ctx, s.js, s.instance, ratelimit.Options{
			Replicas: cfg.Replicas, Logger: log.Named("ratelimit"), Registerer: s.reg})
		wixCfg.NewLimiter = func(site string) wix.Limiter { return s.rates.Limiter(site, cfg.WixRatePerMinute) }
	}
	var err error
	if cfg.Simulated() {
		err = s.simWix(&wixCfg)
	} else {
		err = s.realWixClient(wixCfg)
	}
	if err != nil {
		return err
	}
	s.WixURL = firstNonEmpty(wixCfg.BaseURL, wix.DefaultBaseURL)
	return nil
}

// simWix starts the embedded simulator (on a socket, or in memory with
// opts.SimTransport) and a client that serves its listed sites, then any
// other site on demand (bounded by --wix-max-sites, released when idle).
func (s *startup) simWix(wixCfg *wix.Config) error {
	cfg, log := s.cfg, s.log
	simSites := append([]string{cfg.SiteID}, cfg.WixSimSites...)
	simOpts := wixsim.Options{Sites: simSites, MaxSites: cfg.WixMaxSites + len(simSites),
		Members: cfg.WixSimMembers, Groups: cfg.WixSimGroups, Seed: cfg.WixSimSeed,
		RatePerMinute: cfg.WixSimRatePerMin, StateFile: cfg.WixSimState, Logger: log.Named("wixsim")}
	if cfg.WixSimSitesPattern != "" {
		var err error
		if simOpts.SitesPattern, err = sitematch.Parse(cfg.WixSimSitesPattern); err != nil {
			return fmt.Errorf("--wix-sim-sites-pattern: %w", err)
		}
	}
	sim := wixsim.New(simOpts)
	s.Sim = sim
	if s.opts.SimTransport != nil {
		// No request leaves the process: plain http to a name that
		// resolves nowhere is safe.
		wixCfg.BaseURL, wixCfg.AllowInsecureHTTP = "http://wixsim.in-memory", true
		wixCfg.HTTPClient = &http.Client{Transport: s.opts.SimTransport(sim.Handler())}
	} else {
		url, err := sim.Start(cfg.WixSimListen)
		if err != nil {
			return fmt.Errorf("start wix simulator on %s: %w", cfg.WixSimListen, err)
		}
		wixCfg.BaseURL = url
	}
	log.Warn("NO WIX CREDENTIALS: using the embedded Wix simulator (set WIX_API_KEY and WIX_SITE_ID for a real site)",
		zap.String("simulator", wixCfg.BaseURL), zap.String("default_site", cfg.SiteID))
	client := wix.New(*wixCfg)
	for _, id := range simSites {
		if err := client.AddSite(id, wix.Credentials{APIKey: "simulator"}); err != nil {
			return err
		}
	}
	if err := useAccount(client, cfg, "simulator"); err != nil {
		return err
	}
	s.sites, s.wixClient = client, client
	return nil
}

// realWixClient builds the client of the real Wix API with the configured
// sites, and the account-key sites when --wix-account-sites is set.
func (s *startup) realWixClient(wixCfg wix.Config) error {
	cfg := s.cfg
	client := wix.New(wixCfg)
	if err := addSites(client, cfg, s.getenv, s.siteLimiter); err != nil {
		return err
	}
	if err := useAccount(client, cfg, cfg.WixAPIKey); err != nil {
		return err
	}
	s.sites, s.realWix, s.wixClient = client, client, client
	s.log.Info("wix: real API", zap.String("base_url", firstNonEmpty(cfg.WixBaseURL, wix.DefaultBaseURL)),
		zap.Strings("sites", client.SiteIDs()), zap.String("default_site", cfg.SiteID),
		zap.String("account_sites", cfg.WixAccountSites), zap.Int("max_account_sites", cfg.WixMaxSites))
	return nil
}

// runtime builds the event publisher and the runtime with one handler per
// command type, and registers the broker metrics.
func (s *startup) runtime(context.Context) error {
	cfg, log, subjects := s.cfg, s.log, s.subjects
	wpub, err := events.NewJetStreamPublisher(s.pubNC, runtime.WatermillLogger(log))
	if err != nil {
		return err
	}
	evts := events.NewPublisher(wpub, subjects, "groupflow")
	s.store = dlq.NewStore(s.js, subjects)
	deps := Deps{Config: cfg, Sites: s.sites, Ledger: s.led, Events: evts, JS: s.js, Logger: log}
	adm := newAdmission(cfg, subjects)
	adm.register(s.reg)
	rt := runtime.New(runtime.Config{
		Subjects: subjects, DefaultSiteID: cfg.SiteID, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
		HandlerTimeout: cfg.HandlerTimeout, ShutdownGrace: cfg.ShutdownGrace, InFlightBytes: cfg.InFlightBytes,
		Instance: s.instance, Admission: adm, MaxInFlight: cfg.MaxInFlight,
		SiteRate: func(string) float64 { return cfg.WixRatePerMinute },
	}, runtime.Deps{JS: s.js, Publisher: wpub, Events: evts, Ledger: s.led, Outcomes: s.outcomes, Logger: log, Registerer: s.reg})
	for _, t := range registerHandlers(rt, deps, handlerSlots(cfg)) {
		s.consumers = append(s.consumers, broker.DurableName(t))
	}
	if err := rt.Prepare(); err != nil {
		return err
	}
	s.rt = rt
	s.reg.MustRegister(admin.NewBrokerCollector(s.js, subjects.CommandStream(), subjects.DLQStream(), s.consumers).WithStreams(subjects.EventStream(), subjects.ScheduleStream()))
	return nil
}

// capture starts the safety net: commands that ran out of deliveries
// outside the router.
func (s *startup) capture(ctx context.Context) error {
	capture := dlq.NewCapture(s.subNC, s.js, s.subjects, s.log.Named("dlq-capture"))
	capture.OnCaptured = s.rt.AnnounceCaptured
	capture.CatchAll = runtime.UnknownCommandsDurable
	s.App.capture = capture
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "groupflow_dlq_advisories_dropped_total",
		Help: "Max-deliveries advisories the dead-letter capture dropped behind a burst (their commands, if genuine, stay exhausted in the commands stream)."},
		func() float64 { return float64(capture.Dropped()) }))
	return capture.Start(ctx)
}

// adminHTTP starts the admin HTTP server: health, readiness, metrics, DLQ.
func (s *startup) adminHTTP(ctx context.Context) error {
	cfg, log, subjects, capture := s.cfg, s.log, s.subjects, s.App.capture
	s.admin = admin.New(cfg.HTTPListen, admin.AllReady(
		admin.ConnsReady(s.subNC, s.pubNC),
		admin.BrokerReady(s.subNC, s.js, subjects.CommandStream(), subjects.ScheduleStream(), subjects.EventStream(), subjects.DLQStream()),
		s.rt.DLQReady, func(context.Context) error {
			if n := capture.Waiting(); n > 0 {
				return fmt.Errorf("DLQ full: %d exhausted command(s) wait in the commands stream to be captured; purge or replay dead letters", n)
			}
			return nil
		}), s.reg, log)
	s.admin.Protect(cfg.AdminToken, cfg.AdminInsecureNoToken)
	s.admin.SetLive(s.watch.Live)
	dlqHTTP := dlq.NewHTTPHandler(s.store, cfg.AdminToken, log.Named("dlq-http"))
	s.admin.Handle("/dlq", dlqHTTP)
	s.admin.Handle("/dlq/", dlqHTTP)
	s.admin.MountConsole(consoleSources(s.rt, s.led, s.store, s.js, s.subjects, s.wixClient))
	if err := s.serveOps(ctx, s.subNC, s.rt, s.sites, s.subjects); err != nil {
		return err
	}
	addr, err := s.admin.Start()
	if err != nil {
		return fmt.Errorf("admin http on %s: %w", cfg.HTTPListen, err)
	}
	s.AdminAddr = addr
	log.Info("admin http", zap.String("addr", "http://"+addr), zap.Strings("paths", []string{"/healthz", "/readyz", "/metrics", "/dlq", "/console/", "/api/commands", "/api/groups"}))
	return nil
}

// run starts the runtime (and the Wix preflight against real Wix) and
// waits up to 60s for it to run.
func (s *startup) run(ctx context.Context) error {
	runCtx, runCancel := context.WithCancel(ctx)
	s.cancel = runCancel
	go func() { s.runDone <- s.rt.Run(runCtx) }()
	if s.realWix != nil && s.cfg.WixPreflight {
		go preflight(runCtx, s.realWix, s.log.Named("preflight"))
	}
	select {
	case <-s.rt.Running():
	case err := <-s.runDone:
		return fmt.Errorf("router: %w", err)
	case <-time.After(60 * time.Second):
		return errors.New("router not running after 60s")
	}
	s.log.Info("groupflow processing", zap.String("commands", s.subjects.Commands()), zap.Int("handlers", len(s.consumers)),
		zap.Int("max_in_flight", s.cfg.MaxInFlight), zap.Int("site_concurrency", s.cfg.SiteConcurrency), zap.Int("slots_per_type", handlerSlots(s.cfg)))
	return nil
}

// siteLimiter makes the limiter of a site with its own rate: shared across
// instances when enabled, else local and adaptive.
func (a *App) siteLimiter(site string, perMinute float64) wix.Limiter {
	if a.rates != nil {
		return a.rates.Limiter(site, perMinute)
	}
	return wix.NewAdaptiveLimiter(perMinute, 5)
}

// provisionWithRetry provisions the topology, waiting for a cluster that is
// still forming.
func provisionWithRetry(ctx context.Context, topo broker.Topology, js jetstream.JetStream, log *zap.Logger) error {
	for attempt := 1; ; attempt++ {
		err := topo.Provision(ctx, js)
		if err == nil {
			if topo.StickyDiscardOld(ctx, js) {
				log.Error("the commands stream was made by a build that kept schedules in it: nats-server cannot turn schedules off, so it still drops its oldest messages when full; recreate it once drained (see README, \"Schedules\")",
					zap.String("stream", topo.Subjects.CommandStream()))
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("provision streams: %w", err)
		}
		log.Warn("provisioning streams failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fmt.Errorf("provision streams: %w", err)
		}
	}
}

// Run keeps the processor running until ctx is done, then stops it
// gracefully and returns Stop's error. It returns early, with an error,
// when a NATS connection is closed for good (nats.go never reconnects it:
// the process must exit non-zero so that its supervisor restarts it) or
// when the runtime stops by itself; it stops the app first in both cases.
func (a *App) Run(ctx context.Context) error {
	var failed error
	select {
	case <-ctx.Done():
		return a.Stop()
	case <-a.watch.Closed():
		failed = a.watch.Err()
	case err := <-a.runDone:
		a.runDone <- err
		failed = fmt.Errorf("runtime stopped by itself: %v", err)
	}
	a.log.Error("groupflow cannot go on; stopping so that it is restarted", zap.Error(failed))
	if err := a.Stop(); err != nil {
		return errors.Join(failed, err)
	}
	return failed
}

// Wait blocks until the runtime stops and returns its error.
func (a *App) Wait() error {
	err := <-a.runDone
	a.runDone <- err
	return err
}

// Stop shuts down gracefully: no new command is taken, in-flight ones
// finish (or are nacked after the grace period to resume later).
func (a *App) Stop() error {
	a.stopOne.Do(func() {
		if a.cancel != nil {
			a.cancel()
			a.stopErr = a.Wait()
		}
		a.close()
	})
	return a.stopErr
}

func (a *App) close() {
	if a.watch != nil {
		a.watch.Stopping() // closing the connections below is no failure
	}
	if a.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.admin.Shutdown(ctx)
		cancel()
	}
	if a.capture != nil {
		_ = a.capture.Close()
	}
	if a.rates != nil {
		_ = a.rates.Close() // give this instance's shares back while NATS is up
	}
	for i := len(a.conns) - 1; i >= 0; i-- {
		_ = a.conns[i].Drain()
	}
	if a.sim != nil {
		if err := a.sim.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("wix simulator close", zap.Error(err))
		}
	}
	a.embedded.Shutdown()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
