// Package admission decides, per Wix site, when a fetched command may start.
//
// A Fair admission sits between the Source (fetch, keep-alive) and the
// command lifecycle. A ticket waits here before its command takes a lease,
// a handler slot or any write: waiting costs nothing but the message held in
// memory. Admission goes through two stages:
//
//  1. The door: the bodies of all held tickets (waiting or running) stay
//     within MaxInFlightBytes. A ticket that does not fit waits, first come
//     first served; a body larger than the bound takes the whole bound and
//     so is held alone.
//  2. The site queue: each site (Ticket.SiteID) has its own FIFO queue. At
//     most MaxInFlight tickets run at once over all sites, and at most
//     PerSite of one site; ReservedSmall of a site's PerSite slots are only
//     for tickets not marked Large, so a long campaign never holds every
//     slot of its site and small commands arriving behind it still start.
//
// When a running slot frees, the next ticket comes from the site with the
// fewest running tickets, sites with equally few served round-robin. So a
// site's backlog, however long, holds at most PerSite slots, and a ticket of
// another site waits behind no more than one turn of the sites with work:
// each site's pace is then its own rate limit (the Wix client paces each
// call inside a running command, so a site needs only a few commands running
// to use its whole limit).
//
// A queued ticket of a site that already runs all it may (PerSite, or its
// Large share) is parked: it waits for its own site, not for a free slot.
// Parked counts them, so that the Source fetches past one site's backlog
// without counting it against its prefetch window (runtime.Parker).
//
// Cost: no Wix call and no broker write; one mutex, O(1) work per ticket
// (O(PerSite) to place a site). A site's state is dropped as soon as it has
// nothing waiting or running, so memory grows with active sites only.
package admission

import (
	"container/list"
	"context"
	"sync"
)

// Ticket describes one fetched message waiting to be admitted. It is the
// one definition: runtime.Ticket is an alias of it.
type Ticket struct {
	Topic   string // subscription topic (command subject filter)
	Subject string // the message's subject
	SiteID  string // peeked from the body ("siteId"), "" if none/unknown
	Bytes   int64  // body size
	Large   bool   // hint: a long job (send_campaign, generate_report, big rosters) — may be false
}

// Defaults of Options.
const (
	// DefaultMaxInFlight is the default bound on tickets running at once:
	// about one command each for 1,000 sites, which keeps every site's Wix
	// limit busy (the Wix client paces each call, and the runtime's fetch
	// window holds each site's next command, so it starts as soon as the
	// last one ends: runtime.DefaultMaxRunnable);
	// each command in work costs about 60 KiB (goroutine stacks, handler
	// and Wix client state), so this keeps a processor serving 1,000 sites
	// under 200 MiB. Beyond 1,000 active sites, raise it to about one per site.
	DefaultMaxInFlight = 1024
	// DefaultMaxInFlightBytes bounds the bodies held (64 MiB).
	DefaultMaxInFlightBytes int64 = 64 << 20
	// DefaultPerSite is the default bound on one site's running tickets.
	DefaultPerSite = 4
	// DefaultReservedSmall is how many of them only non-Large tickets take.
	DefaultReservedSmall = 1
)

// Options configure a Fair admission; zero values take the defaults.
type Options struct {
	// MaxInFlight bounds the tickets running at once, all sites together.
	MaxInFlight int
	// MaxInFlightBytes bounds the bodies of the tickets held (waiting in a
	// site queue or running).
	MaxInFlightBytes int64
	// PerSite bounds the tickets of one site running at once (at least 1).
	PerSite int
	// ReservedSmall of the PerSite slots are for tickets not marked Large
	// (0 to PerSite-1; negative: none). With PerSite 1 there is no reserve.
	ReservedSmall int
	// Bypass, when set and true for a ticket, admits it at once without
	// counting it (e.g. a consumer that only inspects and acks messages).
	Bypass func(Ticket) bool
}

func (o Options) withDefaults() Options {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.PerSite <= 0 {
		o.PerSite = DefaultPerSite
	}
	switch {
	case o.ReservedSmall == 0:
		o.ReservedSmall = DefaultReservedSmall
	case o.ReservedSmall < 0:
		o.ReservedSmall = 0
	}
	o.ReservedSmall = min(o.ReservedSmall, o.PerSite-1)
	return o
}

// Fair is the fair per-site admission. Safe for concurrent use.
type Fair struct {
	opt Options

	mu      sync.Mutex
	bytes   int64      // bodies held (site queues and running)
	running int        // tickets running
	parked  int        // queued tickets waiting for their own site (see site.parked)
	peak    int        // most tickets running at once
	door    *list.List // of *waiter, waiting for byte room, oldest first
	sites   map[string]*site
	// levels[k] lists, round-robin order, the sites with a ticket that may
	// start and k tickets running.
	levels []*list.List
	seq    uint64
	// entered, when set (tests), is called with f.mu held once a ticket
	// has entered (door or queue) and dispatch has run.
	entered func()
}

