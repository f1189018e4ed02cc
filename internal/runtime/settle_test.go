package runtime_test

import (
	"context"
	"errors"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// settleEnv runs a Source with SettleInRouter under a router whose
// outermost middleware is Settle, with handler h; acks receives what the
// server is told about each message (+ACK, -NAK, +WPI).
func settleEnv(t *testing.T, ackWait time.Duration, h message.NoPublishHandlerFunc) (*testenv.Env, <-chan string) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	acks := make(chan string, 64)
	sub, err := env.NC.Subscribe("$JS.ACK.>", func(m *nats.Msg) { acks <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	topic := env.Subjects.Command(messages.CmdProvisionGroup)
	cfg := testSourceConfig(env, "settle_test", ackWait, 16, 8)
	cfg.NakDelay = func(int) time.Duration { return 50 * time.Millisecond }
	cfg.SettleInRouter = true
	src := runtime.NewSource(env.JS, cfg, env.Log)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddMiddleware(runtime.Settle)
	router.AddConsumerHandler("settle_test", topic, src, h)
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	t.Cleanup(func() {
		_ = src.Close()
		_ = router.Close()
	})
	return env, acks
}

// With SettleInRouter, Settle acks a message whose handler succeeds and
// naks (with the NakDelay) one whose handler fails, which is redelivered.
func TestSettleAcksAndNaksInTheRouter(t *testing.T) {
	env, acks := settleEnv(t, 30*time.Second, func(m *message.Message) error {
		switch {
		case strings.Contains(string(m.Payload), "fail") && m.Metadata.Get(runtime.MetaDelivery) == "1":
			return errors.New("transient")
		}
		return nil
	})
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-ok"}`)
	if seen := awaitAck(t, acks, "+ACK"); len(seen) > 0 {
		t.Fatalf("before the ack of c-ok: %q", seen)
	}
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-fail"}`)
	awaitAck(t, acks, "-NAK")
	if seen := awaitAck(t, acks, "+ACK"); len(seen) > 0 { // its redelivery, handled
		t.Fatalf("between the nak and the ack of c-fail: %q", seen)
	}
}

// An abandoned message (MetaAbandon) gets no nak under Settle either: the
// server redelivers it after AckWait, as after a crash.
func TestSettleLeavesAbandonedMessageUnacknowledged(t *testing.T) {
	env, acks := settleEnv(t, 500*time.Millisecond, func(m *message.Message) error {
		if m.Metadata.Get(runtime.MetaDelivery) == "1" {
			m.Metadata.Set(runtime.MetaAbandon, "true")
			return errors.New("abandoned")
		}
		return nil
	})
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-abandon"}`)
	if seen := awaitAck(t, acks, "+ACK"); slices.ContainsFunc(seen, func(a string) bool { return strings.HasPrefix(a, "-NAK") }) {
		t.Fatalf("the abandoned delivery was nacked (acks %q)", seen)
	}
}

// While messages are in their handlers, no goroutine of the Source waits
// for them: Settle settles them (a held message costs no stack).
func TestSettleHoldsNoGoroutinePerMessage(t *testing.T) {
	const n = 6
	inside, release := make(chan string, n), make(chan struct{})
	env, acks := settleEnv(t, 30*time.Second, func(m *message.Message) error {
		inside <- m.UUID
		<-release
		return nil
	})
	for i := range n {
		env.Publish(messages.CmdProvisionGroup, `{"id":"c-`+string(rune('a'+i))+`"}`)
	}
	for range n {
		select {
		case <-inside:
		case <-time.After(10 * time.Second):
			t.Fatal("messages did not reach the handler")
		}
	}
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "(*Source).hold") {
		t.Errorf("a Source goroutine holds a message in its handler:\n%s", b.String())
	}
	close(release)
	for range n {
		if seen := awaitAck(t, acks, "+ACK"); slices.ContainsFunc(seen, func(a string) bool { return strings.HasPrefix(a, "-NAK") }) {
			t.Fatalf("nak among %q", seen)
		}
	}
}
