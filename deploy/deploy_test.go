// Package deploy_test checks the files in deploy/ against the real things
// they configure: the NATS permissions against a real nats-server, the
// cluster configs by parsing (and starting) them, the Grafana dashboard
// against the metrics groupflow exports, and the YAML manifests by parsing.
package deploy_test

import (
	"groupflow/internal/testutil"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"

	"groupflow/internal/broker"
	"groupflow/internal/dlq"
	"groupflow/internal/schedule"
	"groupflow/messages"
)

// ---------------------------------------------------------------------------
// helpers: processes (testutil.MustModuleRoot is the repository root,
// testutil.NATSServerBin finds nats-server)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServerOn runs nats-server with args in dir (stopped, SIGTERM then
// SIGKILL, when the test ends; its output logged if the test fails) and, when
// addr is not empty, waits until it accepts connections there. A server that exits
// because its port was taken meanwhile returns an error wrapping
// testutil.ErrAddrInUse (testutil.WithPorts then retries with new ports).
// stop ends the server at once (it also ends when the test does).
func startServerOn(t *testing.T, name, dir string, env []string, addr string, args ...string) (stop func(), err error) {
	t.Helper()
	cmd := exec.Command(testutil.NATSServerBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nats-server %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("nats-server %s output:\n%s", name, out.String())
		}
	})
	if addr != "" {
		if err := testutil.AwaitStart("nats-server "+name, 60*time.Second, done, out.String,
			func() bool { return testutil.Dialable(addr) }); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

func randomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// client is a connection as one user, recording asynchronous errors (the
// server reports permission violations asynchronously).
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

// connect connects as user with the user's own inbox prefix, _INBOX_<user>,
// as deploy/nats/accounts.conf requires of every client.
func connect(t *testing.T, url, user, password string) *client {
	t.Helper()
	return connectInbox(t, url, user, password, "_INBOX_"+user)
}

// connectInbox connects as user with reply inboxes under inboxPrefix ("" is
// the nats.go default, _INBOX).
func connectInbox(t *testing.T, url, user, password, inboxPrefix string) *client {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	opts := []nats.Option{nats.UserInfo(user, password), nats.Name(user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		})}
	if inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(inboxPrefix))
	}
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.nc, err = nats.Connect(url, opts...)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(c.nc.Close)
	c.js, err = jetstream.New(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// drainErrs forgets the asynchronous errors reported so far.
func (c *client) drainErrs() {
	_ = c.nc.Flush()
	for {
		select {
		case <-c.errs:
		default:
			return
		}
	}
}

// noAsyncErrors fails if c reported an asynchronous error (e.g. a
// permissions violation) so far.
func (c *client) noAsyncErrors(t *testing.T) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.errs:
		t.Fatalf("%s: async error: %v", c.nc.Opts.Name, err)
	default:
	}
}

// expectViolation waits for the server's permissions violation about
// subject on c.
func (c *client) expectViolation(t *testing.T, op, subject string) {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			s := err.Error()
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(s), "permissions violation") {
				if strings.Contains(s, op) && strings.Contains(s, subject) {
					return
				}
			}
			t.Logf("%s: other async error: %v", c.nc.Opts.Name, err)
		case <-timeout:
			t.Fatalf("%s: no permissions violation for %s %q", c.nc.Opts.Name, op, subject)
		}
	}
}

