package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"groupflow/internal/failure"
	"groupflow/internal/kvclock"
	"groupflow/internal/trace"
)

// Claim is what an instance asks for when it takes a command: the command,
// the message it works on (subject, delivery, commands-stream sequence) and
// who it is.
type Claim struct {
	CommandType string
	CommandID   string
	Subject     string
	Delivery    int
	// Seq is the commands-stream sequence of the message: another message
	// with the same command id (a re-send) has another one.
	Seq uint64
	// Owner names the instance; TTL is how long the lease lasts unrenewed.
	Owner string
	TTL   time.Duration
	// After is this process's previous attempt at the same message (an
	// in-process retry), or nil: if nobody wrote the record since, the new
	// lease is Unsure only if that attempt was (see Lease.Acting).
	After *Lease
}

// HeldError says another owner holds a live lease on the command.
type HeldError struct {
	Owner string
	Until time.Time
	// DuplicateCopy: the claim is for another message with the same command
	// id than the one the owner works on (a re-send).
	DuplicateCopy bool
}

func (e *HeldError) Error() string {
	if e.Until.IsZero() {
		return "command is being worked on by " + e.Owner
	}
	return fmt.Sprintf("command is being worked on by %s (lease until %s)", e.Owner, e.Until.UTC().Format(time.RFC3339))
}

// CollisionError says the record under a command's key belongs to another
// command (natsname makes that impossible unless someone wrote the bucket).
type CollisionError struct{ Type, ID string }

func (e *CollisionError) Error() string {
	return fmt.Sprintf("ledger key collision: the record under this command's key is %s %q's", e.Type, e.ID)
}

// ErrLost is returned by a Lease's writes once another owner took the
// command over (the record's revision moved): the holder must stop.
var ErrLost = errors.New("ledger: lease lost: the record was written by another owner")

// ErrUnjudged is returned (wrapping the cause) when a decision rests on
// whether another lease on the record is live and that cannot be told:
// the server's clock could not be read (see Ledger.Live). The caller must
// act as if that lease were live: settle nothing, announce nothing.
var ErrUnjudged = errors.New("ledger: whether another lease on the record is live cannot be told")

// Inline checkpoint limits: a checkpoint up to InlineStepLimit bytes lives in
// the record (one compare-and-set that also extends the lease) while the
// record's inline checkpoints stay under InlineTotalLimit; larger ones get
// a step key of their own, fenced by its revision and the record's.
const (
	InlineStepLimit  = 8 << 10
	InlineTotalLimit = 48 << 10
)

// Acquire takes the command's lease for c.Owner (see the package doc's
// table). It returns the lease, or the completed record to answer from, or
// a *HeldError, a *CollisionError, or a transient error. A fresh command
// costs one write (an atomic create) and no read. A record with another
// owner's lease costs a probe of the server's clock more (one write, one
// read: see Ledger.Live); a failed probe is a transient error.
func (l *Ledger) Acquire(ctx context.Context, c Claim) (*Lease, *Record, error) {
	c.TTL = min(c.TTL, MaxLeaseTerm) // no reader holds a longer term live (Record.Term)
	now := l.now().UTC()
	id := newLeaseID()
	rec := Record{CommandType: c.CommandType, CommandID: c.CommandID, Status: StatusProcessing,
		Subject: c.Subject, Deliveries: c.Delivery, StartedAt: now,
		Owner: c.Owner, LeaseUntil: now.Add(c.TTL), OwnerSeq: c.Seq, LastSeq: c.Seq, LeaseID: id}
	rev, created, err := l.create(ctx, &rec)
	if err != nil {
		return nil, nil, err
	}
	if created {
		c.After = nil
		lease := &Lease{l: l, claim: c, id: id, rev: rev, fresh: true}
		lease.setRecordLocked(rec)
		return lease, nil, nil
	}
	cur, rev, err := l.RecordRev(ctx, c.CommandType, c.CommandID)
	if err != nil {
		return nil, nil, err
	}
	if cur == nil { // deleted in between: try again later
		return nil, nil, &HeldError{Owner: "another instance"}
	}
	if err := l.takeable(ctx, cur, c); err != nil {
		return nil, nil, err
	}
	if cur.Status == StatusCompleted && len(cur.Event) > 0 {
		return nil, cur, nil
	}
	if cur.Status == StatusDeadLettered {
		// A replay starts with a clean failure slate; checkpoints stay.
		cur.Failures, cur.FirstFailure, cur.Reason = 0, time.Time{}, ""
	}
	cur.Status, cur.Subject, cur.Deliveries = StatusProcessing, c.Subject, c.Delivery
	cur.Owner, cur.LeaseUntil, cur.OwnerSeq, cur.LastSeq, cur.LeaseID = c.Owner, now.Add(c.TTL), c.Seq, c.Seq, id
	sure := cur.Sure // the last owner gave the lease up sure (Fail, Release)
	cur.Sure = false
	n, err := l.update(ctx, cur, rev)
	if errors.Is(err, ErrConflict) {
		return nil, nil, &HeldError{Owner: "another instance"}
	}
	if err != nil {
		return nil, nil, err
	}
	unsure := !sure && c.After.unsureSince(rev)
	c.After = nil // not kept: a chain of earlier leases
	lease := &Lease{l: l, claim: c, id: id, rev: n, unsure: unsure}
	lease.setRecordLocked(*cur)
	return lease, nil, nil
}

