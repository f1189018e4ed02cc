package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"groupflow/internal/natsname"
	"groupflow/internal/wix"
)

// Group is one instance's shared limiters: one watch, one list of the sites
// it has demand for, one heartbeat (see the package doc for the KV cost).
// Its methods are safe for concurrent use.
type Group struct {
	ctx        context.Context
	js         jetstream.JetStream
	instanceID string
	tok        string // natsname token of instanceID
	opts       Options
	clk        clock
	gauges     *gauges
	ops        *opCounter
	log        *zap.Logger
	sitesKey   string // "inst.<tok>.sites"
	liveKey    string // "inst.<tok>.live"

	startMu sync.Mutex // held while the bucket and the watch are made
	started bool

	mu       sync.Mutex
	kv       kvStore
	sites    map[string]*siteState // by site token
	listed   int                   // sites with listed set
	dirty    bool                  // the list changed since the last put
	urgent   bool                  // put the list now (a Close)
	seq      uint64                // of the last list put
	echoSeq  uint64                // of the last list of ours heard back
	lastList time.Time             // last list put
	lastKick time.Time
	// kickArmed: a kick is due when the gap between list writes ends.
	kickArmed bool
	peers     map[string]*peer // other instances, by token
	h         health
	crashed   bool // tests: stop without giving the shares back

	kick     chan struct{}
	bcast    chan pauseReq
	tickDone chan struct{} // tests: one value per tick handled
	cancel   context.CancelFunc
	done     chan struct{}
}

// siteState is the state of one site with demand (or recent demand); all
// its fields but lim and slot are guarded by Group.mu.
type siteState struct {
	site, tok string
	perMinute float64
	lim       *rate.Limiter
	slot      chan struct{} // held by the one caller with a reservation
	// wake (buffered 1) tells the caller with a reservation that the
	// site's share may have grown (see Group.take).
	wake          chan struct{}
	waiting       int       // callers inside Wait
	lastDemand    time.Time // clock time of the last Wait
	listed        bool
	joinSeq       uint64 // the first list put naming the site
	n, healthyN   int
	share         float64
	pausedUntil   time.Time // real time
	lastThrottle  time.Time
	strikes       int
	shareG, instG prometheus.Gauge
}

type pauseReq struct {
	tok string
	d   time.Duration
}

// heartbeat is the value of an instance's keys (liveness is the receive
// time; At is informational).
type heartbeat struct {
	Instance string   `json:"instance"`
	Seq      uint64   `json:"seq,omitempty"`
	At       int64    `json:"atUnixMs"`
	Sites    []string `json:"sites,omitempty"`
}

// pauseMsg is the value of a site's pause key.
type pauseMsg struct {
	From string `json:"from"`
	MS   int64  `json:"ms"`
}

// NewGroup returns the limiter maker of instanceID (empty:
// DefaultInstanceID()). It makes the bucket and starts its watch on the first
// Shared. Its limiters run until ctx is done or Close, then give their shares
// back; cancel ctx (or Close) before closing the NATS connection of js.
func NewGroup(ctx context.Context, js jetstream.JetStream, instanceID string, opts Options) *Group {
	g := newGroup(ctx, instanceID, opts, realClock{})
	g.js = js
	return g
}

func newGroup(ctx context.Context, instanceID string, opts Options, clk clock) *Group {
	if instanceID == "" {
		instanceID = DefaultInstanceID()
	}
	opts = opts.withDefaults()
	tok := natsname.Token(instanceID)
	rctx, cancel := context.WithCancel(ctx)
	return &Group{ctx: rctx, instanceID: instanceID, tok: tok, opts: opts, clk: clk,
		gauges: newGauges(opts.Registerer), ops: newOpCounter(opts.Registerer),
		log:      opts.Logger.With(zap.String("instance", instanceID)),
		sitesKey: "inst." + tok + ".sites", liveKey: "inst." + tok + ".live",
		sites: map[string]*siteState{}, peers: map[string]*peer{},
		kick: make(chan struct{}, 1), bcast: make(chan pauseReq, 16), cancel: cancel, done: make(chan struct{})}
}

// InstanceID returns the id under which this instance heartbeats.
func (g *Group) InstanceID() string { return g.instanceID }

// KVOps returns the KV operations made so far, by kind.
func (g *Group) KVOps() KVOps { return g.ops.snapshot() }

// ActiveSites returns the number of sites held in memory (with demand, or
// without demand for less than EvictAfter).
func (g *Group) ActiveSites() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sites)
}

