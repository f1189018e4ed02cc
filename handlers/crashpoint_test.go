package handlers

import (
	"context"
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// crashEnv runs provision_group on a ledger whose bucket can "crash" the
// process at a given write (testenv.CrashKV): the seam is the KV, not a hook
// in the handler.
type crashEnv struct {
	*wfEnv
	cfg ProvisionConfig
}

// run starts a runtime whose ledger writes go through kv (armed or not).
func (c *crashEnv) run(kv *testenv.CrashKV) *testenv.Running {
	l := ledger.New(kv)
	c.Ledger = l
	return c.start(runtime.Adapt(NewProvisionGroup(c.Sites, l, c.cfg, c.Log)))
}

func (c *crashEnv) kv(t *testing.T) *testenv.CrashKV {
	kv, err := c.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.NewCrashKV(kv)
}

// streamWrites sums the last sequences of every stream (KV buckets and
// object stores included): the JetStream appends made so far.
func streamWrites(t *testing.T, e *wfEnv) uint64 {
	t.Helper()
	var n uint64
	for _, seq := range streamSeqs(e) {
		n += seq
	}
	return n
}

// streamSeqs returns every stream's last sequence.
func streamSeqs(e *wfEnv) map[string]uint64 {
	out := map[string]uint64{}
	for info := range e.JS.ListStreams(context.Background()).Info() {
		out[info.Config.Name] = info.State.LastSeq
	}
	return out
}

func newCrashEnv(t *testing.T) *crashEnv {
	e := newWF(t)
	return &crashEnv{wfEnv: e, cfg: ProvisionConfig{DefaultRegion: "US", CreateSettle: 6 * time.Second, SettlePoll: 200 * time.Millisecond}}
}

func onePerson(name, email string) map[string]any {
	return map[string]any{"group": map[string]any{"name": name, "privacyStatus": "PRIVATE"}, "people": []messages.Person{{Email: email}}}
}

// TestProvisionWrites: a one-person roster for a new group costs 3
// JetStream writes (the command's own publish aside): the record's create,
// the completion, the event. No checkpoint: a resumed command finds the
// group by name (see TestProvisionCrashPoints).
func TestProvisionWrites(t *testing.T) {
	c := newCrashEnv(t)
	c.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner", LoginEmail: "owner@example.com"})
	c.Site.AddMember(wixsim.MemberSeed{FirstName: "Ann", LastName: "Lee", LoginEmail: "ann@example.com"})
	kv := c.kv(t)
	c.run(kv)
	// A warm-up command, so streams and consumers exist before counting.
	provisioned(t, c.wfEnv, c.send(messages.CmdProvisionGroup, "warm-1", onePerson("Warm", "ann@example.com")))
	awaitStored(t, c.wfEnv, "warm-1")
	before := streamWrites(t, c.wfEnv)
	w0, _ := kv.Writes()
	ev := provisioned(t, c.wfEnv, c.send(messages.CmdProvisionGroup, "writes-1", onePerson("Writes", "ann@example.com")))
	if ev.Added != 1 || ev.Reused {
		t.Fatalf("event: %+v", ev)
	}
	awaitStored(t, c.wfEnv, "writes-1")
	w1, keys := kv.Writes()
	total := streamWrites(t, c.wfEnv) - before - 1 // the command's publish
	t.Logf("JetStream writes: %d (ledger %d: %v)", total, w1-w0, keys[w0:])
	if total > 3 {
		t.Errorf("a one-person provision_group cost %d JetStream writes, want <= 3 (ledger: %v)", total, keys[w0:])
	}
}

// TestProvisionCrashPoints stops the handler at every ledger write of a
// one-person provision_group (before the write is stored, and after it is
// stored but before its reply), with Query Groups lagging behind creates;
// another instance resumes once the lease expires. Every time: one group,
// one Create Group, the member added, one group_provisioned event. A crash
// after the event (before the ack) is the command delivered again.
func TestProvisionCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts the runtime for every write boundary")
	}
	c := newCrashEnv(t)
	c.Site.SetModes(wixsim.Modes{QueryGroupsLag: 3 * time.Second})
	c.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner", LoginEmail: "owner@example.com"})
	ann := c.Site.AddMember(wixsim.MemberSeed{FirstName: "Ann", LastName: "Lee", LoginEmail: "ann@example.com"})

	// A clean run tells how many writes there are.
	kv := c.kv(t)
	r := c.run(kv)
	provisioned(t, c.wfEnv, c.send(messages.CmdProvisionGroup, "clean-1", onePerson("Clean", "ann@example.com")))
	n, keys := kv.Writes()
	t.Logf("%d ledger writes: %v", n, keys)
	// After the last write, the event: a crash before the ack redelivers the
	// command (here: it is sent again), answered from the record.
	awaitStored(t, c.wfEnv, "clean-1")
	creates, appends, seqs := c.calls(wix.OpGroupsCreate), streamWrites(t, c.wfEnv), streamSeqs(c.wfEnv)
	again := provisioned(t, c.wfEnv, c.send(messages.CmdProvisionGroup, "clean-1", onePerson("Clean", "ann@example.com"), "Nats-Msg-Id", "clean-1-again"))
	if got := countEvents(c.wfEnv, "clean-1"); got != 1 || c.calls(wix.OpGroupsCreate) != creates || again.Added != 1 {
		t.Fatalf("after the event: %d events, %d more creates, %+v", got, c.calls(wix.OpGroupsCreate)-creates, again)
	}
	if d := streamWrites(t, c.wfEnv) - appends; d != 1 {
		t.Errorf("answering from the record: %d JetStream writes besides the command's publish, want 0 (streams before %v, after %v)", d-1, seqs, streamSeqs(c.wfEnv))
	}
	_ = r.Stop()

	for k := 1; k <= n; k++ {
		for _, after := range []bool{false, true} {
			when := fmt.Sprintf("before-%d", k)
			if after {
				when = fmt.Sprintf("after-%d", k)
			}
			t.Run(when, func(t *testing.T) {
				id, name := "crash-"+when, "Crash "+when
				creates := c.calls(wix.OpGroupsCreate)
				crashing := c.kv(t)
				crashing.CrashAt(k, after)
				r1 := c.run(crashing)
				c.Publish(messages.CmdProvisionGroup, fmt.Sprintf(`{"id":%q,"group":{"name":%q,"privacyStatus":"PRIVATE"},"people":[{"email":"ann@example.com"}]}`, id, name))
				select {
				case <-crashing.Crashed():
				case <-time.After(30 * time.Second):
					t.Fatal("no crash")
				}
				_ = r1.Stop()
				r2 := c.run(c.kv(t))
				ev := provisioned(t, c.wfEnv, c.Evts.Next(60*time.Second, testenv.ForCommand(id)))
				_ = r2.Stop()
				groups := c.Site.GroupsByName(name)
				if len(groups) != 1 || ev.GroupID != groups[0].ID {
					t.Fatalf("groups named %q: %v, event group %s", name, groups, ev.GroupID)
				}
				if got := c.calls(wix.OpGroupsCreate) - creates; got != 1 {
					t.Errorf("Create Group sent %d times", got)
				}
				if ms := c.Site.GroupMemberIDs(groups[0].ID); !hasString(ms, ann.ID) {
					t.Errorf("member not added: %v", ms)
				}
				// Reused would misreport the group this command created.
				if ev.Added+ev.AlreadyMembers != 1 || len(ev.NotAdded) != 0 || ev.Reused {
					t.Errorf("event: %+v", ev)
				}
				if got := countEvents(c.wfEnv, id); got != 1 {
					t.Errorf("%d events for %s, want 1", got, id)
				}
			})
		}
	}
}

// awaitStored waits until the event of command id is in the events stream:
// it reaches subscribers before the stream's state counts it.
func awaitStored(t *testing.T, e *wfEnv, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); countEvents(e, id) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the event of %s is not stored", id)
		}
		goruntime.Gosched()
	}
}

// countEvents counts the events stream's messages for command id.
func countEvents(e *wfEnv, id string) int {
	n := 0
	for _, m := range e.Read(e.Subjects.EventStream(), e.Subjects.Events()) {
		if m.Header.Get("Groupflow-Command-Id") == id {
			n++
		}
	}
	return n
}