// takeable checks an existing record against a claim: a foreign record is
// a collision; a live lease of another owner (on the server's clock: see
// Ledger.Live) is held, until (on this instance's clock) as long as the
// server says it has left.
func (l *Ledger) takeable(ctx context.Context, cur *Record, c Claim) error {
	if cur.CommandID != c.CommandID || cur.CommandType != c.CommandType {
		return &CollisionError{Type: cur.CommandType, ID: cur.CommandID}
	}
	if cur.Owner == c.Owner || !cur.mayBeLive() {
		return nil // its own lease (a retry), or none
	}
	left, err := l.newClock().left(ctx, cur)
	if err != nil {
		return err
	}
	if left > 0 {
		return &HeldError{Owner: cur.Owner, Until: l.now().UTC().Add(left), DuplicateCopy: cur.OwnerSeq != 0 && cur.OwnerSeq != c.Seq}
	}
	return nil
}

// Lease is one owner's hold on a command, and the command's checkpoint
// store while it runs. Its writes are compare-and-sets on the record's
// revision: after another owner's write, each returns ErrLost. Safe for
// concurrent use (the renewal runs beside the handler).
type Lease struct {
	l     *Ledger // nil: a detached lease, memory only
	claim Claim
	id    string // Record.LeaseID of this lease
	fresh bool
	// unsure: an earlier attempt may have sent a side effect it left no
	// checkpoint of (Unsure); acting: this attempt has (Acting).
	unsure bool
	acting atomic.Bool

	// until mirrors rec.LeaseUntil (UnixNano; 0: none) so that Until
	// never waits for a write in progress under mu.
	until atomic.Int64

	mu    sync.Mutex
	rec   Record
	rev   uint64
	lost  bool
	calls func() int64
	// spilled holds the checkpoints kept in step keys of their own, with
	// the revision of that key this lease last read or wrote.
	spilled map[string]spilledStep
}

type spilledStep struct {
	rev   uint64
	val   []byte
	parts parts // the step key's part keys at rev
	// maybe is what a write of this lease after rev stored, if it was
	// stored (its reply was lost).
	maybe []byte
}

// Detached returns a lease kept in memory only, for running a handler
// outside the runtime (its checkpoints are lost with it).
func Detached(commandType, commandID string) *Lease {
	return &Lease{claim: Claim{CommandType: commandType, CommandID: commandID}, fresh: true,
		rec: Record{CommandType: commandType, CommandID: commandID, Status: StatusProcessing}}
}

// Fresh reports whether no earlier attempt of the command left a record:
// there are no checkpoints to find.
func (s *Lease) Fresh() bool { return s.fresh }

// Unsure reports whether an earlier attempt of the command may have sent a
// side effect it left no checkpoint of, so the handler must ask Wix (and
// allow for Wix's answers lagging) before repeating it. False for a fresh
// command, for an in-process retry (Claim.After) whose only earlier
// attempts were this process's and marked no Acting, and after such
// attempts gave the lease up (Record.Sure); true otherwise (a redelivery
// after a crash or a lost lease, or after an attempt that acted). Costs nothing: the
// knowledge that saves a checkpoint write is kept in memory, and a crash
// loses it on the safe side.
func (s *Lease) Unsure() bool { return s.unsure }

// Acting marks that this attempt sends a side effect without a checkpoint
// first: a later attempt is Unsure. Memory only, no write; Unacted takes it
// back once the side effect is known not to have happened (Wix refused it).
func (s *Lease) Acting()  { s.acting.Store(true) }
func (s *Lease) Unacted() { s.acting.Store(false) }

