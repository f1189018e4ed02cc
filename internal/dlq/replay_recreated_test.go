package dlq_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
)

// TestReplayAfterDLQRecreatedIsNotTakenForADuplicate: the DLQ stream is
// deleted and provisioned again (an operator, a deploy), so its sequences
// start at 1 again. A new dead letter at a sequence replayed shortly before
// from the old stream must not be dropped by the commands stream as a
// duplicate of that replay (and then deleted from the DLQ: lost). Its
// replay is a publish of its own, and the entry leaves the DLQ only then.
func TestReplayAfterDLQRecreatedIsNotTakenForADuplicate(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	store := dlq.NewStore(env.JS, env.Subjects)

	old := deadLetter(t, env, reportEntry(1))
	if res, err := store.Replay(ctx, dlq.Filter{Seqs: []uint64{old}}, dlq.ReplayOptions{}); err != nil || res.Replayed != 1 {
		t.Fatalf("first replay: %+v %v", res, err)
	}
	if err := env.JS.DeleteStream(ctx, env.Subjects.DLQStream()); err != nil {
		t.Fatal(err)
	}
	if err := (broker.Topology{Subjects: env.Subjects}).Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	seq := deadLetter(t, env, reportEntry(2))
	if seq != old {
		t.Fatalf("recreated DLQ stored the new entry at %d, want %d (the case under test)", seq, old)
	}
	res, err := store.Replay(ctx, dlq.Filter{Seqs: []uint64{seq}}, dlq.ReplayOptions{})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay after recreation: %+v %v", res, err)
	}
	cmds := commands(t, env)
	ids := map[string]bool{}
	msgIDs := map[string]bool{}
	for _, m := range cmds {
		ids[m.Header.Get(dlq.HeaderReplayCommandID)] = true
		msgIDs[m.Header.Get(nats.MsgIdHdr)] = true
	}
	if len(cmds) != 2 || !ids["rep-0001"] || !ids["rep-0002"] || len(msgIDs) != 2 {
		left := env.DeadLetters()
		t.Fatalf("commands stream holds %d replays (%v), DLQ %d entries: the new dead letter was taken for a duplicate of the old one's replay and lost",
			len(cmds), ids, len(left))
	}
	if left := env.DeadLetters(); len(left) != 0 {
		t.Fatalf("left in the DLQ: %+v", left)
	}
}
