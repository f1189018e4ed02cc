package ratelimit

import "time"

// health is what a Group knows of its own link to the bucket.
type health struct {
	closed     bool // the Group stopped (Close, ctx done)
	watching   bool // the watch runs
	putFailing bool // the last put failed
	active     bool // our keys are registered
	// registeredAt is when our keys were first put after being absent;
	// lastEcho when one of our own puts was last heard back.
	registeredAt, lastEcho time.Time
}

// ok tells whether the view of the other instances can be trusted.
func (h health) ok(now time.Time, stale time.Duration) bool {
	if h.closed || !h.watching || h.putFailing {
		return false
	}
	if h.active && now.Sub(h.registeredAt) > stale && now.Sub(h.lastEcho) > stale {
		return false // our own puts do not come back: the watch is stale
	}
	return true
}

// shareDivisor returns the number of instances a site's share is divided by:
// n counts this instance and the live others with demand for the site;
// healthy is health.ok; confirmed tells whether the list naming the site
// came back through the watch. trusted reports whether n was used as it is
// (the caller then remembers it as the last healthy n).
func shareDivisor(n int, healthy, confirmed bool, lastHealthyN, fallback int) (out int, trusted bool) {
	switch {
	case !healthy:
		return max(n, lastHealthyN, fallback), false
	case !confirmed:
		// Not (yet) registered: peers that start at the same moment may
		// not have seen us, nor we them. Stay conservative until our own
		// list comes back through the watch (a few ms).
		return max(n, fallback), false
	}
	return n, true
}

// peer is another instance as heard through the watch.
type peer struct {
	heard time.Time           // last put of any of its keys (local time)
	sites map[string]struct{} // tokens of the sites it has demand for
}

// livePeers counts the peers heard from within stale of now whose list
// holds tok.
func livePeers(peers map[string]*peer, tok string, now time.Time, stale time.Duration) int {
	n := 0
	for _, p := range peers {
		if now.Sub(p.heard) > stale {
			continue
		}
		if _, ok := p.sites[tok]; ok {
			n++
		}
	}
	return n
}

// forgetPeers drops the peers silent for much longer than stale.
func forgetPeers(peers map[string]*peer, now time.Time, stale time.Duration) {
	for k, p := range peers {
		if now.Sub(p.heard) > 10*stale {
			delete(peers, k)
		}
	}
}
