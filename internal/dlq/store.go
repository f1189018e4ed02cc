package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/messages"
)

// ErrNotFound is returned by Get for a sequence that holds no dead letter.
var ErrNotFound = errors.New("dead letter not found")

// ErrNoSelector is returned by Replay and Purge when the filter selects
// nothing explicitly: they act on every dead letter only with Filter.All.
var ErrNoSelector = errors.New("no selector: give sequences, a command type, a reason, a time or all")

// Filter selects dead letters. Every criterion that is set must match; the
// zero Filter matches every entry in List (but nothing in Replay and Purge,
// which want All or another criterion to say so).
type Filter struct {
	// CommandType keeps entries of this command type (their DLQ subject).
	CommandType string `json:"command,omitempty"`
	// Since keeps entries stored at or after this time.
	Since time.Time `json:"since,omitzero"`
	// ReasonContains keeps entries whose reason contains this text (case-insensitive).
	ReasonContains string `json:"reasonContains,omitempty"`
	// Seqs keeps the entries at these DLQ stream sequences.
	Seqs []uint64 `json:"seqs,omitempty"`
	// All selects every entry (for Replay and Purge).
	All bool `json:"all,omitempty"`
}

// ErrBadCommandType is returned for a Filter whose CommandType is not one
// subject token (empty, or with '.', '*', '>' or white space): it names the
// DLQ subject to read or purge, and a wildcard would select every type.
var ErrBadCommandType = errors.New("command type: want one subject token (no '.', '*', '>' or spaces)")

// MaxSeqs bounds the sequences one Filter names: each costs a read of the
// DLQ per pass over the selection (Replay makes two), and 10,000 is as many
// as one listing shows (MaxListLimit). A larger selection is made by
// command type, reason, time or All.
const MaxSeqs = 10_000

// ErrTooManySeqs is returned for a Filter naming more than MaxSeqs
// sequences.
var ErrTooManySeqs = fmt.Errorf("too many sequences: at most %d (select by command type, reason, time or all instead)", MaxSeqs)

// MaxReasonFilter bounds Filter.ReasonContains: a reason is stored cut to
// maxReason bytes, so a longer text matches no entry the runtime stored.
const MaxReasonFilter = maxReason

// ErrBadReason is returned for a Filter whose ReasonContains is longer than
// MaxReasonFilter.
var ErrBadReason = fmt.Errorf("reason filter: at most %d bytes", MaxReasonFilter)

// Check returns ErrBadCommandType (wrapped) when f's command type is not one
// subject token, ErrBadReason (wrapped) when its reason text is longer than
// MaxReasonFilter, and ErrTooManySeqs (wrapped) when f names more than
// MaxSeqs sequences; Each (so List and Replay) and Purge refuse such a
// filter.
func (f Filter) Check() error {
	if f.CommandType != "" && (len(f.CommandType) > 128 || strings.ContainsAny(f.CommandType, ".*> \t\r\n")) {
		return fmt.Errorf("%.40q: %w", f.CommandType, ErrBadCommandType)
	}
	if len(f.ReasonContains) > MaxReasonFilter {
		return fmt.Errorf("%d bytes given: %w", len(f.ReasonContains), ErrBadReason)
	}
	if len(f.Seqs) > MaxSeqs {
		return fmt.Errorf("%d given: %w", len(f.Seqs), ErrTooManySeqs)
	}
	return nil
}

// selective reports whether f names what to act on.
func (f Filter) selective() bool {
	return f.All || f.CommandType != "" || !f.Since.IsZero() || f.ReasonContains != "" || len(f.Seqs) > 0
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Entry) bool {
	if f.CommandType != "" && e.CommandType != f.CommandType {
		return false
	}
	if !f.Since.IsZero() && e.Stored.Before(f.Since) {
		return false
	}
	if f.ReasonContains != "" && !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(f.ReasonContains)) {
		return false
	}
	if len(f.Seqs) > 0 && !slices.Contains(f.Seqs, e.Seq) {
		return false
	}
	return true
}

// Store reads and manages the dead-letter stream.
type Store struct {
	js       jetstream.JetStream
	subjects messages.Subjects
	// FetchWait bounds the wait for one batch while scanning (default 5s).
	FetchWait time.Duration
}

// NewStore returns a store over the DLQ stream of subjects.
func NewStore(js jetstream.JetStream, subjects messages.Subjects) *Store {
	return &Store{js: js, subjects: subjects, FetchWait: 5 * time.Second}
}

// Subjects returns the subject scheme of the store.
func (s *Store) Subjects() messages.Subjects { return s.subjects }

