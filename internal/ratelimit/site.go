package ratelimit

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"groupflow/internal/wix"
)

// stateLocked returns the state of s's site, making it if needed.
func (g *Group) stateLocked(s *Shared) *siteState {
	st := g.sites[s.tok]
	if st == nil {
		st = &siteState{site: s.site, tok: s.tok, perMinute: s.perMinute,
			lim: rate.NewLimiter(0, g.opts.Burst), slot: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
		if g.gauges != nil {
			st.shareG = g.gauges.share.WithLabelValues(s.site)
			st.instG = g.gauges.instances.WithLabelValues(s.site)
		}
		g.sites[s.tok] = st
		g.recomputeLocked(st)
	}
	st.perMinute = s.perMinute
	return st
}

// begin records a caller entering Wait: the site has demand, and is listed
// (a kick writes the list soon) unless the group stopped.
func (g *Group) begin(s *Shared) *siteState {
	g.mu.Lock()
	st := g.stateLocked(s)
	st.waiting++
	st.lastDemand = g.clk.Now()
	joined := !st.listed && !g.h.closed
	if joined {
		st.listed, st.joinSeq = true, g.seq+1
		g.listed++
		g.dirty = true
	}
	g.mu.Unlock()
	if joined {
		g.signal()
	}
	return st
}

// end records a caller leaving Wait.
func (g *Group) end(st *siteState) {
	g.mu.Lock()
	st.waiting--
	st.lastDemand = g.clk.Now()
	g.mu.Unlock()
}

// signal wakes the run loop to write a changed list.
func (g *Group) signal() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// refresh sets the site's local rate from the current view.
func (g *Group) refresh(st *siteState) {
	g.mu.Lock()
	g.recomputeLocked(st)
	g.mu.Unlock()
}

// recomputeLocked sets st's share from the current view.
func (g *Group) recomputeLocked(st *siteState) {
	now := g.clk.Now()
	live := livePeers(g.peers, st.tok, now, g.opts.StaleAfter)
	n, trusted := shareDivisor(live+1, g.h.ok(now, g.opts.StaleAfter), st.listed && g.echoSeq >= st.joinSeq, st.healthyN, g.opts.FallbackInstances)
	if trusted {
		st.healthyN = n
	}
	share := Share(st.perMinute, g.opts.Safety, n)
	if share == st.share && n == st.n {
		return
	}
	st.n, st.share = n, share
	st.lim.SetLimit(rate.Limit(share / 60))
	if st.shareG != nil {
		st.shareG.Set(share)
		st.instG.Set(float64(n))
	}
}

func (g *Group) paused(st *siteState) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(st.pausedUntil)
}

func (g *Group) waitPause(ctx context.Context, st *siteState) error {
	return wix.WaitPause(ctx, func() time.Duration {
		g.mu.Lock()
		defer g.mu.Unlock()
		return time.Until(st.pausedUntil)
	})
}

// take sets st's share from the current view and waits for a token of the
// site's local bucket, as rate.Limiter.Wait does (an error at once when
// ctx's deadline comes before the token), except that a wake ends the wait
// early: the reservation is given back and made again at the share of the
// view then. This matters for a new site: it runs at the conservative share
// until the list naming it comes back through the watch (a few ms, more on
// a loaded machine); without the wake its second call would wait the
// conservative interval (0.93 s at 200/min with 3 fallback instances) though
// the full share applies a moment later. Caller holds st.slot.
func (g *Group) take(ctx context.Context, st *siteState) error {
	select { // a wake from before this refresh is stale
	case <-st.wake:
	default:
	}
	g.refresh(st)
	for {
		now := time.Now()
		r := st.lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		if deadline, ok := ctx.Deadline(); !r.OK() || (ok && deadline.Sub(now) < d) {
			r.CancelAt(now)
			return fmt.Errorf("ratelimit: site %s: the next request is not due before the context's deadline", st.site)
		}
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			t.Stop()
			r.Cancel()
			return ctx.Err()
		case <-st.wake:
			if !t.Stop() {
				return nil // the token fell due meanwhile: take it
			}
			r.Cancel()
			g.refresh(st)
		}
	}
}

// wakeLocked wakes the caller waiting for st's token, if any; g.mu held.
func wakeLocked(st *siteState) {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}