// New returns a Fair admission.
func New(o Options) *Fair {
	o = o.withDefaults()
	f := &Fair{opt: o, door: list.New(), sites: map[string]*site{}, levels: make([]*list.List, o.PerSite)}
	for i := range f.levels {
		f.levels[i] = list.New()
	}
	return f
}

// Options returns the options in effect (defaults filled in).
func (f *Fair) Options() Options { return f.opt }

type state int

const (
	atDoor state = iota
	queued
	running
)

type waiter struct {
	t      Ticket
	weight int64
	seq    uint64
	state  state
	el     *list.Element // in the door or in its site's queue
	site   *site
	ready  chan struct{} // closed when it runs
}

// site is one site's queues and counts; it exists while the site holds a
// ticket.
type site struct {
	id           string
	small, large *list.List // queued waiters, oldest first
	running      int
	runningLarge int
	held         int           // tickets in the queues or running
	ring         *list.Element // in f.levels[level] when runnable
	level        int
	// parked is how many of the queued tickets could not start even with
	// slots free everywhere: beyond PerSite-running, or Large beyond the
	// site's Large share.
	parked int
}

// Admit implements runtime.Admission: it blocks until the ticket may run,
// and returns the release to call once its message is acked or nacked
// (calling it more than once is harmless). When ctx ends first it returns
// ctx's error and holds nothing.
func (f *Fair) Admit(ctx context.Context, t Ticket) (func(), error) {
	if err := ctx.Err(); err != nil && (f.opt.Bypass == nil || !f.opt.Bypass(t)) {
		return nil, err
	}
	wait, _ := f.Queue(t)
	return wait(ctx)
}

// Queue enters the ticket as Admit does, but returns at once: tickets
// queued one after the other keep that order (Admit called from one
// goroutine per ticket cannot promise it). wait must be called exactly
// once: it blocks until the ticket runs and returns its release, or, when
// ctx ends first, gives the ticket's place up and returns ctx's error.
// admitted reports that the ticket runs already (wait will not block).
func (f *Fair) Queue(t Ticket) (wait func(ctx context.Context) (release func(), err error), admitted bool) {
	if f.opt.Bypass != nil && f.opt.Bypass(t) {
		return func(context.Context) (func(), error) { return func() {}, nil }, true
	}
	w := &waiter{t: t, weight: min(max(t.Bytes, 0), f.opt.MaxInFlightBytes), ready: make(chan struct{})}
	f.mu.Lock()
	f.seq++
	w.seq = f.seq
	if f.door.Len() == 0 && f.fitsLocked(w) {
		f.enqueueLocked(w)
	} else {
		w.el = f.door.PushBack(w)
	}
	f.dispatchLocked()
	if f.entered != nil {
		f.entered()
	}
	admitted = w.state == running
	f.mu.Unlock()
	return func(ctx context.Context) (func(), error) { return f.wait(ctx, w) }, admitted
}

// wait blocks until w runs, or gives its place up when ctx ends first.
func (f *Fair) wait(ctx context.Context, w *waiter) (func(), error) {
	select {
	case <-w.ready:
		return f.releaser(w), nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch w.state {
	case running: // started meanwhile: give it back
		f.finishLocked(w)
	case queued:
		w.queue().Remove(w.el)
		f.leaveLocked(w)
	case atDoor:
		f.door.Remove(w.el)
		f.openDoorLocked() // the head may have changed
	}
	f.dispatchLocked()
	return nil, ctx.Err()
}

func (f *Fair) releaser(w *waiter) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.finishLocked(w)
			f.dispatchLocked()
			f.mu.Unlock()
		})
	}
}

func (f *Fair) fitsLocked(w *waiter) bool { return f.bytes+w.weight <= f.opt.MaxInFlightBytes }

// queue is the site queue the waiter belongs in.
func (w *waiter) queue() *list.List {
	if w.t.Large {
		return w.site.large
	}
	return w.site.small
}

// enqueueLocked takes w's bytes and puts it in its site's queue.
func (f *Fair) enqueueLocked(w *waiter) {
	s := f.sites[w.t.SiteID]
	if s == nil {
		s = &site{id: w.t.SiteID, small: list.New(), large: list.New(), level: -1}
		f.sites[s.id] = s
	}
	w.site, w.state = s, queued
	f.bytes += w.weight
	s.held++
	w.el = w.queue().PushBack(w)
	f.placeLocked(s)
}