// streamMsgs is the number of messages stream holds (read as c).
func streamMsgs(t *testing.T, c *client, stream string) uint64 {
	t.Helper()
	st, err := c.js.Stream(ctxT(t, 5*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// buildGroupctl builds cmd/groupctl into a temp dir (skipped without a go
// toolchain on PATH).
func buildGroupctl(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not on PATH: cannot build groupctl")
	}
	out := filepath.Join(t.TempDir(), "groupctl")
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/groupctl")
	cmd.Dir = testutil.MustModuleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build groupctl: %v\n%s", err, b)
	}
	return out
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// accounts.conf against a real nats-server

func TestAccountsPermissions(t *testing.T) {
	root := testutil.MustModuleRoot(t)
	pw := map[string]string{}
	var env []string
	for _, u := range []string{"producer", "mailer", "groupflow", "ops"} {
		pw[u] = randomPassword(t)
		env = append(env, "GF_"+strings.ToUpper(u)+"_PASSWORD="+pw[u])
	}
	// The real deploy/nats/server.conf (which includes accounts.conf), with
	// the ports overridden on the command line; its relative store_dir lands
	// in the working directory, a temp dir.
	ports := testutil.WithPorts(t, 2, func(p []int) error {
		_, err := startServerOn(t, "accounts", t.TempDir(), env, fmt.Sprintf("127.0.0.1:%d", p[0]),
			"-c", filepath.Join(root, "deploy", "nats", "server.conf"),
			"-p", fmt.Sprint(p[0]), "-m", fmt.Sprint(p[1]))
		return err
	})
	port := ports[0]
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	gf := connect(t, url, "groupflow", pw["groupflow"])
	producer := connect(t, url, "producer", pw["producer"])
	mailer := connect(t, url, "mailer", pw["mailer"])
	ops := connect(t, url, "ops", pw["ops"])

	subj := messages.Subjects{}
	cmdSubject := subj.Command("provision_group")

	t.Run("groupflow provisions its topology and uses KV, object store, consumers, advisories", func(t *testing.T) {
		ctx := ctxT(t, 30*time.Second)
		// The processor's own provisioning code: streams, ledger, reports.
		if err := (broker.Topology{Subjects: subj, Replicas: 1}).Provision(ctx, gf.js); err != nil {
			t.Fatalf("provision as groupflow: %v", err)
		}
		for _, bucket := range []string{"GROUPFLOW_LEDGER", "GROUPFLOW_RATE"} {
			kv, err := gf.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
			if err != nil {
				t.Fatalf("kv %s: %v", bucket, err)
			}
			if _, err := kv.Put(ctx, "cmd.abc", []byte("done")); err != nil {
				t.Fatalf("kv %s put: %v", bucket, err)
			}
			e, err := kv.Get(ctx, "cmd.abc")
			if err != nil || string(e.Value()) != "done" {
				t.Fatalf("kv %s get: %v %v", bucket, e, err)
			}
			w, err := kv.WatchAll(ctx)
			if err != nil {
				t.Fatalf("kv %s watch: %v", bucket, err)
			}
			if u := <-w.Updates(); u == nil || u.Key() != "cmd.abc" {
				t.Fatalf("kv %s watch: first update %v", bucket, u)
			}
			_ = w.Stop()
		}
		for _, bucket := range []string{broker.ReportsBucket, broker.OutcomesBucket} {
			obs, err := gf.js.ObjectStore(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obs.PutBytes(ctx, "report-1.csv", bytes.Repeat([]byte("a,b\n"), 100_000)); err != nil {
				t.Fatalf("object put %s: %v", bucket, err)
			}
			if b, err := obs.GetBytes(ctx, "report-1.csv"); err != nil || len(b) != 400_000 {
				t.Fatalf("object get %s: %d bytes, %v", bucket, len(b), err)
			}
		}
		adv, err := gf.nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.GROUPS_COMMANDS.>")
		if err != nil {
			t.Fatal(err)
		}
		defer adv.Unsubscribe()
		if err := gf.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-gf.errs:
			t.Fatalf("groupflow: async error: %v", err)
		default:
		}
	})

	t.Run("producer publishes commands with a PubAck", func(t *testing.T) {
		ctx := ctxT(t, 10*time.Second)
		ack, err := producer.js.Publish(ctx, cmdSubject, []byte(`{"commandId":"c1"}`))
		if err != nil {
			t.Fatalf("producer JetStream publish %s: %v", cmdSubject, err)
		}
		if ack.Stream != subj.CommandStream() || ack.Sequence == 0 {
			t.Fatalf("PubAck %+v", ack)
		}
	})

	t.Run("groupflow consumes the command through groupflow_provision_group", func(t *testing.T) {
		ctx := ctxT(t, 10*time.Second)
		cons, err := gf.js.CreateOrUpdateConsumer(ctx, subj.CommandStream(), jetstream.ConsumerConfig{
			Durable: "groupflow_provision_group", FilterSubject: cmdSubject, AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("groupflow fetch: %v", err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("groupflow ack: %v", err)
		}
	})

	t.Run("producer may not publish events nor read commands", func(t *testing.T) {
		evt := subj.Event("group_provisioned")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := producer.js.Publish(ctx, evt, []byte(`{}`)); err == nil {
			t.Fatalf("producer published %s", evt)
		}
		producer.expectViolation(t, "Publish", evt)
		// Nothing reached the events stream.
		st, err := gf.js.Stream(ctxT(t, 5*time.Second), subj.EventStream())
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != 0 {
			t.Fatalf("events stream holds %d messages after a refused publish", n)
		}
		if _, err := producer.nc.SubscribeSync(subj.Commands()); err != nil {
			t.Fatal(err)
		}
		producer.expectViolation(t, "Subscription", subj.Commands())
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		if _, err := producer.js.CreateOrUpdateConsumer(ctx2, subj.CommandStream(), jetstream.ConsumerConfig{Durable: "spy"}); err == nil {
			t.Fatal("producer created a consumer on the commands stream")
		}
	})

	// groupflow's events: one for the mailer, one not.
	for _, e := range []string{"member_selected", "group_provisioned"} {
		if _, err := gf.js.Publish(ctxT(t, 5*time.Second), subj.Event(e), []byte(`{"type":"`+e+`"}`)); err != nil {
			t.Fatalf("groupflow publish %s: %v", e, err)
		}
	}

	t.Run("mailer consumes member_selected through its durable consumer", func(t *testing.T) {
		ctx := ctxT(t, 15*time.Second)
		// As groupmail configures it (internal/mailer ConsumerConfig).
		cons, err := mailer.js.CreateOrUpdateConsumer(ctx, subj.EventStream(), jetstream.ConsumerConfig{
			Durable:       "groupmail",
			FilterSubject: subj.Event("member_selected"),
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       30 * time.Second,
			MaxDeliver:    10,
			MaxAckPending: 8,
		})
		if err != nil {
			t.Fatalf("mailer create consumer groupmail: %v", err)
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("mailer fetch: %v", err)
		}
		if msg.Subject() != subj.Event("member_selected") {
			t.Fatalf("mailer got %s", msg.Subject())
		}
		if err := msg.InProgress(); err != nil {
			t.Fatal(err)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("mailer ack: %v", err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatalf("mailer consumer info: %v", err)
		}
		if info.AckFloor.Stream == 0 || info.NumAckPending != 0 || info.NumPending != 0 {
			t.Fatalf("consumer after ack: %+v", info)
		}
		// Its own outcome events and dead letters, as JetStream publishes.
		for _, s := range []string{subj.Event("email_sent"), subj.Event("email_failed"), subj.DLQ("member_selected")} {
			if _, err := mailer.js.Publish(ctx, s, []byte(`{}`)); err != nil {
				t.Fatalf("mailer publish %s: %v", s, err)
			}
		}
		// Its send records, as groupmail's store uses them.
		kv, err := mailer.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "GROUPMAIL_SENT", History: 1, TTL: 30 * 24 * time.Hour})
		if err != nil {
			t.Fatalf("mailer kv: %v", err)
		}
		rev, err := kv.Create(ctx, "evt_1", []byte("sending"))
		if err != nil {
			t.Fatalf("mailer kv create: %v", err)
		}
		if _, err := kv.Update(ctx, "evt_1", []byte("sent"), rev); err != nil {
			t.Fatalf("mailer kv update: %v", err)
		}
		if e, err := kv.Get(ctx, "evt_1"); err != nil || string(e.Value()) != "sent" {
			t.Fatalf("mailer kv get: %v %v", e, err)
		}
		if keys, err := kv.ListKeys(ctx); err != nil {
			t.Fatalf("mailer kv keys: %v", err)
		} else {
			var all []string
			for k := range keys.Keys() {
				all = append(all, k)
			}
			if !slices.Equal(all, []string{"evt_1"}) {
				t.Fatalf("mailer kv keys: %v", all)
			}
		}
		if _, err := mailer.js.KeyValue(ctx, "GROUPMAIL_SENT"); err != nil {
			t.Fatalf("mailer kv open: %v", err)
		}
		if err := kv.Delete(ctx, "evt_1"); err != nil {
			t.Fatalf("mailer kv delete: %v", err)
		}
		select {
		case err := <-mailer.errs:
			t.Fatalf("mailer: async error: %v", err)
		default:
		}
	})

	t.Run("mailer may read nothing else and publish nothing else", func(t *testing.T) {
		if _, err := mailer.nc.SubscribeSync(subj.Commands()); err != nil {
			t.Fatal(err)
		}
		mailer.expectViolation(t, "Subscription", subj.Commands())
		if _, err := mailer.nc.SubscribeSync(subj.Events()); err != nil {
			t.Fatal(err)
		}
		mailer.expectViolation(t, "Subscription", subj.Events())

		short := func() context.Context { return ctxT(t, time.Second) }
		// A consumer of every event, or of the commands.
		if _, err := mailer.js.CreateOrUpdateConsumer(short(), subj.EventStream(), jetstream.ConsumerConfig{Durable: "groupmail", FilterSubject: subj.Events()}); err == nil {
			t.Fatal("mailer widened its consumer to every event")
		}
		if _, err := mailer.js.CreateOrUpdateConsumer(short(), subj.CommandStream(), jetstream.ConsumerConfig{Durable: "groupmail", FilterSubject: subj.Command("provision_group")}); err == nil {
			t.Fatal("mailer created a consumer on the commands stream")
		}
		// Direct reads of the events stream.
		if st, err := mailer.js.Stream(short(), subj.EventStream()); err != nil {
			t.Fatalf("mailer stream info: %v", err)
		} else if _, err := st.GetMsg(short(), 2); err == nil {
			t.Fatal("mailer read an event by sequence")
		}
		// groupflow's events and buckets.
		evt := subj.Event("group_provisioned")
		if _, err := mailer.js.Publish(short(), evt, []byte(`{}`)); err == nil {
			t.Fatalf("mailer published %s", evt)
		}
		mailer.expectViolation(t, "Publish", evt)
		if _, err := mailer.js.Publish(short(), "$KV.GROUPFLOW_LEDGER.x", []byte(`{}`)); err == nil {
			t.Fatal("mailer wrote groupflow's ledger")
		}
		mailer.expectViolation(t, "Publish", "$KV.GROUPFLOW_LEDGER.x")
	})

	t.Run("ops reads, replays and deletes dead letters", func(t *testing.T) {
		ctx := ctxT(t, 15*time.Second)
		dl, err := gf.js.Publish(ctx, subj.DLQ("provision_group"), []byte(`{"commandId":"c9"}`))
		if err != nil {
			t.Fatal(err)
		}
		st, err := ops.js.Stream(ctx, subj.DLQStream())
		if err != nil {
			t.Fatalf("ops stream info: %v", err)
		}
		// List (as internal/dlq does: an ordered consumer) and get.
		oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.DLQ("provision_group")}})
		if err != nil {
			t.Fatalf("ops ordered consumer: %v", err)
		}
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil || string(m.Data()) != `{"commandId":"c9"}` {
			t.Fatalf("ops list dead letters: %v %v", m, err)
		}
		raw, err := st.GetMsg(ctx, dl.Sequence)
		if err != nil {
			t.Fatalf("ops get dead letter: %v", err)
		}
		// Replay: republish the command to the commands stream.
		if _, err := ops.js.Publish(ctx, cmdSubject, raw.Data, jetstream.WithExpectStream(subj.CommandStream())); err != nil {
			t.Fatalf("ops replay: %v", err)
		}
		if err := st.DeleteMsg(ctx, dl.Sequence); err != nil {
			t.Fatalf("ops delete dead letter: %v", err)
		}
		if _, err := ops.js.Consumer(ctx, subj.EventStream(), "groupmail"); err != nil {
			t.Fatalf("ops consumer info: %v", err)
		}
		// But no events, and no stream changes.
		evt := subj.Event("group_provisioned")
		if _, err := ops.js.Publish(ctxT(t, time.Second), evt, []byte(`{}`)); err == nil {
			t.Fatalf("ops published %s", evt)
		}
		ops.expectViolation(t, "Publish", evt)
		if err := ops.js.DeleteStream(ctxT(t, time.Second), subj.CommandStream()); err == nil {
			t.Fatal("ops deleted the commands stream")
		}
	})

	t.Run("producer and mailer may not publish other dead letters", func(t *testing.T) {
		producer.drainErrs()
		mailer.drainErrs()
		for _, s := range []string{subj.DLQ("provision_group"), subj.DLQ("member_selected")} {
			if _, err := producer.js.Publish(ctxT(t, time.Second), s, []byte(`{}`)); err == nil {
				t.Fatalf("producer published dead letter %s", s)
			}
			producer.expectViolation(t, "Publish", s)
		}
		if _, err := mailer.js.Publish(ctxT(t, time.Second), subj.DLQ("report_generated"), []byte(`{}`)); err != nil {
			t.Fatalf("mailer dead-letters a report mail: %v", err)
		}
		for _, s := range []string{subj.DLQ("provision_group"), subj.DLQ("generate_report"), subj.DLQ("email_sent")} {
			if _, err := mailer.js.Publish(ctxT(t, time.Second), s, []byte(`{}`)); err == nil {
				t.Fatalf("mailer published dead letter %s", s)
			}
			mailer.expectViolation(t, "Publish", s)
		}
	})

	t.Run("a forged dead letter published with the mailer's credentials is refused by replay", func(t *testing.T) {
		ops.drainErrs() // refusals the subtests above provoked
		ctx := ctxT(t, 15*time.Second)
		m := nats.NewMsg(subj.DLQ("member_selected"))
		m.Data = []byte(`{"id":"forged-1","membership":"sync","people":[{"email":"a@example.com"}]}`)
		m.Header.Set(dlq.HeaderOriginalSubject, subj.Command("provision_group"))
		m.Header.Set(dlq.HeaderCommandType, "provision_group")
		m.Header.Set(dlq.HeaderCommandID, "forged-1")
		m.Header.Set(dlq.HeaderReason, "wix: 503")
		ack, err := mailer.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatalf("mailer publish on its DLQ subject: %v", err)
		}
		before := streamMsgs(t, gf, subj.CommandStream())
		store := dlq.NewStore(ops.js, subj)
		res, err := store.Replay(ctx, dlq.Filter{All: true}, dlq.ReplayOptions{})
		if err != nil {
			t.Fatalf("ops replay: %v", err)
		}
		refused := false
		for _, re := range res.Errors {
			refused = refused || (re.Seq == ack.Sequence && re.Refused)
		}
		if res.Replayed != 0 || res.Refused != res.Selected || !refused {
			t.Fatalf("replay of a forged entry: %+v", res)
		}
		if after := streamMsgs(t, gf, subj.CommandStream()); after != before {
			t.Fatalf("commands stream grew from %d to %d: the forged entry ran", before, after)
		}
		e, err := store.Get(ctx, ack.Sequence)
		if err != nil || e.Refused == "" {
			t.Fatalf("ops get: %v, refused %q", err, e.Refused)
		}
		if _, err := store.Purge(ctx, dlq.Filter{CommandType: "member_selected"}); err != nil {
			t.Fatalf("ops purge: %v", err)
		}
		ops.noAsyncErrors(t)
	})

	t.Run("ops runs groupctl status, events tail and send --wait", func(t *testing.T) {
		bin := buildGroupctl(t)
		opsURL := fmt.Sprintf("nats://ops:%s@127.0.0.1:%d", pw["ops"], port)
		groupctl := func(args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"--nats-url", opsURL, "--inbox-prefix", "_INBOX_ops"}, args...)...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("groupctl %s as ops: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errOut.String())
			}
			return out.String()
		}
		// A stand-in processor answers generate_report commands.
		sub, err := gf.nc.Subscribe(subj.Command("generate_report"), func(m *nats.Msg) {
			e := nats.NewMsg(subj.Event("report_generated"))
			e.Header.Set("Groupflow-Command-Id", m.Header.Get(nats.MsgIdHdr))
			e.Data = []byte(`{"commandId":"` + m.Header.Get(nats.MsgIdHdr) + `","totalGroups":7}`)
			_, _ = gf.js.PublishMsg(context.Background(), e)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := gf.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if out := groupctl("send", "report", "--id", "ops-rep-1", "--wait", "--timeout", "30s"); !strings.Contains(out, "report_generated") {
			t.Fatalf("send --wait: %s", out)
		}
		if out := groupctl("status", "ops-rep-1", "--type", "generate_report"); !strings.Contains(out, "report_generated") {
			t.Fatalf("status: %s", out)
		}
		if out := groupctl("events", "tail", "--since", "1h", "--type", "report_generated", "--count", "1"); !strings.Contains(out, "ops-rep-1") {
			t.Fatalf("events tail: %s", out)
		}
		groupctl("dlq", "ls")
	})

	t.Run("ops may not use or change the processor's and the mailer's consumers", func(t *testing.T) {
		ops.drainErrs()
		short := func() context.Context { return ctxT(t, time.Second) }
		if _, err := ops.js.CreateOrUpdateConsumer(short(), subj.EventStream(), jetstream.ConsumerConfig{Durable: "groupmail", FilterSubject: subj.Events()}); err == nil {
			t.Fatal("ops changed the mailer's consumer")
		}
		if err := ops.js.DeleteConsumer(short(), subj.EventStream(), "groupmail"); err == nil {
			t.Fatal("ops deleted the mailer's consumer")
		}
		if err := ops.js.DeleteConsumer(short(), subj.CommandStream(), "groupflow_provision_group"); err == nil {
			t.Fatal("ops deleted the processor's consumer")
		}
		cons, err := ops.js.Consumer(ctxT(t, 5*time.Second), subj.CommandStream(), "groupflow_provision_group")
		if err != nil {
			t.Fatalf("ops consumer info: %v", err)
		}
		if _, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
			t.Fatal("ops pulled from the processor's consumer")
		}
		ops.expectViolation(t, "Publish", "$JS.API.CONSUMER.MSG.NEXT.GROUPS_COMMANDS.groupflow_provision_group")
	})

	t.Run("wrong password is refused", func(t *testing.T) {
		if nc, err := nats.Connect(url, nats.UserInfo("groupflow", "wrong"), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatal("connected with a wrong password")
		}
	})

	// Replies travel on per-user inbox spaces (deploy/nats/accounts.conf): no
	// user may subscribe to the shared _INBOX.> nor to another user's space,
	// so the member_selected events the mailer pulls (with email addresses)
	// reach the mailer only. Every subtest above ran with these prefixes.
	t.Run("inbox isolation: each user reads only its own replies", func(t *testing.T) {
		users := map[string]*client{"producer": producer, "mailer": mailer, "groupflow": gf, "ops": ops}
		for name, c := range users {
			c.drainErrs() // refusals the subtests above provoked
			if got := c.nc.NewInbox(); !strings.HasPrefix(got, "_INBOX_"+name+".") {
				t.Fatalf("%s: inbox %s, want _INBOX_%s.<id>", name, got, name)
			}
		}
		// The spies: the producer tries the shared space, the mailer's space
		// and everything; every other user tries the shared space and the
		// mailer's (the mailer tries the producer's).
		var spies []*nats.Subscription
		spy := func(c *client, subject string) {
			t.Helper()
			sub, err := c.nc.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			c.expectViolation(t, "Subscription", subject)
			spies = append(spies, sub)
		}
		spy(producer, "_INBOX.>")
		spy(producer, "_INBOX_mailer.>")
		spy(producer, "_INBOX_*.>")
		spy(producer, ">")
		spy(gf, "_INBOX.>")
		spy(gf, "_INBOX_mailer.>")
		spy(ops, "_INBOX.>")
		spy(ops, "_INBOX_mailer.>")
		spy(mailer, "_INBOX.>")
		spy(mailer, "_INBOX_producer.>")

		// A second mailer connection may watch the mailer's own space: it
		// shows that the delivery below really travels on _INBOX_mailer.>.
		witness := connect(t, url, "mailer", pw["mailer"])
		own, err := witness.nc.SubscribeSync("_INBOX_mailer.>")
		if err != nil {
			t.Fatal(err)
		}
		witness.noAsyncErrors(t)

		ctx := ctxT(t, 10*time.Second)
		const email = "x@example.com"
		if _, err := gf.js.Publish(ctx, subj.Event("member_selected"), []byte(`{"email":"`+email+`"}`)); err != nil {
			t.Fatal(err)
		}
		cons, err := mailer.js.Consumer(ctx, subj.EventStream(), "groupmail")
		if err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("mailer fetch: %v", err)
		}
		if !bytes.Contains(m.Data(), []byte(email)) {
			t.Fatalf("mailer got %s", m.Data())
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("mailer ack: %v", err)
		}
		mailer.noAsyncErrors(t)

		carries := func(sub *nats.Subscription) bool {
			seen := false
			for {
				sm, err := sub.NextMsg(300 * time.Millisecond)
				if err != nil {
					return seen
				}
				if bytes.Contains(sm.Data, []byte(email)) {
					seen = true
				}
			}
		}
		if !carries(own) {
			t.Fatal("the mailer's delivery did not travel on _INBOX_mailer.>")
		}
		for _, sub := range spies {
			if carries(sub) {
				t.Errorf("a spy on %s saw the mailer's delivery", sub.Subject)
			}
		}
	})

	// The flip side: a client that keeps the default _INBOX prefix is refused
	// the subscription to its replies, so its requests time out (no
	// JetStream publish here: it would store the message without an ack).
	t.Run("a client without its inbox prefix gets no replies", func(t *testing.T) {
		bare := connectInbox(t, url, "producer", pw["producer"], "")
		if _, err := bare.nc.Request("$JS.API.INFO", nil, time.Second); err == nil {
			t.Fatal("a request with replies on _INBOX got an answer")
		}
		bare.expectViolation(t, "Subscription", "_INBOX.")
		if _, err := producer.nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
			t.Fatalf("the same request on _INBOX_producer: %v", err)
		}
	})

	t.Run("only ops creates, lists and removes schedules", func(t *testing.T) {
		ctx := ctxT(t, 15*time.Second)
		spec := schedule.Spec{Kind: "report", Name: "weekly", Cron: "0 0 8 * * MON", TimeZone: "Europe/Berlin", Body: []byte(`{"allGroups":true}`)}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := schedule.Create(short, producer.js, subj, spec); err == nil {
			t.Fatal("producer created a schedule")
		}
		producer.expectViolation(t, "Publish", subj.Schedule("report.weekly"))
		if _, err := schedule.Create(ctxT(t, time.Second), gf.js, subj, spec); err == nil {
			t.Fatal("groupflow created a schedule")
		}
		gf.expectViolation(t, "Publish", subj.Schedule("report.weekly"))
		// Fires are the server's: nobody forges one.
		fired := subj.Fired("generate_report", "report.weekly")
		for _, c := range []*client{gf, ops, producer} {
			if _, err := c.js.Publish(ctxT(t, time.Second), fired, []byte(`{}`)); err == nil {
				t.Fatalf("a client published %s", fired)
			}
			c.expectViolation(t, "Publish", fired)
		}
		if _, err := schedule.Create(ctx, ops.js, subj, spec); err != nil {
			t.Fatalf("ops create schedule: %v", err)
		}
		list, err := schedule.List(ctx, ops.js, subj)
		if err != nil || len(list) != 1 || list[0].Pattern != "0 0 8 * * MON" || list[0].TimeZone != "Europe/Berlin" {
			t.Fatalf("ops list schedules: %+v %v", list, err)
		}
		if ok, err := schedule.Remove(ctx, ops.js, subj, "report", "weekly"); err != nil || !ok {
			t.Fatalf("ops remove schedule: %v %v", ok, err)
		}
		if list, err := schedule.List(ctx, ops.js, subj); err != nil || len(list) != 0 {
			t.Fatalf("after remove: %+v %v", list, err)
		}
		// groupflow's relay consumes the fired subjects.
		if _, err := gf.js.CreateOrUpdateConsumer(ctx, subj.ScheduleStream(), jetstream.ConsumerConfig{
			Durable: "groupflow_schedule_relay", FilterSubject: subj.FiredAll(), AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Fatalf("groupflow relay consumer: %v", err)
		}
	})

	t.Run("mailer reads report_generated and the reports bucket, writes neither", func(t *testing.T) {
		ctx := ctxT(t, 15*time.Second)
		if _, err := gf.js.Publish(ctx, subj.Event("report_generated"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		cons, err := mailer.js.CreateOrUpdateConsumer(ctx, subj.EventStream(), jetstream.ConsumerConfig{
			Durable: "groupmail_reports", FilterSubject: subj.Event("report_generated"), AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatalf("mailer create consumer groupmail_reports: %v", err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil || m.Subject() != subj.Event("report_generated") {
			t.Fatalf("mailer fetch report_generated: %v", err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		obs, err := mailer.js.ObjectStore(ctx, broker.ReportsBucket)
		if err != nil {
			t.Fatalf("mailer open reports: %v", err)
		}
		if b, err := obs.GetBytes(ctx, "report-1.csv"); err != nil || len(b) != 400_000 {
			t.Fatalf("mailer read report: %d bytes, %v", len(b), err)
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := obs.PutBytes(short, "forged.html", []byte("x")); err == nil {
			t.Fatal("mailer wrote a report")
		}
	})

	// groupctl status and groups ls/show ask the processor on groups.ops.*;
	// it answers on the operator's inbox space (allow_responses).
	t.Run("ops asks the processor on groups.ops.* and gets its answer", func(t *testing.T) {
		sub, err := gf.nc.Subscribe(subj.Ops(messages.OpsProgress), func(m *nats.Msg) { _ = m.Respond([]byte(`{"instance":"i"}`)) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := gf.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := ops.nc.Request(subj.Ops(messages.OpsProgress), []byte(`{}`), 5*time.Second)
		if err != nil || string(m.Data) != `{"instance":"i"}` {
			t.Fatalf("ops request: %v %v", m, err)
		}
		select {
		case err := <-gf.errs:
			t.Fatalf("groupflow: async error answering: %v", err)
		default:
		}
	})
}

// ---------------------------------------------------------------------------
// cluster configs

func TestClusterConfigsParse(t *testing.T) {
	bin := testutil.NATSServerBin(t)
	dir := filepath.Join(testutil.MustModuleRoot(t), "deploy", "nats")
	env := append(os.Environ(), "NATS_SERVER_NAME=n1",
		"GF_PRODUCER_PASSWORD=p", "GF_MAILER_PASSWORD=m", "GF_GROUPFLOW_PASSWORD=g", "GF_OPS_PASSWORD=o")
	for _, f := range []string{"cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf", "cluster/docker.conf", "server.conf"} {
		cmd := exec.Command(bin, "-t", "-c", filepath.Join(dir, f))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "is valid") {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
	// The durability and size settings the comments promise.
	common, err := os.ReadFile(filepath.Join(dir, "cluster", "common.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^max_payload: 8MB$`).Match(common) {
		t.Error("common.conf: max_payload: 8MB missing")
	}
	for _, f := range []string{"cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf", "cluster/docker.conf", "server.conf"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^\s*sync_interval: always$`).Match(b) {
			t.Errorf("%s: jetstream sync_interval: always missing", f)
		}
	}
}

// TestClusterStarts runs the three loopback node configs (copies with free
// ports; store_dir is relative to the working directory, a temp dir here),
// waits for the JetStream meta leader and creates an R3 stream.
func TestClusterStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	testutil.NATSServerBin(t)
	start := time.Now()
	src := filepath.Join(testutil.MustModuleRoot(t), "deploy", "nats", "cluster")
	var work string
	var clientURLs []string
	// Client, cluster and monitoring port of each node: the configs' 4222-4224,
	// 6222-6224 and 8222-8224 become free ports; a bind race lost to another
	// process restarts all three nodes on new ports in a new directory.
	testutil.WithPorts(t, 9, func(ports []int) error {
		work, clientURLs = t.TempDir(), nil
		var repl []string
		for j, base := range []int{4222, 6222, 8222} {
			for i := range 3 {
				p := ports[3*j+i]
				repl = append(repl, fmt.Sprint(base+i), fmt.Sprint(p))
				if base == 4222 {
					clientURLs = append(clientURLs, fmt.Sprintf("nats://127.0.0.1:%d", p))
				}
			}
		}
		r := strings.NewReplacer(repl...)
		for _, f := range []string{"common.conf", "n1.conf", "n2.conf", "n3.conf"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(work, f), []byte(r.Replace(string(b))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var stops []func()
		for i := 1; i <= 3; i++ {
			stop, err := startServerOn(t, fmt.Sprintf("n%d", i), work, nil, strings.TrimPrefix(clientURLs[i-1], "nats://"),
				"-c", filepath.Join(work, fmt.Sprintf("n%d.conf", i)))
			if err != nil {
				for _, s := range stops {
					s()
				}
				return err
			}
			stops = append(stops, stop)
		}
		return nil
	})
	nc, err := nats.Connect(strings.Join(clientURLs, ","), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Generous: on a loaded 2-core CI machine the meta leader election and
	// the first R3 placement can take tens of seconds.
	ctx := ctxT(t, 120*time.Second)
	var st jetstream.Stream
	var lastErr error
	for {
		// Fails until the nodes have met and elected a meta leader. A request
		// sent before that may get no answer at all: each attempt has its own
		// deadline, so the loop asks again instead of waiting out ctx.
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err = js.CreateOrUpdateStream(attempt, jetstream.StreamConfig{
			Name: "GROUPS_COMMANDS", Subjects: []string{"groups.cmd.>"}, Replicas: 3, Storage: jetstream.FileStorage,
		})
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create R3 stream: %v (last error %v)", err, lastErr)
	}
	big := bytes.Repeat([]byte("x"), 6<<20) // a large roster fits max_payload 8MB
	for i := range 5 {
		data := []byte(fmt.Sprintf(`{"n":%d}`, i))
		if i == 4 {
			data = big
		}
		if _, err := js.Publish(ctx, "groups.cmd.provision_group", data); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Name != "groupflow" || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info: %+v", info.Cluster)
	}
	if info.State.Msgs != 5 {
		t.Fatalf("stream holds %d messages, want 5", info.State.Msgs)
	}
	for i := 1; i <= 3; i++ {
		if _, err := os.Stat(filepath.Join(work, "data", "nats", fmt.Sprintf("n%d", i), "jetstream")); err != nil {
			t.Errorf("store dir of n%d: %v", i, err)
		}
	}
	t.Logf("3-node cluster up, R3 stream created and written in %v (leader %s)", time.Since(start).Round(time.Millisecond), info.Cluster.Leader)
	clusterSchedules(ctx, t, js)
}

// clusterSchedules: the processor's provisioning updates the R3 commands
// stream made above (an older config) in place, keeping its messages and
// discarding new, and creates the R3 schedules stream, where a schedule
// fires on the cluster, each fire with its own command id.
func clusterSchedules(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	subj := messages.Subjects{}
	if err := (broker.Topology{Subjects: subj, Replicas: 3}).Provision(ctx, js); err != nil {
		t.Fatalf("provision R3: %v", err)
	}
	st, err := js.Stream(ctx, subj.CommandStream())
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.Config.AllowMsgSchedules || info.Config.Discard != jetstream.DiscardNew || info.State.Msgs != 5 || info.Config.Replicas != 3 {
		t.Fatalf("after provision: schedules %v, discard %v, %d messages, R%d", info.Config.AllowMsgSchedules, info.Config.Discard, info.State.Msgs, info.Config.Replicas)
	}
	sst, err := js.Stream(ctx, subj.ScheduleStream())
	if err != nil {
		t.Fatal(err)
	}
	if info := sst.CachedInfo(); !info.Config.AllowMsgSchedules || info.Config.Replicas != 3 {
		t.Fatalf("schedules stream: schedules %v, R%d", info.Config.AllowMsgSchedules, info.Config.Replicas)
	}
	oc, err := sst.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj.Fired(messages.CmdGenerateReport, "report.r3")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schedule.Create(ctx, js, subj, schedule.Spec{Kind: "report", Name: "r3", Every: time.Second, Body: []byte(`{}`)}); err != nil {
		t.Fatalf("schedule on R3: %v", err)
	}
	ids := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(ids) < 2 {
		m, err := oc.Next(jetstream.FetchMaxWait(10 * time.Second))
		// On a loaded machine the young cluster's JetStream API may briefly
		// have no responder (a leader moving): the ordered consumer is made
		// again on the next call. Any other error, or none in time, fails.
		if errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // retry backoff, not a wait for an event
			continue
		}
		if err != nil {
			t.Fatalf("no fire on the cluster: %v", err)
		}
		id := messages.FiredCommandID(m.Headers())
		if id == "" || ids[id] {
			t.Fatalf("fire %d: id %q (seen %v)", len(ids), id, ids)
		}
		ids[id] = true
	}
	if ok, err := schedule.Remove(ctx, js, subj, "report", "r3"); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}
}

// ---------------------------------------------------------------------------
// Grafana dashboard

// exportedMetrics are the metric families groupflow exports (histograms
// also as _bucket, _sum, _count). Each non-router one must be defined in the
// Go source, so a rename there fails this test rather than blanking a panel.
var exportedMetrics = map[string]bool{ // name -> histogram
	"groupflow_commands_total":                        false,
	"groupflow_command_duration_seconds":              true,
	"groupflow_dlq_depth":                             false,
	"groupflow_consumer_pending":                      false,
	"groupflow_consumer_ack_pending":                  false,
	"groupflow_wix_requests_total":                    false,
	"groupflow_wix_throttled_total":                   false,
	"groupflow_wix_request_duration_seconds":          true,
	"groupflow_wix_limiter_wait_seconds":              true,
	"groupflow_router_handler_execution_time_seconds": true, // Watermill, namespace groupflow subsystem router
}

func TestGrafanaDashboardMetrics(t *testing.T) {
	root := testutil.MustModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "groupflow-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		SchemaVersion int         `json:"schemaVersion"`
		UID           string      `json:"uid"`
		Panels        []dashPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name, Type string
				Query      any
			}
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.SchemaVersion < 36 || dash.UID == "" {
		t.Errorf("schemaVersion %d, uid %q", dash.SchemaVersion, dash.UID)
	}
	hasDS := false
	var exprs []string
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			hasDS = true
		}
		if q, ok := v.Query.(map[string]any); ok {
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	if !hasDS {
		t.Error("no datasource template variable")
	}
	var walk func([]dashPanel)
	titles := 0
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if p.Type != "row" {
				titles++
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, p.Datasource.UID)
				}
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: empty expr", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)

	metricRe := regexp.MustCompile(`\bgroupflow_[a-zA-Z0-9_]+`)
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricRe.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("expr references no groupflow metric: %s", e)
		}
		for _, n := range names {
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && exportedMetrics[b] {
					base = b
				}
			}
			if _, ok := exportedMetrics[base]; !ok {
				t.Errorf("expr references %s, which groupflow does not export: %s", n, e)
				continue
			}
			if base != n && !exportedMetrics[base] {
				t.Errorf("%s is not a histogram: %s", base, e)
			}
			used[base] = true
		}
	}
	for m := range exportedMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}

	// The metric names are still defined in the Go source.
	var src strings.Builder
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "data" || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, _ := os.ReadFile(p)
			src.Write(b)
		}
		return nil
	})
	for m := range exportedMetrics {
		if strings.HasPrefix(m, "groupflow_router_") {
			if !strings.Contains(src.String(), `NewPrometheusMetricsBuilder(`) || !strings.Contains(src.String(), `"groupflow", "router"`) {
				t.Errorf("the Watermill router metrics (namespace groupflow, subsystem router) are no longer registered")
			}
			continue
		}
		if !strings.Contains(src.String(), `"`+m+`"`) {
			t.Errorf("metric %s is not defined in the Go source any more", m)
		}
	}
	t.Logf("%d panels, %d queries, %d metrics", titles, len(exprs), len(used))
}

type dashPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// ---------------------------------------------------------------------------
// docker-compose and Kubernetes manifests: parse, and check the settings the
// README promises (docker and kubectl cannot run here).

func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// dig walks maps by key and lists by index ("0").
func dig(v any, path ...string) any {
	for _, p := range path {
		switch m := v.(type) {
		case map[string]any:
			v = m[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(m) {
				return nil
			}
			v = m[i]
		default:
			return nil
		}
	}
	return v
}

func TestComposeAndKubernetesManifests(t *testing.T) {
	dir := filepath.Join(testutil.MustModuleRoot(t), "deploy")
	compose := yamlDocs(t, filepath.Join(dir, "docker-compose.yml"))[0]
	for _, svc := range []string{"n1", "n2", "n3", "groupflow", "wixsim", "groupmail", "mailpit"} {
		if dig(compose, "services", svc, "healthcheck", "test") == nil {
			t.Errorf("compose: service %s has no healthcheck", svc)
		}
	}
	gfCmd := fmt.Sprint(dig(compose, "services", "groupflow", "command"))
	for _, want := range []string{"@n1:4222", "@n2:4222", "@n3:4222", "--replicas 3", "--wix-base-url http://wixsim:8090",
		"--nats-inbox-prefix _INBOX_groupflow"} {
		if !strings.Contains(gfCmd, want) {
			t.Errorf("compose: groupflow command %s lacks %q", gfCmd, want)
		}
	}
	// The inbox prefixes match the users' inbox spaces in accounts.conf.
	gmCmd := fmt.Sprint(dig(compose, "services", "groupmail", "command"))
	for _, want := range []string{"nats://mailer:", "--nats-inbox-prefix _INBOX_mailer"} {
		if !strings.Contains(gmCmd, want) {
			t.Errorf("compose: groupmail command %s lacks %q", gmCmd, want)
		}
	}
	if img := fmt.Sprint(dig(compose, "services", "n1", "image")); !strings.HasPrefix(img, "nats:2.12") {
		t.Errorf("compose: NATS image %s", img)
	}
	if dig(compose, "services", "n2", "environment", "NATS_SERVER_NAME") != "n2" {
		t.Error("compose: n2 is not named n2")
	}

	dep := yamlDocs(t, filepath.Join(dir, "k8s", "groupflow-deployment.yaml"))[0]
	if r, _ := dig(dep, "spec", "replicas").(int); r < 2 {
		t.Errorf("deployment replicas %v", r)
	}
	pod := dig(dep, "spec", "template", "spec")
	if g, _ := dig(pod, "terminationGracePeriodSeconds").(int); g <= 25 {
		t.Errorf("terminationGracePeriodSeconds %d must exceed groupflow's 25 s shutdown grace", g)
	}
	c := dig(pod, "containers", "0")
	if dig(c, "livenessProbe", "httpGet", "path") != "/healthz" || dig(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Error("deployment probes are not /healthz (liveness) and /readyz (readiness)")
	}
	if dig(c, "securityContext", "readOnlyRootFilesystem") != true || dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("deployment is not non-root with a read-only root filesystem")
	}
	if dig(c, "resources", "requests", "cpu") == nil || dig(c, "resources", "requests", "memory") == nil {
		t.Error("deployment has no resource requests")
	}
	if dig(dep, "spec", "template", "metadata", "annotations", "prometheus.io/scrape") != "true" {
		t.Error("deployment has no Prometheus scrape annotation")
	}
	env := map[string]any{}
	for _, e := range dig(c, "env").([]any) {
		env[fmt.Sprint(dig(e, "name"))] = dig(e, "valueFrom")
	}
	if dig(env["WIX_API_KEY"], "secretKeyRef", "key") != "WIX_API_KEY" {
		t.Error("WIX_API_KEY does not come from a Secret")
	}
	if dig(env["WIX_SITE_ID"], "configMapKeyRef", "key") != "WIX_SITE_ID" {
		t.Error("WIX_SITE_ID does not come from the ConfigMap")
	}
	cm := yamlDocs(t, filepath.Join(dir, "k8s", "configmap.yaml"))[0]
	if p := dig(cm, "data", "GROUPFLOW_NATS_INBOX_PREFIX"); p != "_INBOX_groupflow" {
		t.Errorf("configmap: GROUPFLOW_NATS_INBOX_PREFIX %v, want _INBOX_groupflow", p)
	}
	for _, f := range []string{"service.yaml", "secret.example.yaml", "configmap.yaml"} {
		for _, d := range yamlDocs(t, filepath.Join(dir, "k8s", f)) {
			if d["apiVersion"] == nil || d["kind"] == nil {
				t.Errorf("%s: document without apiVersion/kind", f)
			}
		}
	}
	vals := yamlDocs(t, filepath.Join(dir, "k8s", "nats-values.yaml"))[0]
	if dig(vals, "config", "cluster", "replicas") != 3 || dig(vals, "config", "jetstream", "fileStore", "pvc", "size") == nil ||
		dig(vals, "config", "merge", "jetstream", "sync_interval") != "always" {
		t.Error("nats-values.yaml: want 3 replicas, a file store PVC and sync_interval: always")
	}
}
