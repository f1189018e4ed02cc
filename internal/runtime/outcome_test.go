package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/events"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

// bigOutcomeHandler answers provision_group with a GroupProvisioned whose
// notAdded has rows entries with long refs.
type bigOutcomeHandler struct {
	typ   string
	rows  int
	calls sync.Map // command id -> *atomic.Int32
}

func (h *bigOutcomeHandler) CommandType() string { return h.typ }

func (h *bigOutcomeHandler) Calls(id string) int {
	n, _ := h.calls.LoadOrStore(id, new(atomic.Int32))
	return int(n.(*atomic.Int32).Load())
}

// Handle answers any command type (C is the Command interface).
func (h *bigOutcomeHandler) Handle(_ context.Context, cmd *runtime.Command, _ messages.Command) (messages.Event, error) {
	n, _ := h.calls.LoadOrStore(cmd.ID, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	if h.typ == messages.CmdSendCampaign {
		return &messages.CampaignCompleted{EventMeta: cmd.EventMeta(), CampaignID: "c", AudienceType: messages.AudienceAll}, nil
	}
	return &messages.GroupProvisioned{EventMeta: cmd.EventMeta(), GroupID: "g-1", Name: "Big", NotAdded: bigNotAdded(h.rows)}, nil
}

func bigNotAdded(rows int) []messages.RowOutcome {
	out := make([]messages.RowOutcome, rows)
	for i := range out {
		out[i] = messages.RowOutcome{Row: i, Ref: fmt.Sprintf("crm-%05d-%s", i, strings.Repeat("r", 100)), Kind: messages.KindEmail,
			Reason: messages.ReasonNotFound, Detail: "no site member with this login email"}
	}
	return out
}

// crashAfterPut is an object store whose first Put is stored and then
// reported failed: the process "crashed" right after the object write,
// before the ledger recorded the event.
type crashAfterPut struct {
	jetstream.ObjectStore
	puts atomic.Int32
}

func (s *crashAfterPut) Put(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error) {
	info, err := s.ObjectStore.Put(ctx, meta, r)
	if err == nil && s.puts.Add(1) == 1 {
		return nil, errors.New("crash after the object write")
	}
	return info, err
}

// crashingPublisher fails the first publish on topic: before it reaches the
// broker ("before": crash between the ledger write and the publish) or after
// ("after": the PubAck is lost).
type crashingPublisher struct {
	message.Publisher
	topic, mode string
	n           atomic.Int32
}

func (p *crashingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic != p.topic || p.n.Add(1) != 1 {
		return p.Publisher.Publish(topic, msgs...)
	}
	if p.mode == "after" {
		if err := p.Publisher.Publish(topic, msgs...); err != nil {
			return err
		}
	}
	return errors.New("crash around the event publish")
}

// startRuntimeWith runs a runtime like testenv.StartRuntime, with deps
// adjusted by adjust.
func startRuntimeWith(t *testing.T, env *testenv.Env, cfg runtime.Config, adjust func(*runtime.Deps), hs ...*bigOutcomeHandler) {
	t.Helper()
	evts, pub := env.EventPublisher()
	cfg.Subjects = env.Subjects
	cfg.DefaultSiteID = "test-site"
	deps := runtime.Deps{JS: env.JS, Publisher: pub, Events: evts, Ledger: env.Ledger, Outcomes: env.Outcomes(), Logger: env.Log}
	if adjust != nil {
		adjust(&deps)
	}
	rt := runtime.New(cfg, deps)
	for _, h := range hs {
		runtime.Register(rt, h, 2)
	}
	if err := rt.Prepare(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
	case err := <-done:
		t.Fatalf("runtime stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("runtime not running")
	}
	t.Cleanup(func() { cancel(); <-done })
}

// headerSize is the NATS header block of m as the server counts it.
func headerSize(m *nats.Msg) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// TestOversizedOutcomeSurvivesCrashes: a completion event too large for one
// message is truncated with its full body in the outcomes store, and a crash
// at each point of the completion (after the object write, after the ledger
// write, after the publish) still leaves exactly one event in the stream:
// the same truncated event, answered from the ledger or rebuilt from the
// checkpoints, deduplicated by its Nats-Msg-Id.
func TestOversizedOutcomeSurvivesCrashes(t *testing.T) {
	const limit = 64 << 10
	const rows = 2000
	for _, tc := range []struct {
		name       string
		crash      string // "object", "before" or "after" the publish
		wantCalls  int
		wantPublic int // events seen on the subject (a deduplicated copy is delivered too)
	}{
		{"crash after the object write", "object", 2, 1},
		{"crash after the ledger write", "before", 1, 1},
		{"crash after the publish", "after", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.Start(t)
			h := &bigOutcomeHandler{typ: messages.CmdProvisionGroup, rows: rows}
			cfg := fastConfig()
			cfg.MaxPayload = limit
			var store *crashAfterPut
			startRuntimeWith(t, env, cfg, func(d *runtime.Deps) {
				switch tc.crash {
				case "object":
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					obs, err := env.JS.ObjectStore(ctx, broker.OutcomesBucket)
					if err != nil {
						t.Fatal(err)
					}
					store = &crashAfterPut{ObjectStore: obs}
					d.Outcomes = events.NewOutcomes(store, broker.OutcomesBucket)
				default:
					nc := env.Conn()
					wp, err := events.NewJetStreamPublisher(nc, runtime.WatermillLogger(env.Log))
					if err != nil {
						t.Fatal(err)
					}
					d.Events = events.NewPublisher(&crashingPublisher{Publisher: wp, topic: env.Subjects.Event(messages.EvtGroupProvisioned), mode: tc.crash},
						env.Subjects, "groupflow-test")
				}
			}, h)
			w := env.Watch(env.Subjects.Events())
			env.Publish(messages.CmdProvisionGroup, `{"id":"big-1","group":{"name":"Big"}}`)

			var seen []*nats.Msg
			for len(seen) < tc.wantPublic {
				m := w.Next(30*time.Second, testenv.ForCommand("big-1"))
				if m.Subject != env.Subjects.Event(messages.EvtGroupProvisioned) {
					t.Fatalf("unexpected event %s: %.300s", m.Subject, m.Data)
				}
				seen = append(seen, m)
			}
			// A subscriber can see the event before the stream's state
			// counts it (the server routes, then stores): await the store.
			var stored []testenv.StreamMsg
			awaitCond(t, "the event in the events stream", func() bool {
				stored = env.Events(messages.EvtGroupProvisioned)
				return len(stored) > 0
			})
			if len(stored) != 1 {
				t.Fatalf("events stream holds %d group_provisioned, want exactly 1", len(stored))
			}
			if got := h.Calls("big-1"); got != tc.wantCalls {
				t.Errorf("handler ran %d times, want %d", got, tc.wantCalls)
			}
			for _, m := range seen {
				if string(m.Data) != string(stored[0].Data) {
					t.Errorf("published bodies differ:\n%.200s\n%.200s", m.Data, stored[0].Data)
				}
			}
			if n := len(stored[0].Data) + headerSize(&nats.Msg{Header: stored[0].Header}); n > limit {
				t.Errorf("event takes %d bytes with headers, limit %d", n, limit)
			}
			rec, err := env.Ledger.Record(context.Background(), messages.CmdProvisionGroup, "big-1")
			if err != nil || rec == nil || string(rec.Event) != string(stored[0].Data) {
				t.Fatalf("ledger record %v (%v) does not hold the published event", rec, err)
			}
			recBytes, _ := json.Marshal(rec)
			if len(recBytes) > limit {
				t.Errorf("ledger record takes %d bytes, limit %d", len(recBytes), limit)
			}

			ev := testenv.Decode[messages.GroupProvisioned](t, &nats.Msg{Data: stored[0].Data})
			if !ev.Truncated || ev.NotAddedTotal != rows || len(ev.NotAdded) == 0 || len(ev.NotAdded) >= rows || ev.Full == nil {
				t.Fatalf("event: truncated %v, notAdded %d of %d, full %v", ev.Truncated, len(ev.NotAdded), ev.NotAddedTotal, ev.Full)
			}
			want := bigNotAdded(rows)
			if !reflect.DeepEqual(ev.NotAdded, want[:len(ev.NotAdded)]) {
				t.Error("notAdded is not the first rows of the outcome")
			}
			body, err := env.Outcomes().Get(context.Background(), *ev.Full)
			if err != nil {
				t.Fatal(err)
			}
			full := testenv.Decode[messages.GroupProvisioned](t, &nats.Msg{Data: body})
			if full.Truncated || !reflect.DeepEqual(full.NotAdded, want) || full.EventID() != ev.EventID() {
				t.Errorf("stored outcome: truncated %v, %d rows", full.Truncated, len(full.NotAdded))
			}
			if store != nil && store.puts.Load() != 2 {
				t.Errorf("object written %d times, want 2 (before and after the crash)", store.puts.Load())
			}
			if n := len(env.Events(messages.EvtCommandFailed)); n != 0 {
				t.Errorf("%d command_failed events", n)
			}
		})
	}
}

// TestOversizedOutcomeWithoutStoreIsPermanent: with no outcomes store an
// outcome that cannot fit is dead-lettered at once (permanent), not retried
// as transient until exhausted.
func TestOversizedOutcomeWithoutStoreIsPermanent(t *testing.T) {
	env := testenv.Start(t)
	h := &bigOutcomeHandler{typ: messages.CmdProvisionGroup, rows: 2000}
	cfg := fastConfig()
	cfg.MaxPayload = 64 << 10
	startRuntimeWith(t, env, cfg, func(d *runtime.Deps) { d.Outcomes = nil }, h)
	w := env.Watch(env.Subjects.Event(messages.EvtCommandFailed))
	env.Publish(messages.CmdProvisionGroup, `{"id":"big-2","group":{"name":"Big"}}`)
	f := testenv.Decode[messages.CommandFailed](t, w.Next(30*time.Second, testenv.ForCommand("big-2")))
	if f.Kind != messages.FailurePermanent || f.Deliveries != 1 || !strings.Contains(f.Reason, "too large") || h.Calls("big-2") != 1 {
		t.Errorf("command_failed %+v after %d calls", f, h.Calls("big-2"))
	}
}

// TestEchoTooLargeIsInvalidBeforeAnyWork: a send_campaign whose content,
// copied into every member_selected, could never fit in one message is
// dead-lettered as invalid, naming the field and the limit, before the
// handler (and so any Wix call) runs; one that fits is carried out.
func TestEchoTooLargeIsInvalidBeforeAnyWork(t *testing.T) {
	const limit = 64 << 10
	env := testenv.Start(t)
	h := &bigOutcomeHandler{typ: messages.CmdSendCampaign}
	cfg := fastConfig()
	cfg.MaxPayload = limit
	startRuntimeWith(t, env, cfg, nil, h)
	w := env.Watch(env.Subjects.Events())
	content := func(n int) string { return `{"html":"` + strings.Repeat("h", n) + `"}` }
	env.Publish(messages.CmdSendCampaign, `{"id":"c-big","campaignId":"c","groupIds":["g"],"content":`+content(limit-messages.EchoReserve)+`}`)
	env.Publish(messages.CmdSendCampaign, `{"id":"c-ok","campaignId":"c","groupIds":["g"],"content":`+content(limit/2)+`}`)

	got := map[string]*nats.Msg{}
	for len(got) < 2 {
		m := w.Next(30*time.Second, func(m *nats.Msg) bool { return testenv.ForCommand("c-big")(m) || testenv.ForCommand("c-ok")(m) })
		got[m.Header.Get(events.HeaderCommandID)] = m
	}
	f := testenv.Decode[messages.CommandFailed](t, got["c-big"])
	if f.Kind != messages.FailureInvalid || len(f.Fields) != 1 || f.Fields[0].Field != "content" ||
		!strings.Contains(f.Fields[0].Message, fmt.Sprint(limit)) || !strings.Contains(f.Fields[0].Message, messages.EvtMemberSelected) {
		t.Errorf("command_failed = %+v", f)
	}
	if ok := got["c-ok"]; ok.Subject != env.Subjects.Event(messages.EvtCampaignCompleted) {
		t.Errorf("c-ok: %s %.200s", ok.Subject, ok.Data)
	}
	if h.Calls("c-big") != 0 || h.Calls("c-ok") != 1 {
		t.Errorf("handler calls: c-big %d, c-ok %d", h.Calls("c-big"), h.Calls("c-ok"))
	}
}
