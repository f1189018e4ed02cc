// Package ratelimit shares each site's Wix rate limit among the groupflow
// instances that run at the same time, through a JetStream KV bucket (no
// other store).
//
// Design. Every instance keeps one Shared limiter per site: a local token
// bucket (golang.org/x/time/rate, burst 1 by default) running at
//
//	share = perMinute × Safety / N
//
// where N is the number of instances that currently have demand for the site
// (a caller is in Wait or called it within DemandWindow). An instance with demand heartbeats
// the key "site.<site>.i.<instance>" of the bucket (default GROUPFLOW_RATE)
// every Heartbeat; all instances watch "site.<site>.>" and count the keys
// heard from within StaleAfter (local receive time, so clocks need not
// agree). An instance that stops (Close, ctx cancelled, or idle for
// DemandWindow) deletes its key and the others' shares grow at once; one that
// crashes stops refreshing its key and is ignored after StaleAfter, so its
// share comes back within about StaleAfter + Heartbeat.
//
// Only one caller of Wait holds a reservation of the local bucket at a time,
// so a change of share takes effect on the next request instead of after a
// queue of reservations made at the old rate.
//
// A 429 (Throttled) pauses the local limiter for Retry-After (or, without
// one, the time the site's limit takes to earn 5 requests: 1.5 s at
// 200/min, doubling per consecutive episode up to 32×, at most 32 s) and,
// unless NoBroadcast, puts "site.<site>.pause" so that the other instances
// pause as long too.
//
// Robustness: the limiter checks that it hears its own heartbeats back
// through the watch. While its heartbeats fail or are not echoed (broker
// unreachable, watch broken) the view of the others is not trusted and the
// share falls back to perMinute × Safety / max(N, last healthy N,
// FallbackInstances); the watch is restarted. When the bucket cannot be
// reached at all when a site's limiter is made, Group.Limiter and Factory
// log a warning and return a local wix.AdaptiveLimiter at that conservative
// fallback rate (perMinute × Safety / FallbackInstances, burst 1).
package ratelimit

