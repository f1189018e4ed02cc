package runtime_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"groupflow/internal/broker"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// gateAdmission admits at once the tickets of every site but "blocked";
// those wait until open is closed (or ctx ends: cancelled reports it).
type gateAdmission struct {
	arrived   chan runtime.Ticket
	open      chan struct{}
	cancelled chan runtime.Ticket
}

func newGate() *gateAdmission {
	return &gateAdmission{arrived: make(chan runtime.Ticket, 16), open: make(chan struct{}), cancelled: make(chan runtime.Ticket, 16)}
}

func (g *gateAdmission) Admit(ctx context.Context, t runtime.Ticket) (func(), error) {
	g.arrived <- t
	if t.SiteID != "blocked" {
		return func() {}, nil
	}
	select {
	case <-g.open:
		return func() {}, nil
	case <-ctx.Done():
		g.cancelled <- t
		return nil, ctx.Err()
	}
}

// testSourceConfig configures a Source of one durable consumer on the
// provision_group subject.
func testSourceConfig(env *testenv.Env, durable string, ackWait time.Duration, maxAckPending, concurrency int) runtime.SourceConfig {
	topic := env.Subjects.Command(messages.CmdProvisionGroup)
	return runtime.SourceConfig{
		Stream: env.Subjects.CommandStream(),
		Topics: map[string]runtime.Subscription{topic: {
			Consumer:    broker.ConsumerSpec{Durable: durable, FilterSubject: topic, AckWait: ackWait, MaxDeliver: 5, MaxAckPending: maxAckPending},
			Concurrency: concurrency,
		}},
		FetchWait: 200 * time.Millisecond,
		Grace:     time.Minute,
	}
}

// sourceEnv starts a Source on the provision_group subject.
func sourceEnv(t *testing.T, admission runtime.Admission, ackWait time.Duration) (*testenv.Env, *runtime.Source, <-chan *message.Message) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	topic := env.Subjects.Command(messages.CmdProvisionGroup)
	cfg := testSourceConfig(env, "source_test", ackWait, 10, 1)
	cfg.Admission = admission
	src := runtime.NewSource(env.JS, cfg, env.Log)
	t.Cleanup(func() { _ = src.Close() })
	out, err := src.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return env, src, out
}

func receive(t *testing.T, out <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-out:
		if !ok {
			t.Fatal("source closed its channel")
		}
		t.Cleanup(func() { m.Nack() }) // no-op once acked; lets Close end if the test fails
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message handed over")
		return nil
	}
}

func numRedelivered(t *testing.T, env *testenv.Env) (redelivered, ackPending int) {
	t.Helper()
	c, err := env.JS.Consumer(context.Background(), env.Subjects.CommandStream(), "source_test")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumRedelivered, info.NumAckPending
}

// A message waiting in admission for longer than AckWait is kept alive (not
// redelivered), and holds no handler slot: a later message of the same
// topic (concurrency 1) runs meanwhile.
func TestSourceKeepsWaitingMessagesAlive(t *testing.T) {
	gate := newGate()
	env, src, out := sourceEnv(t, gate, 600*time.Millisecond)
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-wait","siteId":"blocked"}`)
	tk := <-gate.arrived
	if tk.SiteID != "blocked" || tk.Bytes != int64(len(`{"id":"c-wait","siteId":"blocked"}`)) || !strings.HasSuffix(tk.Subject, messages.CmdProvisionGroup) {
		t.Fatalf("ticket %+v", tk)
	}
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-run","siteId":"s1"}`)
	m := receive(t, out)
	if m.UUID != "c-run" {
		t.Fatalf("handed over %s while c-wait waits in admission; want c-run", m.UUID)
	}
	m.Ack()
	// Five keep-alives at AckWait/3 span more than AckWait.
	before := src.KeepAlives()
	awaitCond(t, "keep-alives of the waiting message", func() bool { return src.KeepAlives() >= before+5 })
	close(gate.open)
	m = receive(t, out)
	if m.UUID != "c-wait" || m.Metadata.Get(runtime.MetaDelivery) != "1" {
		t.Fatalf("got %s delivery %s, want c-wait delivery 1", m.UUID, m.Metadata.Get(runtime.MetaDelivery))
	}
	m.Ack()
	awaitCond(t, "acks", func() bool { _, p := numRedelivered(t, env); return p == 0 })
	if r, _ := numRedelivered(t, env); r != 0 {
		t.Fatalf("%d messages redelivered: the waiting one was not kept alive", r)
	}
}

// The Source keeps fetching while messages wait in admission: with one
// handler slot and room for one admitted message, the rest of the backlog
// is fetched (up to MaxAckPending) and waits, in order.
func TestSourceFetchesWhileMessagesWait(t *testing.T) {
	adm := runtime.NewFIFOAdmission(1, 0)
	env, _, out := sourceEnv(t, adm, 30*time.Second)
	for _, id := range []string{"c1", "c2", "c3", "c4"} {
		env.Publish(messages.CmdProvisionGroup, `{"id":"`+id+`"}`)
	}
	for _, want := range []string{"c1", "c2", "c3", "c4"} {
		m := receive(t, out)
		if m.UUID != want {
			t.Fatalf("handed over %s, want %s", m.UUID, want)
		}
		if want == "c1" {
			awaitCond(t, "the backlog fetched while c1 runs", func() bool { return adm.Stats().Waiting == 3 })
		}
		if st := adm.Stats(); st.Admitted != 1 {
			t.Fatalf("%d admitted at once, bound 1", st.Admitted)
		}
		m.Ack()
	}
}

