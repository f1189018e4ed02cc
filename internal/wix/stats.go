package wix

import "sync/atomic"

// SiteStats counts a site's traffic since the process started, for the ops
// console: attempts sent, 429 answers, and calls waiting on the limiter now.
type SiteStats struct {
	Calls, Throttled, Waiting int64
}

type siteStats struct {
	calls, throttled, waiting atomic.Int64
}

// Stats returns the site's counters (no I/O).
func (s *Site) Stats() SiteStats {
	return SiteStats{Calls: s.stats.calls.Load(), Throttled: s.stats.throttled.Load(), Waiting: s.stats.waiting.Load()}
}

// LimiterRate returns the limiter's current rate in calls per minute and the
// number of instances sharing the site's budget (0 when not shared); 0, 0
// when the limiter does not say.
func (s *Site) LimiterRate() (perMinute float64, instances int) {
	switch l := s.limiter.(type) {
	case interface{ Rate() (float64, int) }:
		return l.Rate()
	case interface{ Rate() float64 }:
		return l.Rate(), 0
	}
	return 0, 0
}
