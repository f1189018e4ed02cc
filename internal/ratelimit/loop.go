package ratelimit

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// maxListed bounds the sites read from another instance's list.
const maxListed = 1 << 17

// run heartbeats, follows the watch and broadcasts pauses until ctx is done.
func (g *Group) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(g.done)
	tick, stopTick := g.clk.Ticker(g.opts.Heartbeat)
	defer stopTick()
	updates := w.Updates()
	lastWatch := g.clk.Now()
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			g.stop()
			return
		case <-tick:
			g.sweep()
			g.publish(ctx, false)
			if g.needsWatch(lastWatch) {
				g.log.Warn("ratelimit: restarting the watch of the other instances")
				_ = w.Stop()
				lastWatch = g.clk.Now()
				w, updates = g.rewatch(ctx)
			}
			if g.tickDone != nil {
				g.tickDone <- struct{}{}
			}
		case <-g.kick:
			g.publish(ctx, true)
		case p := <-g.bcast:
			b, _ := json.Marshal(pauseMsg{From: g.instanceID, MS: p.d.Milliseconds()})
			g.ops.add(OpPutPause, len(b))
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			if _, err := g.kv.Put(pctx, "site."+p.tok+".pause", b); err != nil {
				g.log.Debug("ratelimit: broadcast pause failed", zap.Error(err))
			}
			cancel()
		case e, ok := <-updates:
			if !ok {
				updates = nil
				g.mu.Lock()
				g.h.watching = false
				g.mu.Unlock()
			} else if e != nil {
				g.apply(e, false)
			}
		}
	}
}

// needsWatch tells whether the watch should be restarted.
func (g *Group) needsWatch(lastWatch time.Time) bool {
	now := g.clk.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	return (!g.h.watching || !g.h.ok(now, g.opts.StaleAfter) && !g.h.putFailing) && now.Sub(lastWatch) > g.opts.StaleAfter
}

// rewatch starts a new watch; on failure the updates channel is nil and the
// group stays unhealthy until the next try.
func (g *Group) rewatch(ctx context.Context) (jetstream.KeyWatcher, <-chan jetstream.KeyValueEntry) {
	nw, err := g.watch(ctx)
	if err == nil {
		return nw, nw.Updates()
	}
	g.log.Warn("ratelimit: watch failed", zap.Error(err))
	g.mu.Lock()
	g.h.watching = false
	g.mu.Unlock()
	return stoppedWatcher{}, nil
}

type stoppedWatcher struct{}

func (stoppedWatcher) Updates() <-chan jetstream.KeyValueEntry { return nil }
func (stoppedWatcher) Stop() error                             { return nil }

// sweep unlists the sites without demand for DemandWindow and evicts those
// without demand for EvictAfter (and no recent 429).
func (g *Group) sweep() {
	now, real := g.clk.Now(), time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for tok, st := range g.sites {
		if st.waiting > 0 {
			continue
		}
		idle := now.Sub(st.lastDemand)
		if st.listed && idle > g.opts.DemandWindow {
			g.unlistLocked(st)
		}
		if !st.listed && idle > g.opts.EvictAfter && real.After(st.pausedUntil) && real.Sub(st.lastThrottle) > strikeReset {
			g.evictLocked(tok, st)
		}
	}
	forgetPeers(g.peers, now, g.opts.StaleAfter)
}

func (g *Group) unlistLocked(st *siteState) {
	st.listed = false
	g.listed--
	g.dirty = true
}

func (g *Group) evictLocked(tok string, st *siteState) {
	delete(g.sites, tok)
	if g.gauges != nil {
		g.gauges.share.DeleteLabelValues(st.site)
		g.gauges.instances.DeleteLabelValues(st.site)
	}
}

// publish writes this instance's keys: the list when it changed or is due
// for a refresh, else a heartbeat; nothing but a delete when no site has
// demand. A kick (a site joined or closed) writes only a changed list, at
// most 5 times per Heartbeat unless urgent.
func (g *Group) publish(ctx context.Context, kicked bool) {
	now := g.clk.Now()
	g.mu.Lock()
	if g.h.closed {
		g.mu.Unlock()
		return
	}
	if kicked && (!g.dirty || !g.urgent && now.Sub(g.lastKick) < g.opts.Heartbeat/5) {
		if g.dirty && !g.kickArmed {
			// Joins within the gap: write them when it ends, not at the
			// next heartbeat (a joining site runs at the conservative share
			// until its list comes back).
			g.kickArmed = true
			time.AfterFunc(g.opts.Heartbeat/5-now.Sub(g.lastKick), func() {
				g.mu.Lock()
				g.kickArmed, g.urgent = false, true
				g.mu.Unlock()
				g.signal()
			})
		}
		g.mu.Unlock()
		return
	}
	if kicked {
		g.lastKick = now
	}
	g.urgent = false
	if g.listed == 0 {
		active := g.h.active
		g.h.active, g.dirty = false, false
		g.mu.Unlock()
		if active {
			g.deleteKeys(ctx)
		}
		return
	}
	key, kind := g.liveKey, OpPutLive
	hb := heartbeat{Instance: g.instanceID, At: now.UnixMilli()}
	if g.dirty || !g.h.active || now.Sub(g.lastList) >= g.opts.StaleAfter {
		key, kind = g.sitesKey, OpPutSites
		g.seq++
		hb.Seq = g.seq
		hb.Sites = make([]string, 0, g.listed)
		for tok, st := range g.sites {
			if st.listed {
				hb.Sites = append(hb.Sites, tok)
			}
		}
		g.dirty, g.lastList = false, now
	}
	g.mu.Unlock()
	g.put(ctx, key, kind, hb, now)
}