// unsureSince is whether a lease taking over the record at revision rev
// after s (this process's previous attempt; nil: none) is Unsure: sure only
// if s wrote the record last (rev is its revision), was sure itself and did
// not act.
func (s *Lease) unsureSince(rev uint64) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	last := s.rev
	s.mu.Unlock()
	return last != rev || s.unsure || s.acting.Load()
}

// Until is when the lease expires unless renewed (or a checkpoint is
// written). It does not wait for a write in progress: during one it
// returns the expiry before it.
func (s *Lease) Until() time.Time {
	n := s.until.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// setRecordLocked makes rec the lease's record; s.mu held (or s not yet shared).
func (s *Lease) setRecordLocked(rec Record) {
	s.rec = rec
	var n int64
	if !rec.LeaseUntil.IsZero() {
		n = rec.LeaseUntil.UnixNano()
	}
	s.until.Store(n)
}

// Record returns a copy of the record as this lease last wrote it.
func (s *Lease) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// CountCalls makes calls (the Wix calls of this attempt) part of the
// command's call count; the count recorded by earlier attempts is added.
func (s *Lease) CountCalls(calls func() int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = calls
}

// Calls returns the Wix calls of the whole command so far: those recorded
// by earlier attempts plus this attempt's (calls after an earlier attempt's
// last write are not counted).
func (s *Lease) Calls() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callsLocked()
}

func (s *Lease) callsLocked() int64 {
	if s.calls == nil {
		return s.rec.Calls
	}
	return s.rec.Calls + s.calls()
}

// Hold makes sure the lease is this owner's for at least half its term
// more, by this process's clock: when less is left (its renewals failed or
// are late: a partition, a long pause) it renews it (one write), which
// fails with ErrLost if another owner took the command over meanwhile. A
// handler calls it right before a side effect it sends without a
// checkpoint (see Acting): the checkpoint was a compare-and-set that
// fenced off a stale owner, and Hold keeps that fence without its write
// while the lease is well kept. A detached lease is always held.
func (s *Lease) Hold(ctx context.Context) error {
	if s.l == nil {
		return nil
	}
	if s.Until().Sub(s.now()) >= s.claim.TTL/2 {
		s.mu.Lock()
		lost := s.lost
		s.mu.Unlock()
		if !lost {
			return nil
		}
		return ErrLost
	}
	return s.Renew(ctx)
}

// Renew extends the lease by its TTL (one write). ErrLost when another
// owner wrote the record.
func (s *Lease) Renew(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(ctx, func(*Record) {})
}

// writeLocked applies fn to a copy of the record, extends the lease, and
// stores it with a compare-and-set; the lease keeps the copy on success.
// The Wix calls so far are folded into the stored count only in the copy:
// the base stays that of the attempt's start.
func (s *Lease) writeLocked(ctx context.Context, fn func(*Record)) error {
	if s.lost {
		return ErrLost
	}
	next := s.rec
	next.Steps = cloneSteps(s.rec.Steps)
	fn(&next)
	if next.Status == StatusProcessing {
		next.LeaseUntil = s.now().Add(s.claim.TTL)
	}
	calls := s.callsLocked()
	stored := next
	stored.Calls = calls
	if s.l != nil {
		n, err := s.l.update(ctx, &stored, s.rev)
		if errors.Is(err, ErrConflict) {
			n, err = s.rewriteLocked(ctx, &stored)
		}
		if err != nil {
			return err
		}
		s.rev = n
	}
	next.UpdatedAt = stored.UpdatedAt
	s.setRecordLocked(next)
	return nil
}

// rewriteLocked stores rec over a record that changed since this lease's
// last known revision, if the record still carries this lease's id: only
// this lease writes it (any other Acquire writes its own), so the change
// was a write of this lease stored with its reply lost (a stream leader
// change), and the lease is still this one's. ErrLost otherwise (another
// lease took the record, or it completed); s.mu held.
func (s *Lease) rewriteLocked(ctx context.Context, rec *Record) (uint64, error) {
	cur, at, err := s.l.RecordRev(ctx, s.claim.CommandType, s.claim.CommandID)
	if err != nil {
		return 0, err
	}
	if cur == nil || s.id == "" || cur.LeaseID != s.id || cur.Status != StatusProcessing {
		s.lost = true
		return 0, ErrLost
	}
	n, err := s.l.update(ctx, rec, at)
	if errors.Is(err, ErrConflict) {
		s.lost = true
		return 0, ErrLost
	}
	return n, err
}

