// Package testenv starts what integration tests need — a real embedded
// nats-server with JetStream, groupflow's streams and buckets, and a running
// runtime — and offers helpers to publish commands and await events and dead
// letters without sleeping.
package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/events"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// Env is a running broker with groupflow's topology.
type Env struct {
	T        testing.TB
	Server   *broker.Embedded
	DataDir  string
	NC       *nats.Conn // the producer's connection (plain nats.go)
	JS       jetstream.JetStream
	Subjects messages.Subjects
	Ledger   *ledger.Ledger
	Log      *zap.Logger
}

// Option adjusts Start.
type Option func(*options)

type options struct {
	dataDir    string
	quietLog   bool
	maxPayload int32
}

// WithDataDir reuses a data directory (to restart a server on the same store).
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithMaxPayload sets the server's max_payload (default
// broker.DefaultMaxPayload).
func WithMaxPayload(n int32) Option { return func(o *options) { o.maxPayload = n } }

// Quiet silences logs below warnings.
func Quiet() Option { return func(o *options) { o.quietLog = true } }

// Start runs an embedded nats-server on a free loopback port with its store
// in a temporary directory, and provisions groupflow's streams and buckets.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ns, err := broker.StartEmbedded(broker.EmbeddedConfig{DataDir: o.dataDir, Listen: "127.0.0.1:0", MaxPayload: o.maxPayload}, nil)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj := messages.Subjects{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (broker.Topology{Subjects: subj}).Provision(ctx, js); err != nil {
		t.Fatalf("provision: %v", err)
	}
	l, err := ledger.Open(ctx, js, broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, Server: ns, DataDir: o.dataDir, NC: nc, JS: js, Subjects: subj, Ledger: l, Log: log}
}

// Outcomes opens the outcomes object store (full bodies of truncated events).
func (e *Env) Outcomes() *events.Outcomes {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := events.OpenOutcomes(ctx, e.JS, broker.OutcomesBucket)
	if err != nil {
		e.T.Fatal(err)
	}
	return o
}

// Conn opens another connection to the server, closed with the test.
func (e *Env) Conn() *nats.Conn {
	e.T.Helper()
	nc, err := nats.Connect(e.Server.URL)
	if err != nil {
		e.T.Fatalf("connect: %v", err)
	}
	e.T.Cleanup(nc.Close)
	return nc
}

// EventPublisher returns an events publisher over its own connection, and
// the underlying Watermill publisher.
func (e *Env) EventPublisher() (*events.Publisher, message.Publisher) {
	e.T.Helper()
	nc, err := nats.Connect(e.Server.URL)
	if err != nil {
		e.T.Fatal(err)
	}
	pub, err := events.NewJetStreamPublisher(nc, runtime.WatermillLogger(e.Log))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { _ = pub.Close() })
	return events.NewPublisher(pub, e.Subjects, "groupflow-test"), pub
}

