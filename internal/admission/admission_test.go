package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// harness admits tickets in goroutines and reports when each starts.
type harness struct {
	t       *testing.T
	f       *Fair
	entered chan struct{}
	started chan *admitted
}

type admitted struct {
	label   string
	release func()
	err     error
}

func newHarness(t *testing.T, o Options) *harness {
	h := &harness{t: t, f: New(o), entered: make(chan struct{}, 1<<16), started: make(chan *admitted, 1<<16)}
	h.f.entered = func() { h.entered <- struct{}{} }
	return h
}

// admit starts Admit for a ticket and returns once it has entered the
// admission (started, queued or at the door).
func (h *harness) admit(ctx context.Context, label string, t Ticket) {
	go func() {
		rel, err := h.f.Admit(ctx, t)
		h.started <- &admitted{label: label, release: rel, err: err}
	}()
	<-h.entered
}

// next returns the next ticket that started (or failed).
func (h *harness) next() *admitted {
	return <-h.started
}

// none checks that no ticket has started.
func (h *harness) none() {
	h.t.Helper()
	select {
	case a := <-h.started:
		h.t.Fatalf("%s started (err %v), want none", a.label, a.err)
	default:
	}
}

// drain returns the n next starts.
func (h *harness) drain(n int) []*admitted {
	out := make([]*admitted, n)
	for i := range out {
		out[i] = h.next()
	}
	return out
}

func (h *harness) stats(want Stats) {
	h.t.Helper()
	got := h.f.Stats()
	got.PeakRunning, got.Bytes = 0, 0
	if got != want {
		h.t.Fatalf("stats %+v, want %+v", got, want)
	}
}

func ticketOf(s string) Ticket { return Ticket{SiteID: s, Bytes: 10} }

func TestRoundRobinOrder(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 1, PerSite: 1})
	h.admit(context.Background(), "x", ticketOf("x"))
	blocker := h.next()
	for _, l := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
		h.admit(context.Background(), l, ticketOf(l[:1]))
	}
	h.none()
	cur := blocker
	var order []string
	for range 6 {
		cur.release()
		cur = h.next()
		order = append(order, cur.label)
	}
	cur.release()
	if got, want := strings.Join(order, " "), "a1 b1 c1 a2 b2 a3"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	h.stats(Stats{})
}

func TestPerSiteBound(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 100, PerSite: 2})
	for i := range 5 {
		h.admit(context.Background(), fmt.Sprint("a", i), ticketOf("a"))
	}
	run := h.drain(2)
	h.none()
	h.stats(Stats{Running: 2, Queued: 3, Sites: 1, Parked: 3})
	run[0].release()
	if a := h.next(); a.label != "a2" {
		t.Fatalf("%s started, want a2 (FIFO within a site)", a.label)
	}
	h.none()
	h.stats(Stats{Running: 2, Queued: 2, Sites: 1, Parked: 2})
	// Another site is not held back by a's bound.
	h.admit(context.Background(), "b0", ticketOf("b"))
	if a := h.next(); a.label != "b0" {
		t.Fatalf("%s started, want b0", a.label)
	}
}

func TestSmallNotStuckBehindLarge(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 100, PerSite: 3, ReservedSmall: 1})
	large := Ticket{SiteID: "a", Bytes: 10, Large: true}
	for i := range 4 {
		h.admit(context.Background(), fmt.Sprint("campaign", i), large)
	}
	h.drain(2) // two campaigns run, the third slot is for small commands
	h.none()
	for i := range 3 {
		h.admit(context.Background(), fmt.Sprint("roster", i), ticketOf("a"))
	}
	if a := h.next(); a.label != "roster0" {
		t.Fatalf("%s started, want roster0 in the reserved slot", a.label)
	}
	h.none()
	h.stats(Stats{Running: 3, Queued: 4, Sites: 1, Parked: 4})
}