import (
	"context"
	"encoding/json"
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
	"golang.org/x/time/rate"

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
	// NoBroadcast keeps 429 pauses local.
	NoBroadcast bool
	// Logger, default no-op.
	Logger *zap.Logger
	// Registerer receives groupflow_rate_share{site} (requests per minute
	// this instance may send) and groupflow_rate_instances{site}; nil means
	// no metrics.
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

// heartbeat is the value of an instance key (informational; liveness is the
// receive time).
type heartbeat struct {
	Instance string  `json:"instance"`
	Share    float64 `json:"sharePerMinute"`
	At       int64   `json:"atUnixMs"`
}

// pauseMsg is the value of the pause key.
type pauseMsg struct {
	From string `json:"from"`
	MS   int64  `json:"ms"`
}

// Shared is the wix.Limiter of one site in one instance. Make it with
// NewShared (or Group/Factory); it runs until Close or until the context
// given to NewShared is done, then deletes its key. It stays usable after
// that, at the conservative fallback share.
type Shared struct {
	site, instance string
	perMinute      float64
	opts           Options
	log            *zap.Logger
	kv             jetstream.KeyValue
	prefix         string // "site.<site>."
	key            string // prefix + "i.<instance>"
	pauseKey       string // prefix + "pause"

	lim        *rate.Limiter
	slot       chan struct{} // held by the one caller with a reservation
	wake       chan struct{} // demand after idleness: register now
	bcast      chan time.Duration
	lastDemand atomic.Int64 // unix ns of the last Wait
	waiting    atomic.Int32 // callers inside Wait (they have demand too)

	shareG, instG prometheus.Gauge

	mu           sync.Mutex
	peers        map[string]time.Time // other instances' keys → last heard
	active       bool                 // our key is registered
	registeredAt time.Time
	lastEcho     time.Time // our own heartbeat heard back
	putFailing   bool
	watching     bool
	lastHealthyN int
	n            int
	share        float64 // requests per minute
	closed       bool
	crashed      bool // tests: stop without giving the share back
	pausedUntil  time.Time
	lastThrottle time.Time
	strikes      int

	cancel context.CancelFunc
	done   chan struct{}
}

// NewShared makes the limiter of siteID for instanceID, sharing perMinute
// (non-positive: wix.DefaultRequestsPerMinute) with the other instances
// through the bucket of opts (created if missing). It reads the current
// instances before returning, so its first share is right. It runs until
// ctx is done or Close.
func NewShared(ctx context.Context, js jetstream.JetStream, siteID, instanceID string, perMinute float64, opts Options) (*Shared, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := EnsureBucket(cctx, js, opts)
	if err != nil {
		return nil, err
	}
	return newShared(ctx, kv, siteID, instanceID, perMinute, opts, newGauges(opts.Registerer))
}

func newShared(ctx context.Context, kv jetstream.KeyValue, siteID, instanceID string, perMinute float64, opts Options, g *gauges) (*Shared, error) {
	if strings.TrimSpace(siteID) == "" || strings.TrimSpace(instanceID) == "" {
		return nil, errors.New("ratelimit: empty site or instance id")
	}
	opts = opts.withDefaults()
	if perMinute <= 0 {
		perMinute = wix.DefaultRequestsPerMinute
	}
	// Keys are made of natsname tokens: readable for plain ids, hashed
	// otherwise, so no site or instance id can make a key (a subject) longer
	// than NATS allows.
	prefix := "site." + natsname.Token(siteID) + "."
	s := &Shared{
		site: siteID, instance: instanceID, perMinute: perMinute, opts: opts,
		log: opts.Logger.With(zap.String("site", siteID), zap.String("instance", instanceID)),
		kv:  kv, prefix: prefix, key: prefix + "i." + natsname.Token(instanceID), pauseKey: prefix + "pause",
		slot: make(chan struct{}, 1), wake: make(chan struct{}, 1), bcast: make(chan time.Duration, 1),
		peers: map[string]time.Time{}, done: make(chan struct{}),
	}
	if g != nil {
		s.shareG = g.share.WithLabelValues(siteID)
		s.instG = g.instances.WithLabelValues(siteID)
	}
	// Initial view: every key present now counts as heard now (a dead
	// instance's key then counts for at most StaleAfter: conservative).
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	w, err := s.watch(runCtx)
	if err != nil {
		cancel()
		return nil, err
	}
	s.lim = rate.NewLimiter(0, opts.Burst)
	s.mu.Lock()
	s.recomputeLocked(time.Now())
	s.mu.Unlock()
	go s.run(runCtx, w)
	return s, nil
}

// watch starts a watcher of the site's keys and applies its initial values.
func (s *Shared) watch(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := s.kv.Watch(ctx, s.prefix+">")
	if err != nil {
		return nil, fmt.Errorf("ratelimit: watch %s>: %w", s.prefix, err)
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
				s.mu.Lock()
				s.watching = true
				s.mu.Unlock()
				return w, nil
			}
			s.apply(e, true)
		case <-t.C:
			_ = w.Stop()
			return nil, errors.New("ratelimit: timeout reading the current instances")
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
}

// apply records one watched entry.
func (s *Shared) apply(e jetstream.KeyValueEntry, initial bool) {
	now := time.Now()
	put := e.Operation() == jetstream.KeyValuePut
	key := e.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case key == s.key:
		if put {
			s.lastEcho = now
		}
	case key == s.pauseKey:
		if !put || initial {
			return // an old pause is over by now
		}
		var m pauseMsg
		if json.Unmarshal(e.Value(), &m) != nil || m.From == s.instance || m.MS <= 0 {
			return
		}
		d := min(time.Duration(m.MS)*time.Millisecond, pauseMax)
		s.log.Debug("ratelimit: pause broadcast by another instance", zap.String("from", m.From), zap.Duration("pause", d))
		if until := now.Add(d); until.After(s.pausedUntil) {
			s.pausedUntil = until
		}
	case strings.HasPrefix(key, s.prefix+"i."):
		if put {
			s.peers[key] = now
		} else {
			delete(s.peers, key)
		}
	}
}