// Running is a runtime started by StartRuntime.
type Running struct {
	*runtime.Runtime
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Stop shuts the runtime down gracefully and returns Run's error.
func (r *Running) Stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// StartRuntime runs a runtime with the given handlers (concurrency 4 each)
// until the test ends or Stop is called.
func (e *Env) StartRuntime(cfg runtime.Config, handlers ...runtime.Handler) *Running {
	e.T.Helper()
	evts, pub := e.EventPublisher()
	cfg.Subjects = e.Subjects
	if cfg.DefaultSiteID == "" {
		cfg.DefaultSiteID = "test-site"
	}
	rt := runtime.New(cfg, runtime.Deps{JS: e.JS, Publisher: pub, Events: evts, Ledger: e.Ledger, Outcomes: e.Outcomes(), Logger: e.Log})
	for _, h := range handlers {
		rt.Register(h, 4)
	}
	if err := rt.Prepare(); err != nil {
		e.T.Fatalf("prepare runtime: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Runtime: rt, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rt.Run(ctx) }()
	select {
	case <-rt.Running():
	case err := <-r.done:
		e.T.Fatalf("runtime stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		e.T.Fatal("runtime not running after 30s")
	}
	e.T.Cleanup(func() { _ = r.Stop() })
	return r
}

// Publish publishes a raw command body on groups.cmd.<commandType> with plain
// nats.go (no Watermill headers) and waits for the stream's ack.
func (e *Env) Publish(commandType string, body string, header ...string) *jetstream.PubAck {
	e.T.Helper()
	m := nats.NewMsg(e.Subjects.Command(commandType))
	m.Data = []byte(body)
	for i := 0; i+1 < len(header); i += 2 {
		m.Header.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := e.JS.PublishMsg(ctx, m)
	if err != nil {
		e.T.Fatalf("publish %s: %v", commandType, err)
	}
	return ack
}

// PublishJSON marshals v and publishes it as a command.
func (e *Env) PublishJSON(commandType string, v any) *jetstream.PubAck {
	e.T.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.T.Fatal(err)
	}
	return e.Publish(commandType, string(b))
}

// StreamMsg is a message read back from a stream.
type StreamMsg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
}

// Read returns every message stored in stream on subjects matching filter
// (e.g. "groups.evt.>"), in order.
func (e *Env) Read(stream, filter string) []StreamMsg {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		e.T.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		e.T.Fatal(err)
	}
	var out []StreamMsg
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		e.T.Fatal(err)
	}
	for uint64(len(out)) < total {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			e.T.Fatalf("read %s %s: %v (have %d of %d)", stream, filter, err, len(out), total)
		}
		md, _ := m.Metadata()
		out = append(out, StreamMsg{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Time: md.Timestamp})
	}
	return out
}

// Events returns the stored events of one type (or all with "").
func (e *Env) Events(eventType string) []StreamMsg {
	filter := e.Subjects.Events()
	if eventType != "" {
		filter = e.Subjects.Event(eventType)
	}
	return e.Read(e.Subjects.EventStream(), filter)
}

// DeadLetters returns the stored dead letters.
func (e *Env) DeadLetters() []*dlq.Entry {
	var out []*dlq.Entry
	for _, m := range e.Read(e.Subjects.DLQStream(), e.Subjects.DLQs()) {
		out = append(out, dlq.Parse(m.Seq, m.Time, m.Header, m.Data))
	}
	return out
}

// Watcher follows a subject from now on; it is how tests await events
// without sleeping.
type Watcher struct {
	e   *Env
	sub *nats.Subscription
	ch  chan *nats.Msg
}

// Watch starts following subject (core NATS; start it before publishing the
// command whose results you await).
func (e *Env) Watch(subject string) *Watcher {
	e.T.Helper()
	ch := make(chan *nats.Msg, 1<<16)
	nc := e.Conn()
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { _ = sub.Unsubscribe() })
	return &Watcher{e: e, sub: sub, ch: ch}
}

// Next returns the next message whose body satisfies match (nil = any), or
// fails the test after timeout.
func (w *Watcher) Next(timeout time.Duration, match func(*nats.Msg) bool) *nats.Msg {
	w.e.T.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-w.ch:
			if match == nil || match(m) {
				return m
			}
		case <-deadline:
			w.e.T.Fatalf("no matching message on %s within %s", w.sub.Subject, timeout)
			return nil
		}
	}
}

// ForCommand matches messages whose Groupflow-Command-Id header is id.
func ForCommand(id string) func(*nats.Msg) bool {
	return func(m *nats.Msg) bool { return m.Header.Get(events.HeaderCommandID) == id }
}

// Decode unmarshals m's body into v or fails the test.
func Decode[T any](t testing.TB, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("decode %s: %v: %s", m.Subject, err, m.Data)
	}
	return v
}

// String renders a stream message for failure output.
func (m StreamMsg) String() string { return fmt.Sprintf("#%d %s %s", m.Seq, m.Subject, m.Data) }