func (s *Lease) now() time.Time {
	if s.l == nil {
		return time.Now().UTC()
	}
	return s.l.now().UTC()
}

func cloneSteps(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Load decodes checkpoint step into v; false when it was never saved. An
// inline checkpoint costs nothing; a spilled one, one read.
func (s *Lease) Load(ctx context.Context, step string, v any) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.spilled[step]
	if ok && sp.maybe == nil {
		return true, json.Unmarshal(sp.val, v)
	}
	if (!s.fresh || ok) && s.l != nil {
		e, val, keys, err := s.l.readValue(ctx, s.stepKey(step))
		if err != nil {
			return false, err
		}
		if e != nil {
			s.spill(step, spilledStep{rev: e.Revision(), val: val, parts: keys})
			return true, json.Unmarshal(val, v)
		}
	}
	b, ok := s.rec.Steps[step]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// Checkpoint saves v as checkpoint step, with the Wix calls so far, and
// extends the lease: one write. A small checkpoint goes inline into the
// record (a compare-and-set on its revision); a large one (or one already
// spilled) into its own step key, written only while the record is still at
// this lease's revision and with a compare-and-set on the key's own
// revision, so a stale owner can never overwrite a newer owner's state.
// ErrLost when another owner wrote either. Each checkpoint is an
// OpenTelemetry span "checkpoint <step>", a child of the command's.
func (s *Lease) Checkpoint(ctx context.Context, step string, v any) (err error) {
	ctx, span := trace.Tracer().Start(ctx, "checkpoint "+step, oteltrace.WithAttributes(
		attribute.String("groupflow.checkpoint", step), trace.AttrCommandID.String(s.claim.CommandID)))
	defer func() {
		if err != nil {
			trace.Fail(span, err)
		}
		span.End()
	}()
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint %s: encode: %w", step, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.spilled[step]; ok || len(b) > InlineStepLimit || s.inlineSize()+len(b) > InlineTotalLimit {
		return s.spillLocked(ctx, step, b)
	}
	return s.writeLocked(ctx, func(r *Record) {
		if r.Steps == nil {
			r.Steps = map[string]json.RawMessage{}
		}
		r.Steps[step] = b
	})
}

func (s *Lease) inlineSize() int {
	n := 0
	for k, v := range s.rec.Steps {
		n += len(k) + len(v)
	}
	return n
}

func (s *Lease) stepKey(step string) string {
	return Key("cmd", s.claim.CommandType, s.claim.CommandID, "step") + "." + KeyPart(step)
}

func (s *Lease) spill(step string, sp spilledStep) {
	if s.spilled == nil {
		s.spilled = map[string]spilledStep{}
	}
	s.spilled[step] = sp
}

func (s *Lease) spillLocked(ctx context.Context, step string, b []byte) error {
	if s.lost {
		return ErrLost
	}
	if s.l == nil {
		s.spill(step, spilledStep{val: b})
		return nil
	}
	// The record first: a newer owner's acquire moved its revision (a
	// move with this lease's id still in it is a write of this lease
	// stored with its reply lost; see rewriteLocked).
	if cur, rev, err := s.l.RecordRev(ctx, s.claim.CommandType, s.claim.CommandID); err != nil {
		return err
	} else if rev != s.rev && (cur == nil || s.id == "" || cur.LeaseID != s.id || cur.Status != StatusProcessing) {
		s.lost = true
		return ErrLost
	}
	prev, known := s.spilled[step]
	// garbage: part keys no value names once this write is stored.
	var garbage parts
	if !known && !s.fresh || prev.maybe != nil {
		// Not read by this lease, or its last write may be stored (a lost
		// reply): read it, so the revision is known.
		e, err := s.l.getEntry(ctx, s.stepKey(step))
		if err != nil {
			return err
		}
		mine := prev.maybe != nil && e != nil && bytes.Equal(e.Value(), prev.maybe)
		switch {
		case mine && e.Revision() > prev.rev:
			// The lost-reply write replaced the value at prev.rev.
			garbage = prev.parts
		case prev.maybe != nil && !mine:
			// Not stored yet, which is not never: a write answered with a
			// timeout may still land (queued, buffered across a
			// reconnect). Its parts go once this write, made on the same
			// revision, is stored: then it never can be.
			garbage = partKeys(s.stepKey(step), prev.maybe)
		}
		switch {
		case e != nil && (!known || mine):
			prev, known = spilledStep{rev: e.Revision(), parts: partKeys(s.stepKey(step), e.Value())}, true
		case prev.rev == 0:
			known = false // none yet (a create), or another's: the create is refused
		}
	}
	n, keys, val, err := s.l.writeValue(ctx, s.stepKey(step), b, prev.rev, known, append(slices.Clone(prev.parts), garbage...))
	if errors.Is(err, ErrConflict) {
		s.lost = true
		return ErrLost
	}
	if err != nil {
		if val != nil {
			prev.maybe = val // stored or not: the next write (or Load) looks
			s.spill(step, prev)
		}
		return err
	}
	s.spill(step, spilledStep{rev: n, val: b, parts: keys})
	delete(s.rec.Steps, step) // an older inline copy goes with the next record write
	return nil
}

