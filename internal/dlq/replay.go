package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/oneline"
	"groupflow/messages"
)

// Headers set on a replayed command.
const (
	// HeaderReplayCommandID carries the original command id, which the
	// runtime takes when the body has no "id" (the Nats-Msg-Id cannot be
	// reused: the commands stream would drop the replay as a duplicate
	// within its window).
	HeaderReplayCommandID = messages.HeaderCommandID
	// HeaderReplayOf is the DLQ sequence of the dead letter replayed.
	HeaderReplayOf = messages.HeaderReplayOf
)

// ReplayMsgID is the Nats-Msg-Id of the replay of the dead letter at
// dlqSeq of the DLQ stream created at created (StreamInfo.Created): one per
// dead letter, so replaying the same entry twice within the commands
// stream's duplicate window (an interrupted replay run again, a republish
// whose PubAck was lost) is stored once, while a command that failed again
// and is replayed again from its new entry is a new publish. The creation
// time tells the stream's incarnations apart: a DLQ stream deleted and
// provisioned again numbers its entries from 1 again, and without it the
// replay of a new entry would be dropped as a duplicate of an old entry's
// replay at the same sequence (then deleted from the DLQ: lost).
func ReplayMsgID(dlqStream string, created time.Time, dlqSeq uint64) string {
	var incarnation int64
	if !created.IsZero() {
		incarnation = created.UnixNano()
	}
	return "replay:" + dlqStream + ":" + strconv.FormatInt(incarnation, 10) + ":" + strconv.FormatUint(dlqSeq, 10)
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// DryRun counts what would be replayed and changes nothing.
	DryRun bool
	// Progress, when set, is called after each entry with the number of
	// entries done and the total selected.
	Progress func(done, total int)
}

// ReplayError is a dead letter that could not be replayed (or removed).
type ReplayError struct {
	Seq       uint64 `json:"seq"`
	CommandID string `json:"commandId,omitempty"`
	Error     string `json:"error"`
	// Refused is set when replay refused the entry (see Store.ReplayTarget).
	Refused bool `json:"refused,omitempty"`
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	DryRun bool `json:"dryRun,omitempty"`
	// Selected counts the dead letters the filter selected.
	Selected int `json:"selected"`
	// Replayed counts entries republished and acknowledged (in a dry run:
	// that would be).
	Replayed int `json:"replayed"`
	// Skipped counts entries left alone: gone meanwhile, or refused (see
	// Errors).
	Skipped int `json:"skipped"`
	// Refused counts the skipped entries that replay refused: their DLQ
	// subject does not allow the command their headers name, or they are an
	// event's dead letter (see Store.ReplayTarget). They stay in the DLQ.
	Refused int `json:"refused"`
	// Failed counts entries whose republish failed; they stay in the DLQ.
	Failed int `json:"failed"`
	// Errors says why entries were skipped or failed, or why a replayed
	// entry could not be removed: the first MaxReplayErrors of them (each
	// command id cut to messages.MaxIDLen bytes); ErrorsLeftOut counts the
	// others (the counters above count every entry).
	Errors        []ReplayError `json:"errors,omitempty"`
	ErrorsLeftOut int           `json:"errorsLeftOut,omitempty"`
}

// MaxReplayErrors bounds ReplayResult.Errors: a replay of a DLQ full of
// forged entries refuses each, and its answer stays bounded.
const MaxReplayErrors = 1000

// addError records why entry seq (command id) was skipped or failed.
func (r *ReplayResult) addError(seq uint64, commandID string, refused bool, format string, args ...any) {
	if len(r.Errors) >= MaxReplayErrors {
		r.ErrorsLeftOut++
		return
	}
	r.Errors = append(r.Errors, ReplayError{Seq: seq, CommandID: oneline.Cut(commandID, messages.MaxIDLen),
		Error: fmt.Sprintf(format, args...), Refused: refused})
}