// Close naks the messages waiting in admission at once, lets the one in
// work finish, and returns without waiting for the grace period.
func TestSourceCloseNaksWaitingMessages(t *testing.T) {
	gate := newGate()
	env, src, out := sourceEnv(t, gate, 30*time.Second)
	acks := make(chan string, 16)
	sub, err := env.NC.Subscribe("$JS.ACK.>", func(m *nats.Msg) { acks <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-run","siteId":"s1"}`)
	running := receive(t, out)
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-wait","siteId":"blocked"}`)
	for tk := range gate.arrived {
		if tk.SiteID == "blocked" {
			break
		}
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { _ = src.Close(); close(closed) }()
	select {
	case tk := <-gate.cancelled:
		if tk.SiteID != "blocked" {
			t.Fatalf("cancelled %+v", tk)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting message's admission was not cancelled by Close")
	}
	awaitAck(t, acks, "-NAK")
	select {
	case <-closed:
		t.Fatal("Close returned while a message was in work")
	default:
	}
	running.Ack()
	awaitAck(t, acks, "+ACK")
	<-closed
	if _, ok := <-out; ok {
		t.Fatal("a message was handed over after Close")
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("Close took %s: it waited for the grace period", time.Since(start))
	}
}

// awaitAck waits for an ack whose body starts with prefix ("+ACK",
// "-NAK") and returns the ones seen before it.
func awaitAck(t *testing.T, acks <-chan string, prefix string) (before []string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case a := <-acks:
			if strings.HasPrefix(a, prefix) {
				return before
			}
			before = append(before, a)
		case <-timeout:
			t.Fatalf("no %s seen", prefix)
		}
	}
}

// A message its handler abandons (MetaAbandon, then Nack) is neither acked
// nor nacked: the server redelivers it after AckWait, as after a crash.
func TestSourceAbandonLeavesMessageUnacknowledged(t *testing.T) {
	env, _, out := sourceEnv(t, nil, 500*time.Millisecond)
	acks := make(chan string, 16)
	sub, err := env.NC.Subscribe("$JS.ACK.>", func(m *nats.Msg) { acks <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	env.Publish(messages.CmdProvisionGroup, `{"id":"c-abandon"}`)
	m := receive(t, out)
	m.Metadata.Set(runtime.MetaAbandon, "true")
	m.Nack()
	m = receive(t, out) // redelivered after AckWait
	if m.UUID != "c-abandon" || m.Metadata.Get(runtime.MetaDelivery) != "2" {
		t.Fatalf("got %s delivery %s, want c-abandon delivery 2", m.UUID, m.Metadata.Get(runtime.MetaDelivery))
	}
	m.Ack()
	if seen := awaitAck(t, acks, "+ACK"); slices.ContainsFunc(seen, func(a string) bool { return strings.HasPrefix(a, "-NAK") }) {
		t.Fatalf("the abandoned message was nacked (acks %q)", seen)
	}
}

// Config.Admission reaches the runtime's Source: a command whose site the
// admission holds back does not reach its handler until admitted, while
// another command of the same type runs.
func TestRuntimeUsesConfiguredAdmission(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	gate := newGate()
	h := newReportHandler(nil)
	cfg := fastConfig()
	cfg.Admission = gate
	env.StartRuntime(cfg, runtime.Adapt(h))
	w := env.Watch(env.Subjects.Event(messages.EvtReportGenerated))
	env.Publish(messages.CmdGenerateReport, `{"id":"r-held","top":1,"siteId":"blocked"}`)
	env.Publish(messages.CmdGenerateReport, `{"id":"r-free","top":1}`)
	w.Next(20*time.Second, testenv.ForCommand("r-free"))
	if h.Calls("r-held") != 0 {
		t.Fatal("a command held by the admission reached its handler")
	}
	close(gate.open)
	w.Next(20*time.Second, testenv.ForCommand("r-held"))
}

// A backlog larger than MaxAckPending drains: fetching resumes as acks
// free room, in fetch order.
func TestSourceDrainsBacklogBeyondMaxAckPending(t *testing.T) {
	env, _, out := sourceEnv(t, nil, 30*time.Second)
	const n = 25 // MaxAckPending is 10
	for i := range n {
		env.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":"c-%02d"}`, i))
	}
	for i := range n {
		m := receive(t, out)
		if want := fmt.Sprintf("c-%02d", i); m.UUID != want {
			t.Fatalf("message %d is %s, want %s", i, m.UUID, want)
		}
		m.Ack()
	}
}
