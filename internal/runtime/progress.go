package runtime

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"groupflow/internal/wix"
)

// Progress keys the handlers report (Set/Add) and announce totals of (Total).
const (
	ProgressRowsResolved    = "rowsResolved"
	ProgressRowsAdded       = "rowsAdded"
	ProgressPagesRead       = "pagesRead"
	ProgressMembersSeen     = "membersSeen"
	ProgressMembersSelected = "membersSelected"
	ProgressGroupsDone      = "groupsDone"
	// ProgressWixCalls is only a Total: the command's budget in Wix calls
	// (README formula); the calls made are counted by the runtime.
	ProgressWixCalls = "wixCalls"
)

// MaxProgressKeys bounds the keys of one command's progress: a handler bug
// cannot grow an answer without bound.
const MaxProgressKeys = 32

// Progress of one running command, updated by its handler and read by the
// admin API and the progress request/reply subject. It is ephemeral: held by
// the instance running the command, never written to NATS. Methods are safe
// for concurrent use; on the no-op Progress of ProgressFrom outside the
// runtime they do nothing.
type Progress struct {
	mu        sync.Mutex
	live      bool
	id, typ   string
	site      string
	started   time.Time
	changed   time.Time
	counts    map[string]int64
	totals    map[string]int64
	calls     wix.CallCounter
	callsSeen int64
	now       func() time.Time
	rate      float64
	instance  string
}

var noProgress = &Progress{}

type progressKey struct{}

// ProgressFrom returns the progress of the command ctx belongs to; never
// nil (a no-op one outside the runtime).
func ProgressFrom(ctx context.Context) *Progress {
	if p, ok := ctx.Value(progressKey{}).(*Progress); ok {
		return p
	}
	return noProgress
}

// withProgress returns ctx carrying p, its Wix calls counted by p.
func withProgress(ctx context.Context, p *Progress) context.Context {
	return wix.WithCallCounter(context.WithValue(ctx, progressKey{}, p), &p.calls)
}

func (p *Progress) update(m *map[string]int64, key string, f func(old int64) int64) {
	if !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if *m == nil {
		*m = map[string]int64{}
	}
	old, ok := (*m)[key]
	if !ok && len(*m) >= MaxProgressKeys {
		return
	}
	if n := f(old); n != old || !ok {
		(*m)[key] = n
		p.changed = p.now()
	}
}

// Set sets counter key (e.g. ProgressRowsResolved) to n.
func (p *Progress) Set(key string, n int64) {
	p.update(&p.counts, key, func(int64) int64 { return n })
}

// Add adds n to counter key.
func (p *Progress) Add(key string, n int64) {
	p.update(&p.counts, key, func(old int64) int64 { return old + n })
}

// Total announces the expected final value of key, for the ETA
// (ProgressWixCalls: the command's budget in Wix calls).
func (p *Progress) Total(key string, n int64) {
	p.update(&p.totals, key, func(int64) int64 { return n })
}

// ExpectCalls announces that the command needs about n more Wix calls
// after those made so far (its budget by the README's formula, less what is
// done): the ETA is these calls at the site's rate.
func (p *Progress) ExpectCalls(n int64) {
	p.Total(ProgressWixCalls, p.calls.Load()+max(0, n))
}

// ProgressSnapshot is what the admin API and the request/reply subject
// answer for one running command.
type ProgressSnapshot struct {
	CommandID   string    `json:"commandId"`
	CommandType string    `json:"commandType"`
	SiteID      string    `json:"siteId,omitempty"`
	Instance    string    `json:"instance"`
	StartedAt   time.Time `json:"startedAt"`
	// LastProgressAt is when a counter or the Wix call count last changed
	// (calls are noticed when a snapshot is taken).
	LastProgressAt time.Time        `json:"lastProgressAt"`
	Counts         map[string]int64 `json:"counts"`
	Totals         map[string]int64 `json:"totals,omitempty"`
	// WixCalls counts the calls of this attempt (retries included).
	WixCalls int64 `json:"wixCalls"`
	// WixCallsBudget is the command's budget by the README's formula, when
	// the handler announced it; WixCallsRemaining is what is left of it.
	WixCallsBudget    int64 `json:"wixCallsBudget,omitempty"`
	WixCallsRemaining int64 `json:"wixCallsRemaining,omitempty"`
	// RatePerMinute is the site's Wix rate; ETASeconds the remaining calls
	// at that rate (absent without a budget).
	RatePerMinute float64 `json:"ratePerMinute,omitempty"`
	ETASeconds    *int64  `json:"etaSeconds,omitempty"`
}

// Snapshot returns the progress as it is now.
func (p *Progress) Snapshot() ProgressSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	calls := p.calls.Load()
	if calls != p.callsSeen {
		p.callsSeen, p.changed = calls, p.now()
	}
	s := ProgressSnapshot{CommandID: p.id, CommandType: p.typ, SiteID: p.site, Instance: p.instance,
		StartedAt: p.started, LastProgressAt: p.changed, Counts: copyCounts(p.counts), Totals: copyCounts(p.totals),
		WixCalls: calls, RatePerMinute: p.rate}
	if s.Counts == nil {
		s.Counts = map[string]int64{}
	}
	if budget, ok := p.totals[ProgressWixCalls]; ok {
		s.WixCallsBudget = budget
		s.WixCallsRemaining = max(0, budget-calls)
		if p.rate > 0 {
			eta := int64(math.Ceil(float64(s.WixCallsRemaining) / p.rate * 60))
			s.ETASeconds = &eta
		}
	}
	return s
}

func copyCounts(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ProgressRegistry holds the progress of the commands this instance runs.
type ProgressRegistry struct {
	mu       sync.Mutex
	running  map[*Progress]struct{}
	instance string
	rate     func(siteID string) float64
	now      func() time.Time
}

// NewProgressRegistry returns an empty registry; rate gives a site's Wix
// rate in calls a minute (nil: no ETA).
func NewProgressRegistry(instance string, rate func(siteID string) float64) *ProgressRegistry {
	return &ProgressRegistry{running: map[*Progress]struct{}{}, instance: instance, rate: rate, now: time.Now}
}

// Start registers a running command; Finish removes it.
func (r *ProgressRegistry) Start(commandType, id, siteID string) *Progress {
	now := r.now()
	p := &Progress{live: true, id: id, typ: commandType, site: siteID, started: now, changed: now,
		now: r.now, instance: r.instance}
	if r.rate != nil {
		p.rate = r.rate(siteID)
	}
	r.mu.Lock()
	r.running[p] = struct{}{}
	r.mu.Unlock()
	return p
}

// Finish removes p (the command completed, failed or stopped).
func (r *ProgressRegistry) Finish(p *Progress) {
	r.mu.Lock()
	delete(r.running, p)
	r.mu.Unlock()
}

// Lookup returns the snapshots of the running commands with id (of any
// type; "" = every running command), oldest first.
func (r *ProgressRegistry) Lookup(id string) []ProgressSnapshot {
	r.mu.Lock()
	ps := make([]*Progress, 0, len(r.running))
	for p := range r.running {
		if id == "" || p.id == id {
			ps = append(ps, p)
		}
	}
	r.mu.Unlock()
	out := make([]ProgressSnapshot, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}
