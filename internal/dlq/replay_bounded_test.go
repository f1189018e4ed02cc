package dlq_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// forgeFatEntries stores n replayable dead letters whose field errors
// header holds ~57 KiB of "{}": each one parses to ~19,000 FieldErrors, a
// megabyte or so once held. Anyone who may publish on a DLQ subject can
// store them.
func forgeFatEntries(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	fields := "[" + strings.Repeat("{},", 19_000) + "{}]"
	for range n {
		m := nats.NewMsg(env.Subjects.DLQ(messages.CmdGenerateReport))
		m.Header.Set(messages.HeaderDLQReason, "forged")
		m.Header.Set(messages.HeaderDLQCommandID, "fat")
		m.Header.Set(messages.HeaderDLQFields, fields)
		m.Data = []byte(`{}`)
		if _, err := env.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestReplayAllHoldsAPageAtATime: a replay of every dead letter does not
// read the whole DLQ (up to 512 MiB, each entry's headers up to 64 KiB, and
// a forged one parses to far more) into memory before its first republish:
// it works through pages bounded by entries and by text (the budget of GET
// /dlq), and its counts still cover every entry.
func TestReplayAllHoldsAPageAtATime(t *testing.T) {
	defer dlq.SetMaxListBytes(256 << 10)()
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	const n = 100
	forgeFatEntries(t, env, n)

	base := liveHeap()
	var grown uint64
	res, err := store.Replay(context.Background(), dlq.Filter{All: true}, dlq.ReplayOptions{DryRun: true, Progress: func(done, total int) {
		if done == 1 {
			if h := liveHeap(); h > base {
				grown = h - base
			}
		}
	}})
	if err != nil || res.Selected != n || res.Replayed != n {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if grown > 24<<20 {
		t.Fatalf("at its first entry the replay of %d forged dead letters held %d MiB more", n, grown>>20)
	}
	t.Logf("heap grown by %d KiB at the first entry", grown>>10)
}

// TestReplayErrorsBounded: a replay of a DLQ full of refused entries (an
// event's dead letters, forged ones) lists the first MaxReplayErrors of
// them and counts the rest; its counters cover every entry.
func TestReplayErrorsBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	const n = dlq.MaxReplayErrors + 5
	for range n {
		m := nats.NewMsg(env.Subjects.DLQ(messages.EvtMemberSelected))
		m.Header.Set(messages.HeaderDLQReason, "smtp: 550")
		m.Header.Set(messages.HeaderDLQCommandID, strings.Repeat("x", 4000))
		m.Data = []byte(`{}`)
		if _, err := env.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	res, err := store.Replay(context.Background(), dlq.Filter{All: true}, dlq.ReplayOptions{})
	if err != nil || res.Selected != n || res.Refused != n || res.Skipped != n || res.Replayed != 0 {
		t.Fatalf("replay: %v selected %d refused %d skipped %d replayed %d", err, res.Selected, res.Refused, res.Skipped, res.Replayed)
	}
	if len(res.Errors) != dlq.MaxReplayErrors || res.ErrorsLeftOut != n-dlq.MaxReplayErrors {
		t.Fatalf("%d errors listed, %d left out; want %d and %d", len(res.Errors), res.ErrorsLeftOut, dlq.MaxReplayErrors, n-dlq.MaxReplayErrors)
	}
	if id := res.Errors[0].CommandID; len(id) > messages.MaxIDLen || !res.Errors[0].Refused {
		t.Fatalf("error %+v (command id of %d bytes)", res.Errors[0], len(id))
	}
}