// Outcome is a completed command's event, kept in its record.
type Outcome struct {
	EventType string
	EventID   string
	Event     json.RawMessage
}

// Completed returns the record Complete(o) would write (for sizing it).
func (s *Lease) Completed(o Outcome) Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	complete(&r, o)
	r.Calls = s.callsLocked()
	return r
}

func complete(r *Record, o Outcome) {
	r.Status = StatusCompleted
	r.Owner, r.LeaseUntil, r.OwnerSeq, r.LeaseID = "", time.Time{}, 0, ""
	r.EventType, r.EventID, r.Event = o.EventType, o.EventID, o.Event
	r.Reason, r.Sure = "", false
	r.Steps = nil // a completed command is answered from its event
}

// Complete records the outcome and gives up the lease (one write); the
// record then answers every later copy of the command. ErrLost when
// another owner wrote the record: that owner completes it.
func (s *Lease) Complete(ctx context.Context, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(ctx, func(r *Record) { complete(r, o) })
}

// Prune deletes, once Complete has stored the outcome, the step keys this
// lease read or wrote and their parts: nothing reads a completed command's
// checkpoints. A delete each (parts: a purge each), best effort; the runtime
// calls it after the event is published, so it never delays the event.
// Step keys of an earlier owner that this lease never read are left.
func (s *Lease) Prune(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.Status != StatusCompleted || s.l == nil { // Complete stored the outcome
		return
	}
	for step, sp := range s.spilled {
		s.l.drop(ctx, s.stepKey(step), sp.rev, sp.parts)
	}
	s.spilled = nil
}

// Fail records a failed attempt of the lease's command, counting this
// attempt's Wix calls, and gives the lease up if the record is still this
// lease's (see Lease.mine). Once another message acquired the command (a
// re-sent copy, in this instance or another) nothing is counted: this
// lease may only lower Record.Sure.
func (s *Lease) Fail(ctx context.Context, f Failure) (*Record, error) {
	s.mu.Lock()
	f.Calls, f.Sure, f.Seq = s.callsLocked(), s.sureLocked(), s.claim.Seq
	rev := s.rev
	s.lost = true // the lease is given up: no more writes through it
	s.mu.Unlock()
	if s.l == nil {
		return nil, nil
	}
	return s.l.fail(ctx, s.claim.CommandType, s.claim.CommandID, f, func(r *Record, at uint64) bool { return s.mine(r, at, rev) })
}

// mine is whether record r, at revision at, still holds this lease: this
// lease wrote it last (rev), or it carries this lease's id (a write of this
// lease was stored but its reply lost, so rev is behind). Any later lease —
// a redelivery of the same message or another copy, in this instance or
// another — has another id, so a late Fail or Release never frees it.
func (s *Lease) mine(r *Record, at, rev uint64) bool {
	return at == rev || s.id != "" && r.LeaseID == s.id
}

// ID is the lease's id (Record.LeaseID; "" for a detached lease).
func (s *Lease) ID() string { return s.id }

// newLeaseID returns a random lease id (Record.LeaseID).
func newLeaseID() string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sureLocked is whether no attempt up to this one may have sent a side
// effect it left no checkpoint of (what Record.Sure keeps); s.mu held.
func (s *Lease) sureLocked() bool { return !s.unsure && !s.acting.Load() }

// Release gives up the lease without counting a failure (a shutdown),
// keeping this attempt's Wix calls, while the record is still this lease's
// (see Lease.mine); otherwise it writes nothing.
func (s *Lease) Release(ctx context.Context) error {
	s.mu.Lock()
	calls, sure := s.callsLocked(), s.sureLocked()
	s.lost = true
	rev := s.rev
	s.mu.Unlock()
	if s.l == nil {
		return nil
	}
	_, err := s.l.modify(ctx, s.claim.CommandType, s.claim.CommandID, func(r *Record, at uint64) bool {
		if !s.mine(r, at, rev) || r.Status != StatusProcessing {
			return false // another message acquired it since: not ours to give up
		}
		r.Owner, r.LeaseUntil, r.OwnerSeq, r.LeaseID = "", time.Time{}, 0, ""
		r.Calls = max(r.Calls, calls)
		r.Sure = sure
		return true
	})
	return err
}