func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.subjects.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("dlq stream %s: %w", s.subjects.DLQStream(), err)
	}
	return st, nil
}

// Get returns the dead letter at seq, body included.
func (s *Store) Get(ctx context.Context, seq uint64) (*Entry, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, st, seq)
}

func (s *Store) get(ctx context.Context, st jetstream.Stream, seq uint64) (*Entry, error) {
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("dlq seq %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq seq %d: %w", seq, err)
	}
	e := Parse(m.Sequence, m.Time, m.Header, m.Data)
	s.fill(e, st, m.Subject)
	return e, nil
}

// fill completes an entry from its DLQ subject: the subject itself, the
// command type when headers lack it, and whether replay refuses it; and
// from st, the stream incarnation it belongs to (from st's cached info, no
// request: see ReplayMsgID).
func (s *Store) fill(e *Entry, st jetstream.Stream, subject string) {
	if info := st.CachedInfo(); info != nil {
		e.streamCreated = info.Created
	}
	e.Subject = subject
	if e.CommandType == "" {
		if t, ok := s.subjects.DLQTypeOf(subject); ok {
			e.CommandType = t
		}
	}
	delete(e.Headers, "Nats-Msg-Size") // added by headers-only consumers
	if _, err := s.ReplayTarget(e); err != nil {
		e.Refused = err.Error()
	}
}

// Counts returns the number of dead letters of each command type, from the
// stream's per-subject counts: one stream info request (paged by subject),
// no entry read.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.subjects.DLQs()))
	if err != nil {
		return nil, fmt.Errorf("dlq info: %w", err)
	}
	counts := map[string]int{}
	for subject, n := range info.State.Subjects {
		if t, ok := s.subjects.DLQTypeOf(subject); ok {
			counts[t] += int(n)
		}
	}
	return counts, nil
}