func TestSmallTakesFreedSlotBeforeOlderLarge(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 100, PerSite: 2, ReservedSmall: 1})
	large := Ticket{SiteID: "a", Bytes: 10, Large: true}
	h.admit(context.Background(), "campaign0", large)
	c0 := h.next()
	h.admit(context.Background(), "campaign1", large)
	h.admit(context.Background(), "roster0", ticketOf("a"))
	r0 := h.next()
	if r0.label != "roster0" {
		t.Fatalf("%s started, want roster0", r0.label)
	}
	h.admit(context.Background(), "roster1", ticketOf("a"))
	h.none()
	r0.release()
	if a := h.next(); a.label != "roster1" {
		t.Fatalf("%s started, want roster1 (campaign1 may not take the reserved slot)", a.label)
	}
	c0.release()
	if a := h.next(); a.label != "campaign1" {
		t.Fatalf("%s started, want campaign1", a.label)
	}
}

func TestCountBound(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 3, PerSite: 2})
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		h.admit(context.Background(), s, ticketOf(s))
	}
	run := h.drain(3)
	h.none()
	h.stats(Stats{Running: 3, Queued: 2, Sites: 5})
	run[0].release()
	if a := h.next(); a.label != "d" {
		t.Fatalf("%s started, want d", a.label)
	}
	h.none()
	if p := h.f.Stats().PeakRunning; p != 3 {
		t.Fatalf("peak running %d, want 3", p)
	}
}

func TestByteBound(t *testing.T) {
	h := newHarness(t, Options{MaxInFlightBytes: 100})
	h.admit(context.Background(), "a", Ticket{SiteID: "a", Bytes: 60})
	a := h.next()
	h.admit(context.Background(), "b", Ticket{SiteID: "b", Bytes: 60})
	h.admit(context.Background(), "c", Ticket{SiteID: "c", Bytes: 10}) // fits, but no overtaking at the door
	h.none()
	h.stats(Stats{Running: 1, AtDoor: 2, Sites: 1})
	if b := h.f.Stats().Bytes; b != 60 {
		t.Fatalf("bytes %d, want 60", b)
	}
	a.release()
	got := map[string]bool{}
	for _, x := range h.drain(2) {
		got[x.label] = true
		x.release()
	}
	if !got["b"] || !got["c"] {
		t.Fatalf("started %v, want b and c", got)
	}
	// A body over the bound takes the whole bound: it runs alone.
	h.admit(context.Background(), "huge", Ticket{SiteID: "h", Bytes: 1 << 30})
	huge := h.next()
	h.admit(context.Background(), "small", Ticket{SiteID: "s", Bytes: 1})
	h.none()
	huge.release()
	h.next().release()
	h.stats(Stats{})
}

func TestCancellationHoldsAndReleasesNothing(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 2, PerSite: 1, MaxInFlightBytes: 100})
	h.admit(context.Background(), "a", Ticket{SiteID: "a", Bytes: 50})
	a := h.next()
	ctx, cancel := context.WithCancel(context.Background())
	h.admit(ctx, "a-queued", Ticket{SiteID: "a", Bytes: 10})
	h.admit(context.Background(), "b", Ticket{SiteID: "b", Bytes: 30})
	b := h.next()
	ctxDoor, cancelDoor := context.WithCancel(context.Background())
	h.admit(ctxDoor, "door", Ticket{SiteID: "c", Bytes: 20}) // 90 held: waits at the door
	h.admit(context.Background(), "behind", Ticket{SiteID: "d", Bytes: 5})
	h.stats(Stats{Running: 2, Queued: 1, AtDoor: 2, Sites: 2, Parked: 1})

	cancel()
	got := h.next()
	if got.label != "a-queued" || !errors.Is(got.err, context.Canceled) || got.release != nil {
		t.Fatalf("cancelled queued ticket: %s err %v release %v", got.label, got.err, got.release != nil)
	}
	// Its bytes came back: "door" (20) fits now and queues (no slot is
	// free); "behind" (5) still does not fit; nothing running moved.
	h.stats(Stats{Running: 2, Queued: 1, AtDoor: 1, Sites: 3})
	cancelDoor()
	got = h.next()
	if got.label != "door" || !errors.Is(got.err, context.Canceled) {
		t.Fatalf("cancelled ticket: %s err %v", got.label, got.err)
	}
	h.stats(Stats{Running: 2, Queued: 1, Sites: 3})
	h.none()
	b.release()
	if x := h.next(); x.label != "behind" {
		t.Fatalf("%s started, want behind", x.label)
	}
	a.release()
	a.release() // twice: harmless
	h.stats(Stats{Running: 1, Sites: 1})

	// An Admit whose ctx has ended holds nothing and waits for nothing.
	done, stop := context.WithCancel(context.Background())
	stop()
	if rel, err := h.f.Admit(done, ticketOf("z")); err == nil || rel != nil {
		t.Fatalf("Admit on an ended ctx: err %v", err)
	}
	h.stats(Stats{Running: 1, Sites: 1})
}

