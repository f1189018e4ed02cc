// Package ratelimit shares each site's Wix rate limit among the groupflow
// instances that run at the same time, through a JetStream KV bucket (no
// other store). Wix allows "up to 200 requests per minute, per [app]
// instance", i.e. per site (Wix, "Rate Limits",
// https://dev.wix.com/docs/rest/articles/get-started/rate-limits); every instance calling a site must therefore stay within its
// part of that one budget.
//
// Design. A Group is one instance's view. Per site with demand it keeps a
// local token bucket (golang.org/x/time/rate, burst 1 by default) at
//
//	share = perMinute × Safety / N
//
// where N is the number of instances that currently have demand for the site
// (a caller is in Wait, or called it within DemandWindow). The KV traffic of
// a Group does not grow with its sites' calls, and grows with its active
// sites only through the size of one value:
//
//   - one wildcard watch per instance (on ">" of the bucket), however many
//     sites it serves;
//   - one key "inst.<instance>.sites" per instance listing the sites it has
//     demand for, written when that list changes (joins at most 5 times per
//     Heartbeat, leaves with the next Heartbeat) and refreshed every
//     StaleAfter so that it outlives the bucket's TTL;
//   - on every other Heartbeat, a small "inst.<instance>.live" put: the
//     liveness of all its sites at once;
//   - nothing at all while no site has demand: the keys are deleted and the
//     heartbeats stop (a site whose calls are all served needs none).
//
// So an instance with demand writes one KV value per Heartbeat (default
// 500ms: 120 per minute) whatever its number of active sites, plus the list
// changes; KVOps and the groupflow_rate_kv_ops_total{kind} metric count them
// (TestKVOpsPerActiveSite states the figure per active site per minute). The
// cost that remains per site is the site's entry in the list (its natsname
// token, about 40 bytes for a GUID) and its local state (see
// BenchmarkSharedLimiterManySites for bytes per active site). Sites without
// demand for EvictAfter are evicted from memory and made again on their next
// call.
//
// Every instance counts the instances whose list names the site and which
// were heard from within StaleAfter (local receive time, so clocks need not
// agree). An instance that stops (Close, ctx cancelled, or no demand for
// DemandWindow) deletes or rewrites its keys and the others' shares grow at
// once; one that crashes stops refreshing them and is ignored after
// StaleAfter, so its share comes back within about StaleAfter + Heartbeat.
//
// Only one caller of a site's Wait holds a reservation of its local bucket
// at a time, and the share is recomputed before each reservation, so a change
// of share takes effect on the next request instead of after a queue of
// reservations made at the old rate. When a site's share grows while its
// caller waits for a token — the list naming a new site is heard back (it
// leaves the conservative share), or another instance stops listing it —
// the caller is woken and reserves again at the new share
// (TestConfirmedShareEndsConservativeWait, TestPeersLeavingEndWaitAtSmallerShare).
//
// A 429 (Throttled) pauses the site's local limiter for Retry-After (or,
// without one, the time the site's limit takes to earn 5 requests: 1.5 s at
// 200/min, doubling per consecutive episode up to 32×, at most 32 s) and,
// unless NoBroadcast, puts "site.<site>.pause" so that the other instances
// pause as long too.
//
// Robustness: a Group checks that it hears its own puts back through its
// watch. While its puts fail or are not echoed (broker unreachable, watch
// broken) the view of the others is not trusted and each site's share falls
// back to perMinute × Safety / max(N, last healthy N, FallbackInstances);
// the watch is restarted. A site just listed stays at that conservative
// share until the list naming it comes back through the watch. When the
// bucket cannot be reached at all when a site's limiter is made,
// Group.Limiter and Factory log a warning and return a local
// wix.AdaptiveLimiter at the conservative rate (perMinute × Safety /
// FallbackInstances, burst 1).
//
// Limits: each instance's list is one KV value, so under the default NATS
// max payload (1 MiB) one instance lists about 25,000 GUID sites at once.
// Instances of the earlier per-site-key protocol ("site.<site>.i.<instance>")
// and of this one do not see each other: upgrade every instance at once.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/natsname"
	"groupflow/internal/wix"
)

// Defaults of Options.
const (
	DefaultBucket            = "GROUPFLOW_RATE"
	DefaultSafety            = 0.97
	DefaultBurst             = 1
	DefaultHeartbeat         = 500 * time.Millisecond
	DefaultStaleAfter        = 3 * time.Second
	DefaultDemandWindow      = 2 * time.Second
	DefaultFallbackInstances = 3
	DefaultEvictAfter        = 2 * time.Minute
)