// List returns the matching dead letters in stream order, without their
// bodies (Get returns one with its body). It streams the DLQ through an
// ordered, headers-only consumer, but holds every match: for a selection
// that may be large, ListBounded, Count or Each hold a bounded part of it.
func (s *Store) List(ctx context.Context, f Filter) ([]*Entry, error) {
	var out []*Entry
	err := s.Each(ctx, f, false, func(e *Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// ListBounded returns the first matching dead letters in stream order,
// without their bodies: at most limit of them, and at most maxListBytes of
// their text (see Entry.textSize; at least one entry). truncated says more
// match. GET /dlq and groupctl dlq ls answer with it.
func (s *Store) ListBounded(ctx context.Context, f Filter, limit int) (entries []*Entry, truncated bool, err error) {
	if err := f.Check(); err != nil {
		return nil, false, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return nil, false, err
	}
	entries, _, truncated, err = s.page(ctx, st, f, 0, 0, limit)
	return entries, truncated, err
}

// Count returns how many dead letters match f, holding none of them.
func (s *Store) Count(ctx context.Context, f Filter) (int, error) {
	if err := f.Check(); err != nil {
		return 0, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return 0, err
	}
	n, _, err := s.count(ctx, st, f)
	return n, err
}

// count counts the matches of f and returns the last one's sequence.
func (s *Store) count(ctx context.Context, st jetstream.Stream, f Filter) (n int, last uint64, err error) {
	err = s.each(ctx, st, f, 0, false, func(e *Entry) error {
		n, last = n+1, e.Seq
		return nil
	})
	return n, last, err
}

// errPageFull stops the scan of a page.
var errPageFull = errors.New("page full")

// page returns the matching dead letters from sequence from on (0: the
// filter's start), without bodies, up to sequence upTo (0: no bound): at
// most limit entries and maxListBytes of their text (at least one entry),
// in stream order. more says matches remain past the page, up to upTo; the
// next page starts at next.
func (s *Store) page(ctx context.Context, st jetstream.Stream, f Filter, from, upTo uint64, limit int) (entries []*Entry, next uint64, more bool, err error) {
	size := 0
	err = s.each(ctx, st, f, from, false, func(e *Entry) error {
		if upTo > 0 && e.Seq > upTo {
			return errPageFull
		}
		size += e.textSize()
		if len(entries) == limit || (len(entries) > 0 && size > maxListBytes) {
			more = true
			return errPageFull
		}
		entries = append(entries, e)
		next = e.Seq + 1
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return entries, next, more, err
}

// Each calls fn for every matching dead letter in stream order, with bodies
// when withBody is set. An error from fn stops the scan and is returned.
// Entries stored after the scan started are not visited.
func (s *Store) Each(ctx context.Context, f Filter, withBody bool, fn func(*Entry) error) error {
	if err := f.Check(); err != nil {
		return err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	return s.each(ctx, st, f, 0, withBody, fn)
}

// each is Each on st from sequence from on (0: from the filter's start).
func (s *Store) each(ctx context.Context, st jetstream.Stream, f Filter, from uint64, withBody bool, fn func(*Entry) error) error {
	if len(f.Seqs) > 0 {
		seqs := slices.Clone(f.Seqs)
		slices.Sort(seqs)
		seqs = slices.Compact(seqs)
		// Each entry read here is one of the sequences: the rest of the
		// filter decides (Match would look for it among all of them).
		rest := f
		rest.Seqs = nil
		for _, seq := range seqs {
			if seq < from {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := s.get(ctx, st, seq)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !withBody {
				e.Body = nil
			}
			if rest.Match(e) {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	filter := s.subjects.DLQs()
	if f.CommandType != "" {
		filter = s.subjects.DLQ(f.CommandType)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       !withBody,
		InactiveThreshold: 30 * time.Second,
	}
	switch {
	case from > 0:
		// Since, if set, is left to Match.
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	case !f.Since.IsZero():
		since := f.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	return scan(ctx, st, cfg, s.FetchWait, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		e := Parse(md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data())
		s.fill(e, st, m.Subject())
		if !withBody {
			e.Body = nil
		}
		if !f.Match(e) {
			return nil
		}
		return fn(e)
	})
}

// scan reads what an ordered consumer with cfg has pending when it is
// created, in batches, and stops there.
func scan(ctx context.Context, st jetstream.Stream, cfg jetstream.OrderedConsumerConfig, wait time.Duration,
	fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("scan %s: %w", st.CachedInfo().Config.Name, err)
	}
	// A scan stopped early (a page, a bounded listing) would leave its
	// consumer on the server until InactiveThreshold: remove it.
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CallTimeout)
			_ = st.DeleteConsumer(dctx, info.Name)
			cancel()
		}
	}()
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil
	}
	remaining := info.NumPending
	for remaining > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.Fetch(int(min(remaining, 256)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			if err := fn(m, md); err != nil {
				return err
			}
			remaining--
			if md.NumPending == 0 {
				remaining = 0
			}
			if remaining == 0 {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoHeartbeat) {
			return fmt.Errorf("scan: %w", err)
		}
		if got == 0 {
			// Entries deleted meanwhile (a concurrent replay or purge): the
			// pending count was an upper bound.
			return nil
		}
	}
	return nil
}

// Purge deletes the matching dead letters and returns how many it deleted.
// With only All (or only CommandType) it purges the stream up to its last
// message, otherwise it deletes entries one by one.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	if !f.selective() {
		return 0, ErrNoSelector
	}
	if err := f.Check(); err != nil {
		return 0, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return 0, err
	}
	if f.Since.IsZero() && f.ReasonContains == "" && len(f.Seqs) == 0 {
		filter := s.subjects.DLQs()
		if f.CommandType != "" {
			filter = s.subjects.DLQ(f.CommandType)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return 0, fmt.Errorf("dlq info: %w", err)
		}
		n := 0
		for _, c := range info.State.Subjects {
			n += int(c)
		}
		if n == 0 {
			return 0, nil
		}
		// Up to (not including) the sequence after the last message seen, so
		// entries arriving meanwhile are kept.
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(info.State.LastSeq+1)); err != nil {
			return 0, fmt.Errorf("purge dlq: %w", err)
		}
		return n, nil
	}
	// Page by page (see Replay): what is held is bounded whatever the DLQ
	// holds. Entries stored after the stream's state was read are kept.
	last := st.CachedInfo().State.LastSeq
	if last == 0 {
		return 0, nil
	}
	n := 0
	for from := uint64(0); ; {
		page, next, more, err := s.page(ctx, st, f, from, last, pageEntries)
		if err != nil {
			return n, err
		}
		for _, e := range page {
			deleted, err := deleteSeq(ctx, st, e.Seq)
			if err != nil {
				return n, err
			}
			if deleted {
				n++
			}
		}
		if !more {
			return n, nil
		}
		from = next
	}
}

// pageEntries bounds the entries of one page of Replay and Purge (their
// text is bounded by maxListBytes, as GET /dlq's).
const pageEntries = 256

// deleteSeq deletes one entry; it reports false when it was already gone.
func deleteSeq(ctx context.Context, st jetstream.Stream, seq uint64) (bool, error) {
	err := st.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("delete dlq seq %d: %w", seq, err)
}