// Failure describes a failed attempt.
type Failure struct {
	Err      string
	Delivery int
	At       time.Time
	// Calls is the command's Wix call count so far (kept if larger).
	Calls int64
	// Sure: the owner's attempts sent no side effect they left no
	// checkpoint of (Record.Sure; set by Lease.Fail).
	Sure bool
	// Seq is the commands-stream sequence of the failed message (0:
	// unknown).
	Seq uint64
}

// Fail records a failed attempt of message f.Seq that never acquired the
// command (refused before it was acquired, e.g. invalid), creating the
// record when there is none. It gives up no lease, and leaves as they are
// a completed or foreign record and one that another message holds (see
// heldByAnother: an invalid or forged copy's failure is not the command's).
// It returns the record (as written, or as found; when the server's clock
// could not be read, as found, with the error).
func (l *Ledger) Fail(ctx context.Context, commandType, commandID string, f Failure) (*Record, error) {
	return l.fail(ctx, commandType, commandID, f, nil)
}

// fail counts a failure of message f.Seq; mine (nil: the message never
// acquired the command) says whether the record at a revision is still the
// failing attempt's lease, which is then given up.
func (l *Ledger) fail(ctx context.Context, commandType, commandID string, f Failure, mine func(*Record, uint64) bool) (*Record, error) {
	clock := l.newClock()
	var cerr error
	rec, err := l.modify(ctx, commandType, commandID, func(r *Record, rev uint64) bool {
		if r.CommandID != commandID || r.CommandType != commandType || r.Status == StatusCompleted {
			return false
		}
		held := mine != nil && mine(r, rev)
		live := false
		if !held {
			if live, cerr = clock.live(ctx, r); cerr != nil {
				return false
			}
		}
		if !held && (live || r.heldByAnother(f.Seq, live)) {
			// Another lease's record (a live one never has Sure set): a
			// write would cut it off, and this failure is not its.
			if mine == nil || f.Sure || !r.Sure || live {
				return false
			}
			r.Sure = false // a stale lease may have acted: the next attempt must know
			r.spent = true
			return true
		}
		if r.Status == "" {
			r.Status = StatusProcessing
		}
		if r.LastSeq == 0 { // created, or naming no message: this one's (it may be valid and come back)
			r.LastSeq = f.Seq
		}
		if r.FirstFailure.IsZero() {
			r.FirstFailure = f.At
		}
		r.LastFailure, r.LastError, r.Deliveries = f.At, f.Err, f.Delivery
		r.Failures++
		r.Calls = max(r.Calls, f.Calls)
		switch {
		case held:
			r.Owner, r.LeaseUntil, r.OwnerSeq, r.LeaseID = "", time.Time{}, 0, ""
			r.Sure = f.Sure
		case !f.Sure:
			r.Sure = false // a stale owner's attempts may have acted
		}
		r.spent = !held // an expired lease's owner is kept: its term is spent
		return true
	})
	if cerr != nil {
		// The record as read, unwritten, with the probe's error: the
		// caller must still see whose lease is on it (Ledger.Live says
		// it cannot tell), not take a failed probe for no record at all
		// (nobody's: a dead letter of a message another delivery holds).
		return rec, cerr
	}
	return rec, err
}

// Holder names the message a failure or dead letter is of: its
// commands-stream sequence (0: unknown) and, if it held one, its lease's id.
type Holder struct {
	Seq     uint64
	LeaseID string
}

