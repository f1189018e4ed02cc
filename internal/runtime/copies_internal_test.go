package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"groupflow/messages"
)

// TestActiveCopyBusy: another delivery of a command in work here waits in
// memory until the first copy holds the lease or is done; a second copy is
// acknowledged as a duplicate only once the first holds the lease; the
// same message, a first copy that failed to acquire, and a cancelled wait
// are given back (not duplicates).
func TestActiveCopyBusy(t *testing.T) {
	answer := func(a *activeCopy, ctx context.Context, seq uint64) <-chan *leaseHeldError {
		out := make(chan *leaseHeldError, 1)
		go func() {
			var held *leaseHeldError
			if !errors.As(a.busy(ctx, seq), &held) {
				t.Error("busy returned no leaseHeldError")
			}
			out <- held
		}()
		return out
	}
	ctx := context.Background()

	a := newActiveCopy(7)
	second, same := answer(a, ctx, 8), answer(a, ctx, 7)
	select {
	case <-second:
		t.Fatal("a second copy answered before the first held the lease or ended")
	case <-same:
		t.Fatal("a redelivery of the same message answered before the first ended")
	default:
	}
	close(a.acquired)
	if held := <-second; !held.duplicateCopy {
		t.Error("a second copy was not acknowledged once the first held the lease")
	}
	close(a.done)
	if held := <-same; held.duplicateCopy {
		t.Error("a redelivery of the same message was taken for a second copy")
	}

	b := newActiveCopy(7)
	close(b.done) // failed before acquiring
	if held := <-answer(b, ctx, 8); held.duplicateCopy {
		t.Error("a second copy acknowledged though the first never held the lease")
	}

	c := newActiveCopy(7)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if held := <-answer(c, cctx, 8); held.duplicateCopy {
		t.Error("a cancelled wait acknowledged a second copy")
	}
}

// TestCatchAllOfKnownType: only the catch-all consumer's copy of a known
// command type is kept from the command's ledger record and the DLQ; its
// unknown types, and every typed consumer's messages, are not.
func TestCatchAllOfKnownType(t *testing.T) {
	r := &Runtime{cfg: Config{Subjects: messages.Subjects{}}}
	s := r.cfg.Subjects
	for _, c := range []struct {
		topic, subject string
		want           bool
	}{
		{s.Commands(), s.Command(messages.CmdProvisionGroup), true},
		{s.Commands(), s.Commands()[:len(s.Commands())-1] + "no_such_command", false},
		{s.Command(messages.CmdProvisionGroup), s.Command(messages.CmdProvisionGroup), false},
	} {
		msg := message.NewMessage("m", nil)
		msg.Metadata.Set(MetaTopic, c.topic)
		msg.Metadata.Set(MetaSubject, c.subject)
		if got := r.catchAllOfKnownType(msg); got != c.want {
			t.Errorf("topic %s, subject %s: %v, want %v", c.topic, c.subject, got, c.want)
		}
	}
}