// Pause after a 429 without Retry-After: the time the site's whole limit
// takes to earn pauseTokens requests (1.5 s at 200/min), doubled per
// consecutive episode (episodes less than strikeReset apart) up to 32 times,
// at most pauseMax.
const (
	pauseTokens = 5
	pauseMax    = 32 * time.Second
	strikeReset = 30 * time.Second
)

// Options tune the shared limiters. Zero fields get the defaults.
type Options struct {
	// Bucket is the KV bucket, default GROUPFLOW_RATE. It is created if
	// missing (memory storage unless FileStorage, history 1, entries expire
	// after max(10s, 3×StaleAfter)).
	Bucket string
	// Replicas of the bucket when it is created: 1 by default, 3 on a cluster.
	Replicas int
	// FileStorage stores the bucket on disk instead of in memory.
	FileStorage bool
	// Safety is the fraction of the site's limit the instances use together,
	// default 0.97.
	Safety float64
	// Burst of each local token bucket, default 1.
	Burst int
	// Heartbeat is how often an instance with demand refreshes its key,
	// default 500ms.
	Heartbeat time.Duration
	// StaleAfter is how long a key not refreshed still counts, default 3s.
	StaleAfter time.Duration
	// DemandWindow: an instance counts as having demand for a site while a
	// caller is in Wait or called it within this window, default 2s.
	DemandWindow time.Duration
	// FallbackInstances is the number of instances assumed when the shared
	// view is unavailable, default 3.
	FallbackInstances int
	// EvictAfter: a site without demand for this long is dropped from
	// memory (its limiter is made again on its next call), default 2m; at
	// least 2×DemandWindow and the 30 s a throttle episode is remembered.
	EvictAfter time.Duration
	// NoBroadcast keeps 429 pauses local.
	NoBroadcast bool
	// Logger, default no-op.
	Logger *zap.Logger
	// Registerer receives groupflow_rate_share{site} (requests per minute
	// this instance may send), groupflow_rate_instances{site} (series of
	// evicted sites are deleted), groupflow_rate_kv_ops_total{kind} and
	// groupflow_rate_kv_bytes_total; nil means no metrics.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Safety <= 0 || o.Safety > 1 {
		o.Safety = DefaultSafety
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.StaleAfter < 2*o.Heartbeat {
		o.StaleAfter = 2 * o.Heartbeat
	}
	if o.DemandWindow <= 0 {
		o.DemandWindow = DefaultDemandWindow
	}
	if o.EvictAfter <= 0 {
		o.EvictAfter = DefaultEvictAfter
	}
	o.EvictAfter = max(o.EvictAfter, 2*o.DemandWindow, strikeReset)
	if o.FallbackInstances <= 0 {
		o.FallbackInstances = DefaultFallbackInstances
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Share returns the requests per minute one of n instances may send when
// they share perMinute with the given safety factor (n < 1 counts as 1).
func Share(perMinute, safety float64, n int) float64 {
	return perMinute * safety / float64(max(n, 1))
}

// DefaultInstanceID returns an id unique to this process (natsname.InstanceID).
func DefaultInstanceID() string { return natsname.InstanceID() }

// EnsureBucket creates the bucket of opts if it does not exist and returns it.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.KeyValue, error) {
	opts = opts.withDefaults()
	cfg := jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "groupflow: per-site Wix rate limit shares (heartbeats)",
		History:     1,
		TTL:         max(10*time.Second, 3*opts.StaleAfter),
		Storage:     jetstream.MemoryStorage,
		Replicas:    opts.Replicas,
	}
	if opts.FileStorage {
		cfg.Storage = jetstream.FileStorage
	}
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, opts.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("ratelimit: bucket %s: %w", opts.Bucket, err)
	}
	return kv, nil
}

// Shared is the wix.Limiter of one site in one instance. Make it with
// NewShared, Group.Shared or Factory. Limiters of one site made by one Group
// share one state, made on the site's first Wait and evicted after
// EvictAfter without demand, so holding a Shared costs nothing while its
// site is idle. It runs until Close or until its Group stops; it stays
// usable after that, at the conservative fallback share.
type Shared struct {
	g         *Group
	site, tok string
	perMinute float64
	own       bool   // made by NewShared: Close closes its Group
	prefix    string // "site.<site>.": its pause key's prefix
	key       string // the instance key that lists the site

	closed   atomic.Bool
	fbOnce   sync.Once
	fallback wix.Limiter
}

