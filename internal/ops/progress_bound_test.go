package ops

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestProgressRepliesBounded: anyone who may subscribe to the progress
// subject sees the request's reply subject and may answer it as often, and
// as large, as it likes. Client.Progress of every command (an empty id)
// gathers answers until its wait ends: it must keep a bounded number of
// replies, none over a bounded size, and say it cut the answers short.
func TestProgressRepliesBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	const flood = 2000
	small, _ := json.Marshal(ProgressReply{Instance: "forger", Commands: []runtime.ProgressSnapshot{{CommandID: "forged", Instance: "forger"}}})
	var fat []runtime.ProgressSnapshot
	for len(fat) < 4000 {
		fat = append(fat, runtime.ProgressSnapshot{CommandID: strings.Repeat("f", 200), Instance: "forger"})
	}
	big, _ := json.Marshal(ProgressReply{Instance: "forger", Commands: fat})
	replies := [][]byte{big, big, big, big, big}
	for range flood {
		replies = append(replies, small)
	}
	ans, held := forgedProgress(t, env, replies)
	if len(ans.Commands) > flood/10 || held > MaxProgressReplies*MaxProgressReplyBytes {
		t.Fatalf("Progress kept %d snapshots (%d bytes of JSON) from %d forged replies", len(ans.Commands), held, flood+5)
	}
	if ans.Truncated == "" {
		t.Fatalf("%d snapshots kept of %d forged replies, and not said to be cut short", len(ans.Commands), flood+5)
	}
}

// TestProgressEmptySnapshotsBounded: a reply under MaxProgressReplyBytes
// may still name tens of thousands of commands ("[{},{},...]": 3 bytes on
// the wire, a whole ProgressSnapshot kept, ~140 bytes again as JSON).
// MaxProgressReplies such replies must not make Progress hold more than
// the bound its doc gives (8 MiB), counted as the snapshots' own JSON.
func TestProgressEmptySnapshotsBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	var b strings.Builder
	b.WriteString(`{"instance":"forger","commands":[{}`)
	for b.Len() < MaxProgressReplyBytes-16 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}`)
	forged := []byte(b.String())
	replies := make([][]byte, MaxProgressReplies)
	for i := range replies {
		replies[i] = forged
	}
	ans, held := forgedProgress(t, env, replies)
	if held > MaxProgressReplies*MaxProgressReplyBytes {
		t.Fatalf("Progress kept %d snapshots (%d bytes of JSON) from %d replies of %d bytes", len(ans.Commands), held, MaxProgressReplies, len(forged))
	}
	if ans.Truncated == "" {
		t.Fatalf("%d snapshots kept, and not said to be cut short", len(ans.Commands))
	}
}

// forgedProgress answers a Client.Progress of every command with replies, in
// order, as a forger on the progress subject would, and returns what
// Progress gathered and how many bytes of JSON its snapshots hold.
func forgedProgress(t *testing.T, env *testenv.Env, replies [][]byte) (ProgressAnswer, int) {
	t.Helper()
	nc := env.Conn()
	subj := messages.Subjects{}
	sub, err := nc.Subscribe(subj.Ops(messages.OpsProgress), func(m *nats.Msg) {
		for _, r := range replies {
			_ = nc.Publish(m.Reply, r)
		}
		_ = nc.Flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cl := &Client{NC: nc, Subjects: subj}
	ans, err := cl.Progress(context.Background(), "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, s := range ans.Commands {
		j, _ := json.Marshal(s)
		held += len(j)
	}
	return ans, held
}
