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

// A panic between Settle and the handler's own recoverer (groupflow's router
// has its metrics, correlation, tracing, dead-lettering, retry and timeout
// middleware there) is recovered by Watermill's router, which only nacks the
// Watermill message. Settle naks the delivery on the panic's way out: it is
// redelivered, and its slot, admission and held count are given back, so
// Close returns. Without SettleInRouter the Source hears Watermill's Nack
// itself (the control).
func TestSettleNaksWhenAMiddlewarePanics(t *testing.T) {
	for _, inRouter := range []bool{false, true} {
		name := map[bool]string{false: "Source waits for Nack (control)", true: "SettleInRouter"}[inRouter]
		t.Run(name, func(t *testing.T) { settlePanic(t, inRouter) })
	}
}

func settlePanic(t *testing.T, inRouter bool) {
	env := testenv.Start(t, testenv.Quiet())
	acks := make(chan string, 256)
	sub, err := env.NC.Subscribe("$JS.ACK.>", func(m *nats.Msg) { acks <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	topic := env.Subjects.Command(messages.CmdProvisionGroup)
	cfg := testSourceConfig(env, "settle_panic", 900*time.Millisecond, 16, 1)
	cfg.NakDelay = func(int) time.Duration { return 50 * time.Millisecond }
	cfg.Grace = 500 * time.Millisecond
	cfg.SettleInRouter = inRouter
	src := runtime.NewSource(env.JS, cfg, env.Log)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if inRouter {
		router.AddMiddleware(runtime.Settle)
	}
	router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			if m.Metadata.Get(runtime.MetaDelivery) == "1" {
				panic("a bug in a middleware outside the recoverer")
			}
			return h(m)
		}
	})
	handled := make(chan string, 8)
	router.AddConsumerHandler("settle_panic", topic, src, func(m *message.Message) error {
		handled <- m.Metadata.Get(runtime.MetaDelivery)
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	t.Cleanup(func() { _ = router.Close() })

	env.Publish(messages.CmdProvisionGroup, `{"id":"c-panic"}`)
	var seen []string
	select {
	case d := <-handled:
		if d == "1" {
			t.Fatal("the panicking delivery reached the handler")
		}
	case <-time.After(5 * time.Second):
		for len(acks) > 0 {
			seen = append(seen, <-acks)
		}
		t.Errorf("the message whose middleware panicked (Watermill nacked it) was not redelivered within 5s (AckWait 900ms); server heard %q", seen)
	}
	if slices.ContainsFunc(seen, func(a string) bool { return strings.HasPrefix(a, "+WPI") }) && !slices.ContainsFunc(seen, func(a string) bool { return strings.HasPrefix(a, "-NAK") }) {
		t.Errorf("it is kept alive (+WPI) and never nacked")
	}
	closed := make(chan struct{})
	go func() { _ = src.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Errorf("Source.Close (Grace %v) has not returned after 5s: the unsettled message's held count leaked", cfg.Grace)
	}
}