// openDoorLocked moves waiters from the door to their site queues while
// their bodies fit.
func (f *Fair) openDoorLocked() {
	for el := f.door.Front(); el != nil; el = f.door.Front() {
		w := el.Value.(*waiter)
		if !f.fitsLocked(w) {
			return
		}
		f.door.Remove(el)
		f.enqueueLocked(w)
	}
}

// finishLocked ends a running ticket: its slot and bytes are free again.
func (f *Fair) finishLocked(w *waiter) {
	s := w.site
	s.running--
	if w.t.Large {
		s.runningLarge--
	}
	f.running--
	f.leaveLocked(w)
}

// leaveLocked drops a ticket (running or queued, already unlinked) from
// its site and gives back its bytes.
func (f *Fair) leaveLocked(w *waiter) {
	s := w.site
	s.held--
	f.bytes -= w.weight
	f.placeLocked(s)
	if s.held == 0 {
		delete(f.sites, s.id)
	}
	f.openDoorLocked()
}

// next returns the waiter the site would start now, or nil.
func (f *Fair) next(s *site) *waiter {
	if s.running >= f.opt.PerSite {
		return nil
	}
	var small, large *waiter
	if el := s.small.Front(); el != nil {
		small = el.Value.(*waiter)
	}
	if el := s.large.Front(); el != nil && s.runningLarge < f.opt.PerSite-f.opt.ReservedSmall {
		large = el.Value.(*waiter)
	}
	if small == nil || (large != nil && large.seq < small.seq) {
		return large
	}
	return small
}

// placeLocked puts the site in the level of its running count when it has
// a ticket that may start, and out of every level otherwise. A site that
// stays where it is keeps its turn.
func (f *Fair) placeLocked(s *site) {
	f.parkLocked(s)
	level := -1
	if f.next(s) != nil {
		level = s.running
	}
	if level == s.level && (level < 0 || s.ring != nil) {
		return
	}
	if s.ring != nil {
		f.levels[s.level].Remove(s.ring)
		s.ring = nil
	}
	s.level = level
	if level >= 0 {
		s.ring = f.levels[level].PushBack(s)
	}
}

// parkLocked recounts the site's parked tickets: of its queued ones, those
// it could not start even if every global slot were free.
func (f *Fair) parkLocked(s *site) {
	largeRoom := max(0, f.opt.PerSite-f.opt.ReservedSmall-s.runningLarge)
	startable := min(max(0, f.opt.PerSite-s.running), s.small.Len()+min(s.large.Len(), largeRoom))
	parked := s.small.Len() + s.large.Len() - startable
	f.parked += parked - s.parked
	s.parked = parked
}

// dispatchLocked starts tickets while slots are free: each from the site
// with the fewest running, round-robin among equals.
func (f *Fair) dispatchLocked() {
	for f.running < f.opt.MaxInFlight {
		var s *site
		for _, l := range f.levels {
			if el := l.Front(); el != nil {
				s = el.Value.(*site)
				break
			}
		}
		if s == nil {
			return
		}
		w := f.next(s)
		w.queue().Remove(w.el)
		w.el, w.state = nil, running
		s.running++
		if w.t.Large {
			s.runningLarge++
		}
		f.running++
		f.peak = max(f.peak, f.running)
		// Moving to another level sends the site to the back of that level:
		// the next site gets the next turn.
		f.levels[s.level].Remove(s.ring)
		s.ring, s.level = nil, -1
		f.placeLocked(s)
		close(w.ready)
	}
}

// Stats is a snapshot of a Fair admission.
type Stats struct {
	Running     int   // tickets running
	PeakRunning int   // most tickets running at once so far
	Queued      int   // tickets waiting in site queues
	AtDoor      int   // tickets waiting for byte room
	Bytes       int64 // bodies held (each clipped to the byte bound)
	Sites       int   // sites holding a ticket
	// Parked of the Queued wait for their own site: it already runs all
	// it may (PerSite, or its share of Large tickets).
	Parked int
}

// Stats returns the admission's current state.
func (f *Fair) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Stats{Running: f.running, PeakRunning: f.peak, AtDoor: f.door.Len(), Bytes: f.bytes, Sites: len(f.sites), Parked: f.parked}
	for _, s := range f.sites {
		st.Queued += s.small.Len() + s.large.Len()
	}
	return st
}

// Parked returns how many queued tickets wait for their own site (see
// Stats.Parked): a fetch window need not count them (runtime.Parker).
func (f *Fair) Parked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parked
}

// SiteStats returns the running and queued tickets of one site.
func (f *Fair) SiteStats(siteID string) (running, queuedN int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.sites[siteID]; s != nil {
		return s.running, s.small.Len() + s.large.Len()
	}
	return 0, 0
}