// Shared returns a limiter of siteID sharing perMinute (non-positive:
// wix.DefaultRequestsPerMinute) with the other instances. Limiters of one
// site made by one Group share their state. The first call makes the bucket
// (if missing) and reads the other instances before returning; its error is
// returned, and the next call tries again.
func (g *Group) Shared(siteID string, perMinute float64) (*Shared, error) {
	if strings.TrimSpace(siteID) == "" {
		return nil, errors.New("ratelimit: empty site id")
	}
	if strings.TrimSpace(g.instanceID) == "" {
		return nil, errors.New("ratelimit: empty instance id")
	}
	if err := g.start(); err != nil {
		return nil, err
	}
	if perMinute <= 0 {
		perMinute = wix.DefaultRequestsPerMinute
	}
	prefix := "site." + natsname.Token(siteID) + "."
	return &Shared{g: g, site: siteID, tok: natsname.Token(siteID), perMinute: perMinute,
		prefix: prefix, key: g.sitesKey}, nil
}

// start makes the bucket and the watch once.
func (g *Group) start() error {
	g.startMu.Lock()
	defer g.startMu.Unlock()
	if g.started {
		return nil
	}
	if g.kv == nil {
		cctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
		kv, err := EnsureBucket(cctx, g.js, g.opts)
		cancel()
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.kv = kv
		g.mu.Unlock()
	}
	w, err := g.watch(g.ctx)
	if err != nil {
		return err
	}
	g.started = true
	go g.run(g.ctx, w)
	return nil
}

// Close stops the group, deleting this instance's keys so that the other
// instances take its shares at once. Call it before closing or draining
// the NATS connection of js. The limiters stay usable at the conservative
// fallback share.
func (g *Group) Close() error {
	g.cancel()
	g.startMu.Lock()
	started := g.started
	g.startMu.Unlock()
	if started {
		<-g.done
	} else {
		g.mu.Lock()
		g.h.closed = true
		g.mu.Unlock()
	}
	return nil
}

// Limiter returns the shared limiter of siteID; when the bucket cannot be
// used it logs a warning and returns Fallback(perMinute, opts) instead.
func (g *Group) Limiter(siteID string, perMinute float64) wix.Limiter {
	s, err := g.Shared(siteID, perMinute)
	if err != nil {
		g.opts.Logger.Warn("ratelimit: shared limit unavailable; using a conservative local limiter",
			zap.String("site", siteID), zap.Float64("per_minute", fallbackPerMinute(perMinute, g.opts)), zap.Error(err))
		return Fallback(perMinute, g.opts)
	}
	return s
}

// Factory returns a function usable as wix.Config.NewLimiter: each site gets
// a Shared limiter of perMinute for instanceID (see Group.Limiter for the
// fallback when JetStream is unavailable).
func Factory(ctx context.Context, js jetstream.JetStream, instanceID string, perMinute float64, opts Options) func(siteID string) wix.Limiter {
	g := NewGroup(ctx, js, instanceID, opts)
	return func(siteID string) wix.Limiter { return g.Limiter(siteID, perMinute) }
}

// Fallback is the local limiter used when the shared view is unavailable:
// a wix.AdaptiveLimiter at perMinute × Safety / FallbackInstances, burst 1,
// so that up to FallbackInstances instances stay under the site's limit.
func Fallback(perMinute float64, opts Options) wix.Limiter {
	return wix.NewAdaptiveLimiter(fallbackPerMinute(perMinute, opts), 1)
}

func fallbackPerMinute(perMinute float64, opts Options) float64 {
	opts = opts.withDefaults()
	if perMinute <= 0 {
		perMinute = wix.DefaultRequestsPerMinute
	}
	return Share(perMinute, opts.Safety, opts.FallbackInstances)
}

// gauges are the per-site metrics of the shared limiters.
type gauges struct {
	share, instances *prometheus.GaugeVec
}

func newGauges(reg prometheus.Registerer) *gauges {
	if reg == nil {
		return nil
	}
	share := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "groupflow_rate_share",
		Help: "Requests per minute this instance may send to the site (its share of the site's Wix rate limit).",
	}, []string{"site"}))
	inst := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "groupflow_rate_instances",
		Help: "Instances with demand sharing the site's Wix rate limit, as this instance sees them.",
	}, []string{"site"}))
	if share == nil || inst == nil {
		return nil
	}
	return &gauges{share: share, instances: inst}
}

// watch starts the watcher of the whole bucket and applies its initial
// values.
func (g *Group) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	g.ops.add(OpWatch, 0)
	w, err := g.kv.Watch(ctx, ">")
	if err != nil {
		return nil, fmt.Errorf("ratelimit: watch %s: %w", g.opts.Bucket, err)
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("ratelimit: watcher closed")
			}
			if e == nil {
				g.mu.Lock()
				g.h.watching = true
				g.mu.Unlock()
				return w, nil
			}
			g.apply(e, true)
		case <-t.C:
			_ = w.Stop()
			return nil, errors.New("ratelimit: timeout reading the current instances")
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
}
