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
	"groupflow/internal/ratelimit"
	"groupflow/internal/runtime"
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

// simSites adds simulator sites on first use: every site id is a seeded site.
type simSites struct {
	c  *wix.Client
	mu sync.Mutex
}

func (s *simSites) Site(id string) (*wix.Site, error) {
	if site, err := s.c.Site(id); err == nil {
		return site, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if site, err := s.c.Site(id); err == nil {
		return site, nil
	}
	if err := s.c.AddSite(id, wix.Credentials{APIKey: "simulator"}); err != nil {
		return nil, err
	}
	return s.c.Site(id)
}

// Start brings the processor up and runs it until Stop or ctx ends.
func Start(ctx context.Context, cfg *config.Config, getenv func(string) string, log *zap.Logger) (_ *App, err error) {
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
	subjects := messages.Subjects{Prefix: cfg.Prefix}

	// Broker.
	connCfg := broker.ConnConfig{URL: cfg.NATSURL, CredsFile: cfg.NATSCreds, NKeyFile: cfg.NATSNKey,
		TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey, TLSCA: cfg.NATSTLSCA, InboxPrefix: cfg.NATSInbox}
	if cfg.Embedded() {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{DataDir: cfg.DataDir, Listen: cfg.NATSListen,
			SyncAlways: cfg.SyncAlways, MaxPayload: int32(cfg.MaxPayloadMB) << 20}, log)
		if err != nil {
			return nil, err
		}
		a.embedded = e
		a.NATSURL = e.URL
		connCfg.InProcess = e.Server
		log.Info("embedded nats-server with JetStream", zap.String("url", e.URL), zap.String("store", cfg.DataDir))
	} else {
		a.NATSURL = cfg.NATSURL
	}
	connect := func(name string) (*nats.Conn, error) {
		c := connCfg
		c.Name = name
		nc, err := broker.Connect(c, log.Named("nats"))
		if err == nil {
			a.conns = append(a.conns, nc)
		}
		return nc, err
	}
	subNC, err := connect("groupflow-consumer")
	if err != nil {
		return nil, err
	}
	if err := awaitConnected(ctx, subNC, a.NATSURL, cfg.NATSStartTimeout); err != nil {
		return nil, err
	}
	pubNC, err := connect("groupflow-publisher")
	if err != nil {
		return nil, err
	}
	// Both connections reconnect forever; one closed all the same cannot
	// come back: /healthz fails and Run returns (see Run).
	a.watch = admin.WatchConns(subNC, pubNC)
	js, err := jetstream.New(subNC)
	if err != nil {
		return nil, err
	}
	topo := broker.Topology{Subjects: subjects, Replicas: cfg.Replicas, EventDuplicates: cfg.EventDupWin,
		CommandMaxBytes: cfg.CommandsMaxBytes, EventMaxBytes: cfg.EventsMaxBytes, DLQMaxBytes: cfg.DLQMaxBytes, DLQMaxMsgs: cfg.DLQMaxMsgs}
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := provisionWithRetry(pctx, topo, js, log); err != nil {
		return nil, err
	}
	led, err := ledger.Open(pctx, js, broker.LedgerBucket)
	if err != nil {
		return nil, err
	}
	outcomes, err := events.OpenOutcomes(pctx, js, broker.OutcomesBucket)
	if err != nil {
		return nil, err
	}

	// Wix.
	reg := admin.NewRegistry()
	wixCfg := wix.Config{BaseURL: cfg.WixBaseURL, RequestsPerMinute: cfg.WixRatePerMinute,
		GroupsPrefix: cfg.GroupsPrefix, GroupMembersPrefix: cfg.GroupMembersPrefx, GroupRequestsPrefix: cfg.GroupRequestsPrefix,
		AllowInsecureHTTP: cfg.WixAllowInsecureHTTP, Logger: log.Named("wix"), Registerer: reg}
	// Each site's Wix budget is shared by every instance through JetStream:
	// instances with work split the site's rate between them, and the share
	// of one that stops comes back to the others within seconds.
	if cfg.SharedRateLimit {
		a.rates = ratelimit.NewGroup(ctx, js, ratelimit.DefaultInstanceID(), ratelimit.Options{
			Replicas: cfg.Replicas, Logger: log.Named("ratelimit"), Registerer: reg})
		wixCfg.NewLimiter = func(site string) wix.Limiter { return a.rates.Limiter(site, cfg.WixRatePerMinute) }
	}
	var sites Sites
	var realWix *wix.Client // for the startup preflight
	if cfg.Simulated() {
		sim := wixsim.New(wixsim.Options{Sites: append([]string{cfg.SiteID}, cfg.WixSimSites...),
			Members: cfg.WixSimMembers, Groups: cfg.WixSimGroups, Seed: cfg.WixSimSeed,
			RatePerMinute: cfg.WixSimRatePerMin, StateFile: cfg.WixSimState, Logger: log.Named("wixsim")})
		url, err := sim.Start(cfg.WixSimListen)
		if err != nil {
			return nil, fmt.Errorf("start wix simulator on %s: %w", cfg.WixSimListen, err)
		}
		a.sim, a.Sim = sim, sim
		wixCfg.BaseURL = url
		log.Warn("NO WIX CREDENTIALS: using the embedded Wix simulator (set WIX_API_KEY and WIX_SITE_ID for a real site)",
			zap.String("simulator", url), zap.String("default_site", cfg.SiteID))
		client := wix.New(wixCfg)
		sites = &simSites{c: client}
	} else {
		client := wix.New(wixCfg)
		if err := addSites(client, cfg, getenv, a.siteLimiter); err != nil {
			return nil, err
		}
		sites, realWix = client, client
		log.Info("wix: real API", zap.String("base_url", firstNonEmpty(cfg.WixBaseURL, wix.DefaultBaseURL)),
			zap.Strings("sites", client.SiteIDs()), zap.String("default_site", cfg.SiteID))
	}
	a.WixURL = firstNonEmpty(wixCfg.BaseURL, wix.DefaultBaseURL)

	// Events and runtime.
	wpub, err := events.NewJetStreamPublisher(pubNC, runtime.WatermillLogger(log))
	if err != nil {
		return nil, err
	}
	evts := events.NewPublisher(wpub, subjects, "groupflow")
	store := dlq.NewStore(js, subjects)
	deps := Deps{Config: cfg, Sites: sites, Ledger: led, Events: evts, JS: js, Logger: log,
		Registry: reg, DLQ: store, Subjects: subjects}
	rt := runtime.New(runtime.Config{
		Subjects: subjects, DefaultSiteID: cfg.SiteID, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
		HandlerTimeout: cfg.HandlerTimeout, ShutdownGrace: cfg.ShutdownGrace, InFlightBytes: cfg.InFlightBytes,
		SiteRate: func(string) float64 { return cfg.WixRatePerMinute },
	}, runtime.Deps{JS: js, Publisher: wpub, Events: evts, Ledger: led, Outcomes: outcomes, Logger: log, Registerer: reg})
	var consumers []string
	for _, h := range buildHandlers(deps) {
		rt.Register(h, cfg.Concurrency)
		consumers = append(consumers, broker.DurableName(h.CommandType()))
	}
	if err := rt.Prepare(); err != nil {
		return nil, err
	}
	a.rt = rt
	reg.MustRegister(admin.NewBrokerCollector(js, subjects.CommandStream(), subjects.DLQStream(), consumers).WithStreams(subjects.EventStream()))

	// Safety net: commands that ran out of deliveries outside the router.
	capture := dlq.NewCapture(subNC, js, subjects, log.Named("dlq-capture"))
	capture.OnCaptured = rt.AnnounceCaptured
	a.capture = capture
	if err := capture.Start(ctx); err != nil {
		return nil, err
	}

	// Admin HTTP.
	a.admin = admin.New(cfg.HTTPListen, admin.AllReady(
		admin.ConnsReady(subNC, pubNC),
		admin.BrokerReady(subNC, js, subjects.CommandStream(), subjects.EventStream(), subjects.DLQStream()),
		rt.DLQReady, func(context.Context) error {
			if n := capture.Waiting(); n > 0 {
				return fmt.Errorf("DLQ full: %d exhausted command(s) wait in the commands stream to be captured; purge or replay dead letters", n)
			}
			return nil
		}), reg, log)
	a.admin.Protect(cfg.AdminToken, cfg.AdminInsecureNoToken)
	a.admin.SetLive(a.watch.Live)
	dlqHTTP := dlq.NewHTTPHandler(store, cfg.AdminToken, log.Named("dlq-http"))
	a.admin.Handle("/dlq", dlqHTTP)
	a.admin.Handle("/dlq/", dlqHTTP)
	if err := a.serveOps(ctx, subNC, rt, sites, subjects); err != nil {
		return nil, err
	}
	addr, err := a.admin.Start()
	if err != nil {
		return nil, fmt.Errorf("admin http on %s: %w", cfg.HTTPListen, err)
	}
	a.AdminAddr = addr
	log.Info("admin http", zap.String("addr", "http://"+addr), zap.Strings("paths", []string{"/healthz", "/readyz", "/metrics", "/dlq", "/api/commands", "/api/groups"}))

	runCtx, runCancel := context.WithCancel(ctx)
	a.cancel = runCancel
	go func() { a.runDone <- rt.Run(runCtx) }()
	if realWix != nil && cfg.WixPreflight {
		go preflight(runCtx, realWix, log.Named("preflight"))
	}
	select {
	case <-rt.Running():
	case err := <-a.runDone:
		return nil, fmt.Errorf("router: %w", err)
	case <-time.After(60 * time.Second):
		return nil, errors.New("router not running after 60s")
	}
	log.Info("groupflow processing", zap.String("commands", subjects.Commands()), zap.Int("handlers", len(consumers)),
		zap.Int("concurrency", cfg.Concurrency))
	return a, nil
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
