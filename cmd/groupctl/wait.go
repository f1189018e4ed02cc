package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/events"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// progressEvery is how often --wait asks for the command's progress.
const progressEvery = 2 * time.Second

// waiter follows one command's progress for --wait: it notices progress
// (any counter or the Wix call count moving) and shows it, as a bar on a
// terminal, else as a plain line whenever it changes (at most every 10 s,
// and the last state seen once more when the wait ends, if it was not shown).
type waiter struct {
	a        *app
	id       string
	last     string // the key of the last progress polled
	unshown  string // the last plain progress line polled and not printed
	lastAt   time.Time
	printed  time.Time
	drawn    bool // a progress line is on the terminal
	terminal bool
}

// poll asks for the progress and updates the display; it returns whether
// the command progressed since the previous poll.
func (w *waiter) poll(ctx context.Context) bool {
	cl, err := w.a.opsClient()
	if err != nil {
		return false
	}
	ans, err := cl.Progress(ctx, w.id, progressEvery/2)
	if err != nil || len(ans.Commands) == 0 {
		return false
	}
	s := ans.Commands[0]
	now := w.a.now()
	key := fmt.Sprint(s.Counts, s.WixCalls, s.WixCallsBudget)
	moved := key != w.last
	w.last = key
	if w.terminal {
		w.showBar(s)
	} else if moved && now.Sub(w.printed) >= 10*time.Second {
		w.a.errf("progress: %s\n", progressLine(s, now))
		w.printed, w.unshown = now, ""
	} else if moved {
		w.unshown = progressLine(s, now)
	}
	return moved
}

// barWidth is the width of the terminal progress bar, in cells.
const barWidth = 24

// showBar redraws the terminal's progress line: the counters, a bar of
// the Wix calls against the budget (when the handler announced one), ETA.
func (w *waiter) showBar(s runtime.ProgressSnapshot) {
	line := w.id + " " + countsShort(s)
	if f := progressFraction(s); f >= 0 {
		n := int(f * barWidth)
		line += fmt.Sprintf("[%s%s] %d/%d wix calls", strings.Repeat("#", n), strings.Repeat("-", barWidth-n), s.WixCalls, s.WixCallsBudget)
	} else {
		line += fmt.Sprintf("%d wix calls", s.WixCalls)
	}
	if s.ETASeconds != nil {
		line += fmt.Sprintf(" eta %s", time.Duration(*s.ETASeconds)*time.Second)
	}
	fmt.Fprintf(w.a.stderr, "\r\033[K%s", safe(line))
	w.drawn = true
}

func (w *waiter) done() {
	if w.drawn {
		fmt.Fprint(w.a.stderr, "\r\033[K")
		w.drawn = false
	}
	if w.unshown != "" {
		w.a.errf("progress: %s\n", w.unshown)
		w.unshown = ""
	}
}

// countsShort renders the main counters compactly.
func countsShort(s runtime.ProgressSnapshot) string {
	out := ""
	for _, k := range []string{runtime.ProgressRowsResolved, runtime.ProgressRowsAdded, runtime.ProgressPagesRead,
		runtime.ProgressMembersSeen, runtime.ProgressMembersSelected, runtime.ProgressGroupsDone} {
		if n, ok := s.Counts[k]; ok {
			out += fmt.Sprintf("%s=%d ", k, n)
		}
	}
	return out
}

// awaitOutcome waits for the outcome event of command id (type t, whose
// completion event is want) on evts, showing its progress; it gives up
// after o.idle without progress, or after o.timeout in total when set.
func (a *app) awaitOutcome(ctx context.Context, o *sendOpts, evts jetstream.Consumer, id, t, want string) error {
	limit := "no total limit"
	if o.timeout > 0 {
		limit = "at most " + o.timeout.String()
	}
	a.errf("waiting for the outcome of %s (gives up after %s without progress; %s)...\n", id, o.idle, limit)
	wctx, cancel := timeoutCtx(ctx, o.timeout)
	defer cancel()
	w := &waiter{a: a, id: id, terminal: a.terminal(a.stderr), lastAt: a.now()}
	defer w.done()
	nextPoll := a.now()
	for {
		if now := a.now(); !now.Before(nextPoll) {
			if w.poll(wctx) {
				w.lastAt = now
			}
			nextPoll = now.Add(progressEvery)
			if idle := now.Sub(w.lastAt); idle >= o.idle {
				return fmt.Errorf("no progress of %s for %s (--idle-timeout); groupctl status %s tells where it is", id, age(idle), id)
			}
		}
		ev, err := evts.Next(jetstream.FetchMaxWait(time.Second))
		if werr := wctx.Err(); werr != nil {
			if gerr := guardErr(ctx, nil); gerr != nil {
				return gerr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("no outcome for %s within %s (--timeout); groupctl status %s tells where it is", id, o.timeout, id)
		}
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			return fmt.Errorf("follow events: %w", err)
		}
		if ev.Headers().Get(events.HeaderCommandID) != id {
			continue
		}
		et, _ := a.subjects().EventTypeOf(ev.Subject())
		if et != want && et != messages.EvtCommandFailed {
			continue
		}
		at := time.Now()
		if md, err := ev.Metadata(); err == nil {
			at = md.Timestamp
		}
		w.done()
		return a.printOutcome(et, at, ev.Data(), id, t)
	}
}