// livePeers counts the peers heard from within stale of now, and forgets
// those silent for much longer.
func livePeers(peers map[string]time.Time, now time.Time, stale time.Duration) int {
	n := 0
	for k, t := range peers {
		age := now.Sub(t)
		if age <= stale {
			n++
		} else if age > 10*stale {
			delete(peers, k)
		}
	}
	return n
}

// healthyLocked tells whether the view of the other instances can be trusted.
func (s *Shared) healthyLocked(now time.Time) bool {
	if s.closed || !s.watching || s.putFailing {
		return false
	}
	if s.active && now.Sub(s.registeredAt) > s.opts.StaleAfter && now.Sub(s.lastEcho) > s.opts.StaleAfter {
		return false // our own heartbeats do not come back: the watch is stale
	}
	return true
}

// recomputeLocked sets the local rate from the current view.
func (s *Shared) recomputeLocked(now time.Time) {
	n := livePeers(s.peers, now, s.opts.StaleAfter) + 1
	switch {
	case !s.healthyLocked(now):
		n = max(n, s.lastHealthyN, s.opts.FallbackInstances)
	case !s.active || s.lastEcho.Before(s.registeredAt):
		// Not (yet) registered: peers that start at the same moment may
		// not have seen us, nor we them. Stay conservative until our own
		// heartbeat comes back through the watch (a few ms).
		n = max(n, s.opts.FallbackInstances)
	default:
		s.lastHealthyN = n
	}
	share := Share(s.perMinute, s.opts.Safety, n)
	if share == s.share && n == s.n {
		return
	}
	if n != s.n {
		s.log.Debug("ratelimit: share changed", zap.Int("instances", n), zap.Float64("per_minute", share))
	}
	s.n, s.share = n, share
	s.lim.SetLimitAt(now, rate.Limit(share/60))
	if s.shareG != nil {
		s.shareG.Set(share)
		s.instG.Set(float64(n))
	}
}

// run heartbeats, follows the watch and broadcasts pauses until ctx is done.
func (s *Shared) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(s.done)
	tick := time.NewTicker(s.opts.Heartbeat)
	defer tick.Stop()
	updates := w.Updates()
	lastWatch := time.Now()
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			s.stop()
			return
		case <-tick.C:
			s.heartbeat(ctx)
			s.mu.Lock()
			restart := (!s.watching || !s.healthyLocked(time.Now()) && !s.putFailing) &&
				time.Since(lastWatch) > s.opts.StaleAfter
			s.mu.Unlock()
			if restart {
				s.log.Warn("ratelimit: restarting the watch of the other instances")
				_ = w.Stop()
				lastWatch = time.Now()
				if nw, err := s.watch(ctx); err == nil {
					w, updates = nw, nw.Updates()
				} else {
					s.log.Warn("ratelimit: watch failed", zap.Error(err))
					s.mu.Lock()
					s.watching = false
					s.mu.Unlock()
					updates = nil
				}
			}
		case <-s.wake:
			s.heartbeat(ctx)
		case d := <-s.bcast:
			b, _ := json.Marshal(pauseMsg{From: s.instance, MS: d.Milliseconds()})
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			if _, err := s.kv.Put(pctx, s.pauseKey, b); err != nil {
				s.log.Debug("ratelimit: broadcast pause failed", zap.Error(err))
			}
			cancel()
		case e, ok := <-updates:
			if !ok {
				updates = nil
				s.mu.Lock()
				s.watching = false
				s.mu.Unlock()
			} else if e != nil {
				s.apply(e, false)
			}
		}
		s.mu.Lock()
		s.recomputeLocked(time.Now())
		s.mu.Unlock()
	}
}