// Replay republishes the matching dead letters to their original subject,
// with their original body and headers (minus the DLQ headers), the original
// command id in HeaderReplayCommandID and Nats-Msg-Id ReplayMsgID. A dead
// letter is deleted only after the commands stream acknowledged its
// republish, so an interrupted replay (cancelled context, killed process)
// loses nothing: each entry is either still in the DLQ or replayed. At worst
// one entry is replayed and not yet deleted; replaying it again is harmless:
// within the duplicate window the stream drops the second publish, after it
// the ledger answers the command from its record (or resumes it from its
// checkpoints), so Wix side effects happen once.
//
// Replay holds a page of entries at a time (at most pageEntries of them,
// and maxListBytes of their text, as GET /dlq), whatever the DLQ holds: it
// counts the selection first (Selected, the total given to Progress), then
// reads and replays it page by page, by sequence, up to the last entry the
// count saw (entries stored meanwhile wait for the next replay). A selected
// entry gone before its page was read (replayed or purged by someone else)
// counts as skipped.
//
// When ctx ends Replay stops and returns the counts so far with ctx's error.
func (s *Store) Replay(ctx context.Context, f Filter, opts ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{DryRun: opts.DryRun}
	if !f.selective() {
		return res, ErrNoSelector
	}
	if err := f.Check(); err != nil {
		return res, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return res, err
	}
	total, last, err := s.count(ctx, st, f)
	if err != nil {
		return res, err
	}
	res.Selected = total
	done := 0
	for from := uint64(0); done < total; {
		page, next, more, err := s.page(ctx, st, f, from, last, pageEntries)
		if err != nil {
			return res, err
		}
		for _, head := range page {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if err := s.replayOne(ctx, st, head, opts.DryRun, &res); err != nil {
				return res, err
			}
			done++
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
		if !more {
			break
		}
		from = next
	}
	if gone := total - done; gone > 0 {
		res.Skipped += gone
		res.addError(0, "", false, "%d selected entries gone from the DLQ before they were read (replayed or purged by someone else)", gone)
		if opts.Progress != nil {
			opts.Progress(total, total)
		}
	}
	return res, nil
}

// replayOne replays one entry; it returns an error only when ctx ended.
func (s *Store) replayOne(ctx context.Context, st jetstream.Stream, head *Entry, dryRun bool, res *ReplayResult) error {
	fail := func(counter *int, e *Entry, format string, args ...any) {
		*counter++
		res.addError(e.Seq, e.CommandID, false, format, args...)
	}
	refuse := func(e *Entry, err error) {
		res.Skipped++
		res.Refused++
		res.addError(e.Seq, e.CommandID, true, "%v", err)
	}
	if _, err := s.ReplayTarget(head); err != nil {
		refuse(head, err)
		return nil
	}
	if dryRun {
		res.Replayed++
		return nil
	}
	e, err := s.get(ctx, st, head.Seq)
	if errors.Is(err, ErrNotFound) {
		fail(&res.Skipped, head, "gone from the DLQ meanwhile (replayed or purged by someone else)")
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fail(&res.Failed, head, "read: %v", err)
		return nil
	}
	subject, err := s.ReplayTarget(e)
	if err != nil {
		// Changed since it was listed (the sequence now holds another entry).
		refuse(e, err)
		return nil
	}
	msg := s.ReplayMsg(e, subject)
	if err := s.republish(ctx, msg); err != nil {
		if ctx.Err() != nil {
			// Maybe stored, maybe not: the entry stays, a later replay is
			// deduplicated or answered from the ledger.
			return ctx.Err()
		}
		fail(&res.Failed, e, "republish to %s: %v", subject, err)
		return nil
	}
	res.Replayed++
	// Acknowledged: remove the entry even if ctx ends now.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := deleteSeq(dctx, st, e.Seq); err != nil {
		res.addError(e.Seq, e.CommandID, false, "replayed, but not removed from the DLQ (replaying it again is harmless): %v", err)
	}
	return nil
}

// republish publishes a replayed command, each wait for its PubAck bounded
// by CallTimeout whatever is left of ctx: a reply lost in a stream
// leader change is retried (ReplayMsgID deduplicates the retry), a few
// times, instead of holding the whole replay until ctx ends.
func (s *Store) republish(ctx context.Context, msg *nats.Msg) error {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, CallTimeout)
		_, err := s.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(s.subjects.CommandStream()))
		cancel()
		if err == nil || !lostReply(err) || ctx.Err() != nil || attempt >= publishAttempts {
			return err
		}
	}
}

// ErrRefused marks a dead letter that replay refuses: its DLQ subject and
// its headers do not agree on a command of the contract.
var ErrRefused = errors.New("replay refused")

// ReplayTarget is the only command subject entry e may be replayed to:
// groups.cmd.<T> for the entry stored on groups.dlq.<T>, T a command type
// of the contract. The DLQ subject decides, since publishing on it is what
// the broker's permissions restrict (the mailer may publish only
// groups.dlq.member_selected); the headers are the publisher's word and
// must agree with it: an original subject or command type naming another
// command (a forged entry) is refused, and so is the dead letter of an
// event (the mailer's, on groups.dlq.member_selected): replaying an event
// would deliver it to every consumer of the events stream, so such entries
// are for inspection and purge only. A refusal wraps ErrRefused.
func (s *Store) ReplayTarget(e *Entry) (string, error) {
	t, ok := s.subjects.DLQTypeOf(e.Subject)
	if !ok {
		return "", fmt.Errorf("%w: DLQ subject %q is not under %q", ErrRefused, e.Subject, s.subjects.DLQs())
	}
	if !messages.IsCommandType(t) {
		if messages.IsEventType(t) {
			return "", fmt.Errorf("%w: dead letter of event %s (not a command): inspect and purge it, it is not replayed", ErrRefused, t)
		}
		return "", fmt.Errorf("%w: %s is not a command type of the contract", ErrRefused, t)
	}
	want := s.subjects.Command(t)
	if e.OriginalSubject != "" && e.OriginalSubject != want {
		return "", fmt.Errorf("%w: stored on %s but its original subject says %q (only %s may be replayed from there)",
			ErrRefused, e.Subject, e.OriginalSubject, want)
	}
	if e.CommandType != "" && e.CommandType != t {
		return "", fmt.Errorf("%w: stored on %s but its command type says %q", ErrRefused, e.Subject, e.CommandType)
	}
	return want, nil
}

// ReplayMsg builds the republished message of entry e (body included). Its
// Nats-Msg-Id is ReplayMsgID of the DLQ stream incarnation e was read from
// (the Store's reads record it; an Entry built otherwise counts as
// incarnation 0).
func (s *Store) ReplayMsg(e *Entry, subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = e.Body
	for k, v := range OriginalHeaders(e.Headers) {
		if k != HeaderHeadersDropped {
			m.Header.Set(k, v)
		}
	}
	if e.CommandID != "" {
		m.Header.Set(HeaderReplayCommandID, e.CommandID)
	}
	m.Header.Set(HeaderReplayOf, strconv.FormatUint(e.Seq, 10))
	m.Header.Set(nats.MsgIdHdr, ReplayMsgID(s.subjects.DLQStream(), e.streamCreated, e.Seq))
	return m
}
