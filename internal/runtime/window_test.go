package runtime_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"groupflow/internal/broker"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// parkingAdmission admits at once the tickets of every site but those in
// park; those wait, counted by Parked, until released (or ctx ends). It
// counts the tickets it saw per topic.
type parkingAdmission struct {
	park map[string]bool
	mu   sync.Mutex
	seen map[string]int
	held int
	open chan struct{}
}

func newParking(sites ...string) *parkingAdmission {
	p := &parkingAdmission{park: map[string]bool{}, seen: map[string]int{}, open: make(chan struct{})}
	for _, s := range sites {
		p.park[s] = true
	}
	return p
}

func (p *parkingAdmission) Admit(ctx context.Context, t runtime.Ticket) (func(), error) {
	p.mu.Lock()
	p.seen[t.Topic]++
	parked := p.park[t.SiteID]
	if parked {
		p.held++
	}
	p.mu.Unlock()
	if !parked {
		return func() {}, nil
	}
	defer func() { p.mu.Lock(); p.held--; p.mu.Unlock() }()
	select {
	case <-p.open:
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Parked implements runtime.Parker.
func (p *parkingAdmission) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *parkingAdmission) seenOf(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[topic]
}

// windowEnv starts a Source over the given command types with a window.
func windowEnv(t *testing.T, adm runtime.Admission, maxHeld, maxRunnable int, types ...string) (*testenv.Env, *runtime.Source, map[string]<-chan *message.Message) {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	topics := map[string]runtime.Subscription{}
	for _, ct := range types {
		topic := env.Subjects.Command(ct)
		topics[topic] = runtime.Subscription{
			Consumer:    broker.ConsumerSpec{Durable: "window_" + ct, FilterSubject: topic, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000},
			Concurrency: 1000,
		}
	}
	src := runtime.NewSource(env.JS, runtime.SourceConfig{
		Stream: env.Subjects.CommandStream(), Topics: topics, FetchWait: 200 * time.Millisecond, Grace: time.Minute,
		Admission: adm, MaxHeld: maxHeld, MaxRunnable: maxRunnable,
	}, env.Log)
	t.Cleanup(func() { _ = src.Close() })
	outs := map[string]<-chan *message.Message{}
	for _, ct := range types {
		out, err := src.Subscribe(context.Background(), env.Subjects.Command(ct))
		if err != nil {
			t.Fatal(err)
		}
		outs[ct] = out
	}
	return env, src, outs
}

// TestSourceHoldsWithinMaxHeldAcrossTopics: with every message parked, two
// topics' backlogs of 100 each are held within MaxHeld + TopicReserve per
// topic, each topic gets at least its reserve, and as the parked ones are
// let go the rest drains through the same bound.
func TestSourceHoldsWithinMaxHeldAcrossTopics(t *testing.T) {
	adm := newParking("busy")
	const maxHeld, n = 40, 100
	types := []string{messages.CmdProvisionGroup, messages.CmdGenerateReport}
	env, src, outs := windowEnv(t, adm, maxHeld, 0, types...)
	for _, ct := range types {
		for i := range n {
			env.Publish(ct, fmt.Sprintf(`{"id":"%s-%d","siteId":"busy"}`, ct, i))
		}
	}
	bound := maxHeld + runtime.TopicReserve*len(types)
	awaitCond(t, "the window filled", func() bool {
		a, b := adm.seenOf(env.Subjects.Command(types[0])), adm.seenOf(env.Subjects.Command(types[1]))
		return a+b >= maxHeld && a >= runtime.TopicReserve && b >= runtime.TopicReserve
	})
	// Nothing to await for an absence: watch the server's count of
	// delivered, unacknowledged messages for a second (without the window
	// all 200 are delivered within it).
	for range 10 {
		if p := ackPending(t, env, types...); p > bound {
			t.Fatalf("%d messages delivered and unacknowledged with every message parked, bound %d", p, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if held, peak := src.Held(); peak > bound || held > bound {
		t.Fatalf("held %d (peak %d) with every message parked, bound %d", held, peak, bound)
	}
	close(adm.open) // let them run: the rest is fetched as they are acked
	for _, ct := range types {
		go func(out <-chan *message.Message) {
			for m := range out {
				m.Ack()
			}
		}(outs[ct])
	}
	awaitCond(t, "every message fetched", func() bool {
		return adm.seenOf(env.Subjects.Command(types[0])) == n && adm.seenOf(env.Subjects.Command(types[1])) == n
	})
	if _, peak := src.Held(); peak > bound {
		t.Fatalf("peak held %d while draining, bound %d", peak, bound)
	}
}

// TestSourceMaxRunnableFetchesPastParkedBacklog: one site's parked backlog
// (more than MaxRunnable and the topic's reserve) does not count against
// the runnable bound: the other sites' commands behind it in the stream
// are fetched and run.
func TestSourceMaxRunnableFetchesPastParkedBacklog(t *testing.T) {
	adm := newParking("busy")
	env, _, outs := windowEnv(t, adm, 1000, 8, messages.CmdProvisionGroup)
	for i := range 50 {
		env.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":"busy-%d","siteId":"busy"}`, i))
	}
	for i := range 20 {
		env.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":"other-%d","siteId":"s%d"}`, i, i))
	}
	for range 20 {
		m := receive(t, outs[messages.CmdProvisionGroup])
		if m.UUID[:5] != "other" {
			t.Fatalf("handed over %s while busy's backlog is parked", m.UUID)
		}
		m.Ack()
	}
}

// TestSourceIdleTopicLeavesActiveRoom: a topic whose backlog fills the
// window with work in progress leaves another topic its reserve: that
// topic's command still runs.
func TestSourceIdleTopicLeavesActiveRoom(t *testing.T) {
	env, src, outs := windowEnv(t, newParking(), 20, 20, messages.CmdProvisionGroup, messages.CmdGenerateReport)
	for i := range 100 {
		env.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":"p-%d"}`, i))
	}
	awaitCond(t, "the window full of provision_group", func() bool { h, _ := src.Held(); return h >= 20 })
	env.Publish(messages.CmdGenerateReport, `{"id":"r-1","top":1}`)
	m := receive(t, outs[messages.CmdGenerateReport])
	if m.UUID != "r-1" {
		t.Fatalf("handed over %s", m.UUID)
	}
	m.Ack()
}

// ackPending sums the window_<type> consumers' delivered, unacknowledged messages.
func ackPending(t *testing.T, env *testenv.Env, types ...string) int {
	t.Helper()
	sum := 0
	for _, ct := range types {
		c, err := env.JS.Consumer(context.Background(), env.Subjects.CommandStream(), "window_"+ct)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sum += info.NumAckPending
	}
	return sum
}

// TestSourceIdleTopicsLeaveRunnableRoom: topics with nothing to fetch do
// not keep the window's room reserved for their pull requests: with four
// idle topics, a busy one holds all of MaxRunnable but their reserves.
// (Each idle topic asked for a full batch, so four of them kept 4 × 256 of
// the runnable room reserved for messages that never came.)
func TestSourceIdleTopicsLeaveRunnableRoom(t *testing.T) {
	types := []string{messages.CmdProvisionGroup, messages.CmdGenerateReport, messages.CmdSendCampaign,
		messages.CmdPropagateRules, messages.CmdSetMembershipQuestions}
	const maxRunnable = 600
	env, _, _ := windowEnv(t, newParking(), 5000, maxRunnable, types...)
	for i := range 1000 {
		env.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":"p-%d","siteId":"s%d"}`, i, i))
	}
	// Nothing is acked: the busy topic's messages stay held. Its own pull
	// request in progress and the idle topics' may be reserved besides.
	want := maxRunnable - len(types)*runtime.TopicReserve - 2*runtime.TopicReserve
	awaitCond(t, fmt.Sprintf("%d provision_group messages delivered", want), func() bool {
		return ackPending(t, env, types[0]) >= want
	})
}