// heartbeat refreshes our key while we have demand and deletes it when the
// demand is gone.
func (s *Shared) heartbeat(ctx context.Context) {
	now := time.Now()
	demand := s.waiting.Load() > 0 || now.Sub(time.Unix(0, s.lastDemand.Load())) <= s.opts.DemandWindow
	s.mu.Lock()
	active, share := s.active, s.share
	s.mu.Unlock()
	if !demand {
		if active {
			s.deleteKey(ctx)
		}
		return
	}
	// registeredAt is taken before the put: the echo may arrive before the
	// put returns.
	b, _ := json.Marshal(heartbeat{Instance: s.instance, Share: share, At: now.UnixMilli()})
	pctx, cancel := context.WithTimeout(ctx, max(time.Second, s.opts.Heartbeat))
	_, err := s.kv.Put(pctx, s.key, b)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !s.putFailing && ctx.Err() == nil {
			s.log.Warn("ratelimit: heartbeat failed; using the conservative share", zap.Error(err))
		}
		s.putFailing = true
		return
	}
	if s.putFailing {
		s.log.Info("ratelimit: heartbeats work again")
	}
	s.putFailing = false
	if !s.active {
		s.active, s.registeredAt = true, now
	}
}

func (s *Shared) deleteKey(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	err := s.kv.Delete(dctx, s.key)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Debug("ratelimit: delete key failed (it expires)", zap.Error(err))
	}
	s.active = false
}

// stop gives our share back and switches to the conservative share.
func (s *Shared) stop() {
	s.mu.Lock()
	active := s.active && !s.crashed
	s.closed = true
	s.mu.Unlock()
	if active {
		s.deleteKey(context.Background())
	}
	s.mu.Lock()
	s.recomputeLocked(time.Now())
	s.mu.Unlock()
}

// Close stops the heartbeats and deletes this instance's key, so the other
// instances take its share at once. The limiter stays usable at the
// conservative fallback share.
func (s *Shared) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Wait blocks until a request may be sent or ctx is done.
func (s *Shared) Wait(ctx context.Context) error {
	s.lastDemand.Store(time.Now().UnixNano())
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	s.mu.Lock()
	idle := !s.active && !s.closed
	s.mu.Unlock()
	if idle {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slot }()
	for {
		if err := s.waitPause(ctx); err != nil {
			return err
		}
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		if !s.paused() {
			return nil
		}
		// A 429 (ours or broadcast) arrived while we waited for the token:
		// drop it and take a fresh one after the pause, so that a pause
		// ends with one request per instance, not two.
	}
}

func (s *Shared) paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.pausedUntil)
}

func (s *Shared) waitPause(ctx context.Context) error {
	for {
		s.mu.Lock()
		d := time.Until(s.pausedUntil)
		s.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Throttled pauses every caller for retryAfter (or 5 requests' worth of the
// site's limit, doubling per consecutive episode, with jitter) and tells the other instances to pause
// as long.
func (s *Shared) Throttled(retryAfter time.Duration) {
	s.mu.Lock()
	now := time.Now()
	inEpisode := now.Before(s.pausedUntil)
	d := retryAfter
	if d <= 0 {
		if inEpisode {
			s.mu.Unlock()
			return // concurrent 429s of one burst
		}
		if now.Sub(s.lastThrottle) > strikeReset {
			s.strikes = 0
		}
		base := time.Duration(pauseTokens * 60 / s.perMinute * float64(time.Second))
		d = min(base<<min(s.strikes, 5), pauseMax)
		d += time.Duration(rand.Int64N(int64(d)/5 + 1))
		s.strikes++
	}
	if until := now.Add(d); until.After(s.pausedUntil) {
		s.pausedUntil = until
	}
	s.lastThrottle = now
	closed, strikes := s.closed, s.strikes
	s.mu.Unlock()
	s.log.Debug("ratelimit: throttled by Wix, pausing", zap.Duration("pause", d), zap.Duration("retry_after", retryAfter),
		zap.Bool("same_episode", inEpisode), zap.Int("strikes", strikes))
	if inEpisode || closed || s.opts.NoBroadcast {
		return
	}
	select {
	case s.bcast <- d:
	default:
	}
}

// Rate returns the current share in requests per minute and the number of
// instances it is divided by.
func (s *Shared) Rate() (perMinute float64, instances int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.share, s.n
}

// crash stops the heartbeats without deleting the key, as a killed process
// would (tests).
func (s *Shared) crash() {
	s.mu.Lock()
	s.crashed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

var _ wix.Limiter = (*Shared)(nil)
