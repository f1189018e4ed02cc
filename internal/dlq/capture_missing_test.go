package dlq_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestAdvisoriesOfMissingMessagesDoNotStallTheCapture: an advisory naming
// a commands-stream sequence that holds no message (a forger's: the
// server's advisories name a message it just gave up delivering) is given
// up at once, not retried for seconds in one of the capture's few slots —
// else a trickle of them (8 per ten seconds) would keep every slot busy and
// the genuine advisories behind them would wait, then be dropped.
func TestAdvisoriesOfMissingMessagesDoNotStallTheCapture(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	ack := env.Publish(messages.CmdGenerateReport, `{"id":"report-behind-missing"}`)
	_, announced := startRecordingCapture(t, ctx, env, env.JS, zaptest.NewLogger(t), nil)
	for i := range uint64(24) {
		advise(t, env, 1<<40+i)
	}
	advise(t, env, ack.Sequence)
	awaitCond(t, 5*time.Second, "the genuine advisory waited behind advisories of missing messages", func() bool {
		a := announced.list()
		return len(a) == 1 && a[0].OriginalSeq == ack.Sequence
	})
}