func TestBusySiteDoesNotDelayOthers(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 10, PerSite: 2})
	var busy []*admitted
	for i := range 2000 {
		h.admit(context.Background(), fmt.Sprint("busy", i), ticketOf("busy"))
	}
	busy = h.drain(2)
	h.none()
	// Others arrive behind the 1,998 queued: each starts at once until the
	// count bound is reached.
	for i := range 8 {
		h.admit(context.Background(), fmt.Sprint("other", i), ticketOf(fmt.Sprint("s", i)))
	}
	others := h.drain(8)
	for i, o := range others {
		if !strings.HasPrefix(o.label, "other") {
			t.Fatalf("start %d is %s, want another site's", i, o.label)
		}
	}
	h.none()
	// More other sites wait for a slot; a slot freed by the busy site goes
	// to them (fewest running first), not to the busy site's backlog.
	for i := 8; i < 12; i++ {
		h.admit(context.Background(), fmt.Sprint("other", i), ticketOf(fmt.Sprint("s", i)))
	}
	busy[0].release()
	busy[1].release()
	for _, o := range h.drain(2) {
		if !strings.HasPrefix(o.label, "other") {
			t.Fatalf("%s started, want another site's before the busy backlog", o.label)
		}
	}
	h.none()
	if r, q := h.f.SiteStats("busy"); r != 0 || q != 1998 {
		t.Fatalf("busy site: %d running %d queued, want 0 and 1998", r, q)
	}
	// With other sites idle, the busy site gets its PerSite again.
	others[0].release()
	others[1].release()
	h.drain(2)
	if r, _ := h.f.SiteStats("busy"); r != 0 {
		t.Fatalf("busy running %d before the waiting other sites ran", r)
	}
	for _, o := range others[2:] {
		o.release()
	}
	for _, b := range h.drain(2) {
		if !strings.HasPrefix(b.label, "busy") {
			t.Fatalf("%s started, want the busy site's", b.label)
		}
	}
	if r, q := h.f.SiteStats("busy"); r != 2 || q != 1996 {
		t.Fatalf("busy site: %d running %d queued, want 2 and 1996", r, q)
	}
}

func TestThousandSitesStartAtOnceBehindBacklog(t *testing.T) {
	h := newHarness(t, Options{PerSite: 2})
	for i := range 2000 {
		h.admit(context.Background(), fmt.Sprint("busy", i), ticketOf("busy"))
	}
	h.drain(2)
	for i := range 999 {
		h.admit(context.Background(), fmt.Sprint("other", i), ticketOf(fmt.Sprint("s", i)))
	}
	h.drain(999)
	h.stats(Stats{Running: 1001, Queued: 1998, Sites: 1000, Parked: 1998})
}