// put writes one of our keys and records the outcome in the health.
func (g *Group) put(ctx context.Context, key, kind string, hb heartbeat, now time.Time) {
	b, _ := json.Marshal(hb)
	g.ops.add(kind, len(b))
	pctx, cancel := context.WithTimeout(ctx, max(time.Second, g.opts.Heartbeat))
	_, err := g.kv.Put(pctx, key, b)
	cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if !g.h.putFailing && ctx.Err() == nil {
			g.log.Warn("ratelimit: heartbeat failed; using the conservative share", zap.Error(err))
		}
		g.h.putFailing = true
		if kind == OpPutSites {
			g.dirty = true // the list must be written again
		}
		return
	}
	if g.h.putFailing {
		g.log.Info("ratelimit: heartbeats work again")
	}
	g.h.putFailing = false
	if !g.h.active {
		// registeredAt is taken before the put: the echo may arrive before
		// the put returns.
		g.h.active, g.h.registeredAt = true, now
	}
}

// deleteKeys removes our keys: the others take our shares at once.
func (g *Group) deleteKeys(ctx context.Context) {
	for _, k := range []string{g.sitesKey, g.liveKey} {
		g.ops.add(OpDelete, 0)
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := g.kv.Delete(dctx, k); err != nil {
			g.log.Debug("ratelimit: delete key failed (it expires)", zap.String("key", k), zap.Error(err))
		}
		cancel()
	}
}

// apply records one watched entry.
func (g *Group) apply(e jetstream.KeyValueEntry, initial bool) {
	now := g.clk.Now()
	put := e.Operation() == jetstream.KeyValuePut
	key := e.Key()
	switch {
	case strings.HasPrefix(key, "inst."):
		tok, kind, _ := strings.Cut(key[len("inst."):], ".")
		g.applyInstance(tok, kind, put, initial, e.Value(), now)
	case strings.HasPrefix(key, "site.") && strings.HasSuffix(key, ".pause"):
		if !put || initial {
			return // an old pause is over by now
		}
		var m pauseMsg
		if json.Unmarshal(e.Value(), &m) != nil || m.From == g.instanceID || m.MS <= 0 {
			return
		}
		tok := strings.TrimSuffix(key[len("site."):], ".pause")
		d := min(time.Duration(m.MS)*time.Millisecond, pauseMax)
		g.mu.Lock()
		defer g.mu.Unlock()
		st := g.sites[tok]
		if st == nil {
			return // no local calls to pause
		}
		g.log.Debug("ratelimit: pause broadcast by another instance", zap.String("site", st.site), zap.String("from", m.From), zap.Duration("pause", d))
		if until := time.Now().Add(d); until.After(st.pausedUntil) {
			st.pausedUntil = until
		}
	}
}

// confirmLocked records that our list of seq was heard back: the sites it
// named first leave the conservative share, and their waiting callers are
// woken to take their next token at the full one; g.mu held.
func (g *Group) confirmLocked(seq uint64) {
	was := g.echoSeq
	g.echoSeq = seq
	for _, st := range g.sites {
		if st.waiting > 0 && st.listed && st.joinSeq > was && st.joinSeq <= seq {
			wakeLocked(st)
		}
	}
}

// applyInstance records a put or delete of an instance's key.
func (g *Group) applyInstance(tok, kind string, put, initial bool, value []byte, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tok == g.tok {
		if initial || !put {
			return // a previous process under our id, or our own delete
		}
		g.h.lastEcho = now
		var hb heartbeat
		if kind == "sites" && json.Unmarshal(value, &hb) == nil && hb.Seq > g.echoSeq {
			g.confirmLocked(hb.Seq)
		}
		return
	}
	p := g.peers[tok]
	if !put {
		if p != nil {
			g.wakeLeftLocked(p.sites, nil)
		}
		switch {
		case kind == "live":
			delete(g.peers, tok)
		case p != nil:
			p.sites = nil
		}
		return
	}
	if p == nil {
		p = &peer{}
		g.peers[tok] = p
	}
	p.heard = now // initial values too: a dead instance then counts for at most StaleAfter
	if kind != "sites" {
		return
	}
	var hb heartbeat
	if json.Unmarshal(value, &hb) != nil {
		return
	}
	was := p.sites
	p.sites = make(map[string]struct{}, min(len(hb.Sites), maxListed))
	for _, s := range hb.Sites[:min(len(hb.Sites), maxListed)] {
		p.sites[s] = struct{}{}
	}
	g.wakeLeftLocked(was, p.sites)
}

// wakeLeftLocked wakes our waiting callers of the sites a peer listed
// before (was) and no longer lists (now): their share grows, and they
// should not finish a wait reserved at the smaller one; g.mu held.
func (g *Group) wakeLeftLocked(was, now map[string]struct{}) {
	for tok := range was {
		if _, still := now[tok]; still {
			continue
		}
		if st := g.sites[tok]; st != nil && st.waiting > 0 {
			wakeLocked(st)
		}
	}
}

// stop gives our shares back (unless crashed) and switches every site to the
// conservative share.
func (g *Group) stop() {
	g.mu.Lock()
	give := g.h.active && !g.crashed
	g.h.closed, g.h.active = true, false
	for _, st := range g.sites {
		if st.listed {
			g.unlistLocked(st)
		}
	}
	g.mu.Unlock()
	if give {
		g.deleteKeys(context.Background())
	}
}

// crash stops the heartbeats without deleting the keys, as a killed process
// would (tests).
func (g *Group) crash() {
	g.mu.Lock()
	g.crashed = true
	g.mu.Unlock()
	_ = g.Close()
}