// NewShared makes the limiter of siteID for instanceID, sharing perMinute
// (non-positive: wix.DefaultRequestsPerMinute) with the other instances
// through the bucket of opts (created if missing), with a Group of its own
// (one watch). It reads the current instances before returning, so its
// first share is right. It runs until ctx is done or Close.
func NewShared(ctx context.Context, js jetstream.JetStream, siteID, instanceID string, perMinute float64, opts Options) (*Shared, error) {
	if strings.TrimSpace(instanceID) == "" {
		return nil, errors.New("ratelimit: empty instance id")
	}
	g := NewGroup(ctx, js, instanceID, opts)
	s, err := g.Shared(siteID, perMinute)
	if err != nil {
		_ = g.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// Wait blocks until a request may be sent or ctx is done.
func (s *Shared) Wait(ctx context.Context) error {
	if s.closed.Load() {
		return s.fallbackLimiter().Wait(ctx)
	}
	st := s.g.begin(s)
	defer s.g.end(st)
	select {
	case st.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-st.slot }()
	for {
		if err := s.g.waitPause(ctx, st); err != nil {
			return err
		}
		if err := s.g.take(ctx, st); err != nil {
			return err
		}
		if !s.g.paused(st) {
			return nil
		}
		// A 429 (ours or broadcast) arrived while we waited for the token:
		// drop it and take a fresh one after the pause, so that a pause
		// ends with one request per instance, not two.
	}
}

func (s *Shared) fallbackLimiter() wix.Limiter {
	s.fbOnce.Do(func() { s.fallback = Fallback(s.perMinute, s.g.opts) })
	return s.fallback
}

// Throttled pauses every caller for retryAfter (or 5 requests' worth of the
// site's limit, doubling per consecutive episode, with jitter) and tells the
// other instances to pause as long.
func (s *Shared) Throttled(retryAfter time.Duration) {
	if s.closed.Load() {
		s.fallbackLimiter().Throttled(retryAfter)
		return
	}
	g := s.g
	g.mu.Lock()
	st := g.stateLocked(s)
	now := time.Now()
	inEpisode := now.Before(st.pausedUntil)
	d := retryAfter
	if d <= 0 {
		if inEpisode {
			g.mu.Unlock()
			return // concurrent 429s of one burst
		}
		if now.Sub(st.lastThrottle) > strikeReset {
			st.strikes = 0
		}
		base := time.Duration(pauseTokens * 60 / st.perMinute * float64(time.Second))
		d = min(base<<min(st.strikes, 5), pauseMax)
		d += time.Duration(rand.Int64N(int64(d)/5 + 1))
		st.strikes++
	}
	if until := now.Add(d); until.After(st.pausedUntil) {
		st.pausedUntil = until
	}
	st.lastThrottle = now
	closed, strikes := g.h.closed, st.strikes
	g.mu.Unlock()
	g.log.Debug("ratelimit: throttled by Wix, pausing", zap.String("site", s.site), zap.Duration("pause", d),
		zap.Duration("retry_after", retryAfter), zap.Bool("same_episode", inEpisode), zap.Int("strikes", strikes))
	if inEpisode || closed || g.opts.NoBroadcast {
		return
	}
	select {
	case g.bcast <- pauseReq{tok: s.tok, d: d}:
	default:
	}
}

// Rate returns the current share in requests per minute and the number of
// instances it is divided by.
func (s *Shared) Rate() (perMinute float64, instances int) {
	if s.closed.Load() {
		return fallbackPerMinute(s.perMinute, s.g.opts), s.g.opts.FallbackInstances
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.sites[s.tok]
	if st == nil {
		n, _ := shareDivisor(livePeers(g.peers, s.tok, g.clk.Now(), g.opts.StaleAfter)+1, g.h.ok(g.clk.Now(), g.opts.StaleAfter), false, 0, g.opts.FallbackInstances)
		return Share(s.perMinute, g.opts.Safety, n), n
	}
	g.recomputeLocked(st)
	return st.share, st.n
}

// Close gives this site's share back at once (the others see the list
// without it) and, for a limiter made by NewShared, stops its Group. The
// limiter stays usable at the conservative fallback share.
func (s *Shared) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.own {
		return s.g.Close()
	}
	g := s.g
	g.mu.Lock()
	if st := g.sites[s.tok]; st != nil {
		if st.listed {
			g.unlistLocked(st)
			g.urgent = true
		}
		if st.waiting == 0 {
			g.evictLocked(s.tok, st)
		}
	}
	g.mu.Unlock()
	g.signal()
	return nil
}

// crash stops the heartbeats of the limiter's Group without deleting its
// keys, as a killed process would (tests).
func (s *Shared) crash() { s.g.crash() }

var _ wix.Limiter = (*Shared)(nil)