func TestBypass(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 1, Bypass: func(t Ticket) bool { return t.Topic == "all" }})
	h.admit(context.Background(), "a", ticketOf("a"))
	h.next()
	rel, err := h.f.Admit(context.Background(), Ticket{Topic: "all", SiteID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	rel()
	h.stats(Stats{Running: 1, Sites: 1})
}

func TestDefaults(t *testing.T) {
	o := New(Options{PerSite: 1, ReservedSmall: 3}).Options()
	if o.MaxInFlight != DefaultMaxInFlight || o.MaxInFlightBytes != DefaultMaxInFlightBytes || o.ReservedSmall != 0 {
		t.Fatalf("options %+v", o)
	}
	if o := New(Options{}).Options(); o.PerSite != DefaultPerSite || o.ReservedSmall != DefaultReservedSmall {
		t.Fatalf("options %+v", o)
	}
}

// Parked counts the queued tickets that wait for their own site (it runs
// PerSite, or its share of Large ones), not those that wait for a slot.
func TestParked(t *testing.T) {
	h := newHarness(t, Options{MaxInFlight: 4, PerSite: 3, ReservedSmall: 1})
	large := Ticket{SiteID: "a", Bytes: 10, Large: true}
	for i := range 3 {
		h.admit(context.Background(), fmt.Sprint("campaign", i), large)
	}
	run := h.drain(2) // the third is beyond a's Large share
	h.stats(Stats{Running: 2, Queued: 1, Sites: 1, Parked: 1})
	h.admit(context.Background(), "roster0", ticketOf("a"))
	h.drain(1) // the reserved slot
	h.admit(context.Background(), "roster1", ticketOf("a"))
	h.stats(Stats{Running: 3, Queued: 2, Sites: 1, Parked: 2})
	// b's tickets wait for the one slot left or for a free one: one
	// starts, the other waits for a slot, not for b.
	h.admit(context.Background(), "b0", ticketOf("b"))
	h.admit(context.Background(), "b1", ticketOf("b"))
	b0 := h.next()
	h.stats(Stats{Running: 4, Queued: 3, Sites: 2, Parked: 2})
	if p := h.f.Parked(); p != 2 {
		t.Fatalf("Parked() %d, want 2", p)
	}
	// A campaign ends: roster1 and campaign2 could start on a's side, but
	// the slot goes to b1 (b runs fewer), so a's two wait for a slot.
	run[0].release()
	if x := h.next(); x.label != "b1" {
		t.Fatalf("%s started, want b1", x.label)
	}
	h.stats(Stats{Running: 4, Queued: 2, Sites: 2, Parked: 1})
	b0.release()
	h.next()
	h.stats(Stats{Running: 4, Queued: 1, Sites: 2, Parked: 1})
}

// Queue enters tickets in the caller's order and does not block; wait
// then behaves as Admit.
func TestQueueKeepsOrder(t *testing.T) {
	f := New(Options{MaxInFlight: 1, PerSite: 1})
	wait0, now := f.Queue(ticketOf("a"))
	if !now {
		t.Fatal("first ticket not admitted at once")
	}
	rel0, err := wait0(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var waits []func(context.Context) (func(), error)
	for range 5 {
		w, now := f.Queue(ticketOf("a"))
		if now {
			t.Fatal("admitted beyond the bound")
		}
		waits = append(waits, w)
	}
	if st := f.Stats(); st.Queued != 5 || st.Parked != 5 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if rel, err := waits[4](ctx); err == nil || rel != nil {
		t.Fatalf("wait on an ended ctx: %v", err)
	}
	order := make(chan int, 4)
	for i, w := range waits[:4] {
		go func() {
			rel, err := w(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			rel()
		}()
	}
	rel0()
	for want := range 4 {
		if got := <-order; got != want {
			t.Fatalf("ticket %d ran, want %d (queue order)", got, want)
		}
	}
	if st := f.Stats(); st.Queued != 0 || st.Running != 0 || st.Parked != 0 || st.Sites != 0 {
		t.Fatalf("stats %+v after all ran", st)
	}
}