// DeadLetter marks the command dead-lettered with reason: message by was
// dead-lettered, and its dead letter is stored. A completed or foreign
// record, one that another message holds (see heldByAnother), and one whose
// live lease is another lease than by's (another delivery of the same
// message) are left as they are. It returns the record as written or
// found: a record of this command whose status is not StatusDeadLettered
// says the command did not fail (it completed, or another copy of it is in
// progress); only message by did. When another lease than by's is on the
// record and the server's clock cannot be read, it writes nothing and
// returns an error wrapping ErrUnjudged.
func (l *Ledger) DeadLetter(ctx context.Context, commandType, commandID string, by Holder, reason string) (*Record, error) {
	clock := l.newClock()
	var cerr error
	rec, err := l.modify(ctx, commandType, commandID, func(r *Record, _ uint64) bool {
		if r.CommandID != commandID || r.CommandType != commandType || r.Status == StatusCompleted {
			return false
		}
		if r.heldByAnother(by.Seq, false) {
			// Another message acquired it last: no clock needed, and none
			// probed (a failed probe must not make the caller announce a
			// command another copy runs).
			return false
		}
		// The lease on the record is by's own: whether it is live decides
		// nothing below, so the clock is not probed (a failed probe must
		// not leave by's own dead letter unjudged).
		own := by.LeaseID != "" && r.LeaseID == by.LeaseID && r.OwnerSeq == by.Seq
		var live bool
		if !own {
			if live, cerr = clock.live(ctx, r); cerr != nil {
				return false
			}
		}
		if r.heldByAnother(by.Seq, live) {
			return false
		}
		if by.LeaseID != "" && live && r.LeaseID != by.LeaseID {
			return false
		}
		r.Status, r.Reason = StatusDeadLettered, reason
		r.Owner, r.LeaseUntil, r.OwnerSeq, r.LeaseID = "", time.Time{}, 0, ""
		return true
	})
	if cerr != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnjudged, cerr)
	}
	return rec, err
}

// heldByAnother reports whether the command is in progress on behalf of
// another message than seq: a live lease (live: see Ledger.Live) of
// another message, or (lease given up, awaiting its redelivery) another
// message acquired it last. A record of a command never acquired, or
// dead-lettered, is nobody's.
func (r *Record) heldByAnother(seq uint64, live bool) bool {
	if r.Status != StatusProcessing {
		return false
	}
	return live && r.OwnerSeq != seq || seq != 0 && r.LastSeq != 0 && r.LastSeq != seq
}

// HeldByAnotherDelivery reports whether another lease than by's holds the
// record live (Ledger.Live) on behalf of by's own message (a redelivery of
// it, taken after by's lease expired): that delivery settles the message,
// so by's must neither acknowledge it nor dead-letter it (acks are by
// stream sequence: by's ack would settle the message the other works on).
// It probes the server's clock only when another lease of by's message is
// on the record; an error (a failed probe) says nothing either way.
func (l *Ledger) HeldByAnotherDelivery(ctx context.Context, r *Record, by Holder) (bool, error) {
	if r == nil || by.Seq == 0 || r.OwnerSeq != by.Seq || r.LeaseID == by.LeaseID {
		return false, nil
	}
	return l.Live(ctx, r)
}

// Term is the length of the record's lease as its owner wrote it,
// LeaseUntil minus UpdatedAt, both read from the owner's clock in the same
// write (see Record.LeaseUntil): free of clock skew. Zero or less when
// there is no lease, or its term is spent; at most MaxLeaseTerm, whatever
// the record says.
func (r *Record) Term() time.Duration {
	if r.LeaseUntil.IsZero() || r.UpdatedAt.IsZero() {
		return 0
	}
	return min(r.LeaseUntil.Sub(r.UpdatedAt), MaxLeaseTerm)
}

// MaxLeaseTerm bounds a lease's term (Record.Term), as every reader judges
// it, and the TTL Acquire leases for (a longer Claim.TTL is cut to it): a
// record claiming a longer one (forged by anyone who may write the bucket,
// or corrupted: LeaseUntil years past UpdatedAt) held the command that long
// — each delivery given back for the whole term, never failed nor
// dead-lettered. A lease lasts AckWait (30s by default), renewed while its
// owner works.
const MaxLeaseTerm = 24 * time.Hour

// mayBeLive is whether the record holds a lease that may be live, on any
// clock: an owner, a term left, and the server's time of the revision.
func (r *Record) mayBeLive() bool {
	return r.Status == StatusProcessing && r.Owner != "" && r.Term() > 0 && !r.Stored.IsZero()
}

// Live reports whether an owner holds the record's lease, as read by
// RecordRev, on the server's clock: the lease runs for Term from the
// server's time of the record's revision (Record.Stored), and the server's
// now is probed (ServerNow: one write and one read) only when the record
// holds a lease that may be live, so a record without one costs nothing.
// Neither the owner's clock nor this instance's is compared with the
// other's or the server's. A failed probe is an error (transient: the
// caller retries), never "not live". A record not read by RecordRev (one
// this instance wrote since, Stored zero) holds no live lease of another:
// the writes outside a lease give up or spend the lease they find.
func (l *Ledger) Live(ctx context.Context, r *Record) (bool, error) {
	left, err := l.LeaseLeft(ctx, r)
	return left > 0, err
}

