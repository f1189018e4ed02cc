package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/wix"
)

// Group makes the shared limiters of one instance: it creates the bucket
// once and shares the metrics.
type Group struct {
	ctx        context.Context
	js         jetstream.JetStream
	instanceID string
	opts       Options
	gauges     *gauges

	mu   sync.Mutex
	kv   jetstream.KeyValue
	made []*Shared
}

// NewGroup returns the limiter maker of instanceID (empty:
// DefaultInstanceID()). Its limiters run until ctx is done, then give their
// shares back; cancel ctx before closing the NATS connection of js.
func NewGroup(ctx context.Context, js jetstream.JetStream, instanceID string, opts Options) *Group {
	if instanceID == "" {
		instanceID = DefaultInstanceID()
	}
	return &Group{ctx: ctx, js: js, instanceID: instanceID, opts: opts.withDefaults(), gauges: newGauges(opts.Registerer)}
}

// InstanceID returns the id under which this instance heartbeats.
func (g *Group) InstanceID() string { return g.instanceID }

// Shared returns the shared limiter of siteID, or an error.
func (g *Group) Shared(siteID string, perMinute float64) (*Shared, error) {
	g.mu.Lock()
	kv := g.kv
	if kv == nil {
		cctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
		var err error
		kv, err = EnsureBucket(cctx, g.js, g.opts)
		cancel()
		if err != nil {
			g.mu.Unlock()
			return nil, err
		}
		g.kv = kv
	}
	g.mu.Unlock()
	s, err := newShared(g.ctx, kv, siteID, g.instanceID, perMinute, g.opts, g.gauges)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.made = append(g.made, s)
	g.mu.Unlock()
	return s, nil
}

// Close closes every limiter made by g, deleting this instance's keys so
// that the other instances take its shares at once. Call it before closing
// or draining the NATS connection of js. The limiters stay usable at the
// conservative fallback share.
func (g *Group) Close() error {
	g.mu.Lock()
	made := g.made
	g.made = nil
	g.mu.Unlock()
	for _, s := range made {
		_ = s.Close()
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

// gauges are the metrics of the shared limiters.
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

func register(reg prometheus.Registerer, g *prometheus.GaugeVec) *prometheus.GaugeVec {
	err := reg.Register(g)
	if err == nil {
		return g
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
			return old
		}
	}
	return nil
}