// LeaseLeft is how long the record's lease has left on the server's clock
// (see Live); zero or less when it is not live.
func (l *Ledger) LeaseLeft(ctx context.Context, r *Record) (time.Duration, error) {
	return l.newClock().left(ctx, r)
}

// ClockKey is the key ServerNow writes in the ledger bucket: one for all
// instances, overwritten by every probe (the bucket keeps History 1). No
// command's key can be it: those are natsname tokens joined by dots, and
// no token holds a '/'.
const ClockKey = "clock/server"

// ServerNow is the server's current time, as the ledger bucket's stream
// stamps entries (kvclock.ServerNow on ClockKey: one write, one read).
func (l *Ledger) ServerNow(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return kvclock.ServerNow(ctx, l.kv, ClockKey, "ledger")
}

// serverClock is the server's clock for one operation: probed once, on
// first need, then moved on by this instance's clock (an elapsed time on
// one clock: no skew).
type serverClock struct {
	l            *Ledger
	server, mine time.Time // the probe's server time, and this clock's then
	probed       bool
}

func (l *Ledger) newClock() *serverClock { return &serverClock{l: l} }

// left is how long r's lease has left on the server's clock (<= 0: not live).
func (c *serverClock) left(ctx context.Context, r *Record) (time.Duration, error) {
	if r == nil || !r.mayBeLive() {
		return 0, nil
	}
	if !c.probed {
		now, err := c.l.ServerNow(ctx)
		if err != nil {
			return 0, err
		}
		c.server, c.mine, c.probed = now, c.l.now(), true
	}
	now := c.server.Add(max(c.l.now().Sub(c.mine), 0))
	return r.Term() - kvclock.Age(now, r.Stored), nil
}

func (c *serverClock) live(ctx context.Context, r *Record) (bool, error) {
	left, err := c.left(ctx, r)
	return left > 0, err
}

// modifyAttempts bounds the read/compare-and-set rounds of modify.
const modifyAttempts = 8

// modify applies fn to the command's record (a new one when there is none)
// at its revision (0: none) and stores it with a compare-and-set, reading
// again after a concurrent write. fn returns false to leave the record
// unwritten (modify returns it as read).
func (l *Ledger) modify(ctx context.Context, commandType, commandID string, fn func(r *Record, rev uint64) bool) (*Record, error) {
	for range modifyAttempts {
		rec, rev, err := l.RecordRev(ctx, commandType, commandID)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			rec = &Record{CommandType: commandType, CommandID: commandID, StartedAt: l.now().UTC()}
		}
		if !fn(rec, rev) {
			return rec, nil
		}
		if rev == 0 {
			if _, created, err := l.create(ctx, rec); err != nil || created {
				rec.Stored = time.Time{}
				return rec, err
			}
			continue
		}
		if _, err := l.update(ctx, rec, rev); !errors.Is(err, ErrConflict) {
			rec.Stored = time.Time{}
			return rec, err
		}
	}
	return nil, fmt.Errorf("ledger: record of %s %s: %w (%d attempts)", commandType, commandID, ErrConflict, modifyAttempts)
}

// getEntry reads key; nil when it does not exist.
func (l *Ledger) getEntry(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger get %s: %w", key, err)
	}
	return e, nil
}

// put stores b at key, whatever is there.
func (l *Ledger) put(ctx context.Context, key string, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if _, err := l.kv.Put(ctx, key, b); err != nil {
		return writeError(key, b, err)
	}
	return nil
}

// writeError wraps a failed write of b at key; a value over the broker's
// max payload is permanent (no retry can make it fit).
func writeError(key string, b []byte, err error) error {
	err = fmt.Errorf("ledger write %s (%d bytes): %w", key, len(b), err)
	if errors.Is(err, nats.ErrMaxPayload) {
		return failure.Permanent(err)
	}
	return err
}

// putRev stores b at key if it is still at revision rev (exists) or does
// not exist yet (!exists); ErrConflict otherwise.
func (l *Ledger) putRev(ctx context.Context, key string, b []byte, rev uint64, exists bool) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var n uint64
	var err error
	if exists {
		n, err = l.kv.Update(ctx, key, b, rev)
	} else {
		n, err = l.kv.Create(ctx, key, b)
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, writeError(key, b, err)
	}
	return n, nil
}
