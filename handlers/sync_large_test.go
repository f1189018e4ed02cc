package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	goruntime "runtime"
	"strings"
	"sync/atomic"
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

// TestProvisionSyncRemovalsBeyondOneMessage: a sync (allowMassRemoval)
// whose removals take more bytes than one broker message holds (30,000
// member ids, 1.2 MB, against nats-server's default max payload of 1 MiB,
// what an external cluster has unless configured otherwise) removes them
// all and completes with one event. Its removal plan, a checkpoint, failed
// every attempt with "maximum payload exceeded", and the command was
// dead-lettered after 10.
func TestProvisionSyncRemovalsBeyondOneMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("30,000 members")
	}
	e := newWF(t, testenv.WithMaxPayload(1<<20))
	st := e.Site
	var ids []string
	for i := range 30000 {
		ids = append(ids, st.AddMember(wixsim.MemberSeed{FirstName: "Old", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("old%d@example.com", i)}).ID)
	}
	keep := st.AddMember(wixsim.MemberSeed{FirstName: "Keep", LoginEmail: "keep@example.com"})
	g := st.AddGroup("Large Sync", "", ids...)
	e.start(runtime.Adapt(provisionHandler(e)))
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "large-sync", map[string]any{"group": map[string]any{"name": "Large Sync"},
		"membership": "sync", "people": []messages.Person{{Email: keep.LoginEmail}}, "allowMassRemoval": true}))
	if ev.Added != 1 || ev.GroupID != g.ID || !ev.Truncated || ev.Full == nil {
		t.Fatalf("added %d to %s, truncated %v (%+v), %d removed, %d not removed; want 1 to %s, truncated", ev.Added, ev.GroupID, ev.Truncated, ev.Full, len(ev.Removed), len(ev.NotRemoved), g.ID)
	}
	raw, err := e.Outcomes().Get(context.Background(), *ev.Full)
	if err != nil {
		t.Fatal(err)
	}
	var full messages.GroupProvisioned
	if err := json.Unmarshal(raw, &full); err != nil || len(full.Removed) != len(ids)-1 {
		t.Fatalf("full event: %d removed (%v), want %d", len(full.Removed), err, len(ids)-1)
	}
	sameSet(t, "members", st.GroupMemberIDs(g.ID), []string{ids[0], keep.ID}) // ids[0]: the group's admin
	// Once the event is out, the plan's step key and parts are deleted
	// (Lease.Prune, right after the publish).
	awaitNoKeys(t, e, ledger.Key("cmd", messages.CmdProvisionGroup, "large-sync", "step"))
}

// awaitNoKeys waits until the ledger holds no key under prefix.
func awaitNoKeys(t *testing.T, e *wfEnv, prefix string) {
	t.Helper()
	kv, err := e.JS.KeyValue(context.Background(), broker.LedgerBucket)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		keys, err := kv.ListKeysFiltered(context.Background(), prefix+".>")
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for k := range keys.Keys() {
			left = append(left, k)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger keys left under %s: %v", prefix, left)
		}
		goruntime.Gosched()
	}
}

// TestProvisionGroupMembersBounded: a Wix whose List Group Members brings
// fresh member ids on every page, too many to count, never ends (the idle
// guard sees new ids each page): a reuse of that group fails permanently
// once it lists more than MaxMembers, instead of reading and holding
// members for ever.
func TestProvisionGroupMembersBounded(t *testing.T) {
	e := newWF(t)
	st := e.Site
	ann := st.AddMember(wixsim.MemberSeed{FirstName: "Ann", LoginEmail: "ann@example.com"})
	g := st.AddGroup("Endless", "", ann.ID)
	var lists atomic.Int64
	client := proxiedWix(t, e.Wix.SiteID, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/groups/"+g.ID+"/members") {
			e.Wix.Sim.Handler().ServeHTTP(w, r)
			return
		}
		n := lists.Add(1)
		var ms []string
		for i := range 100 {
			ms = append(ms, fmt.Sprintf(`{"memberId":"00000000-0000-4000-8000-%012d","role":{"value":"MEMBER"}}`, n*100+int64(i)))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"members":[%s],"metadata":{"count":100,"tooManyToCount":true}}`, strings.Join(ms, ","))
	})
	e.Sites = WixSites(client)
	e.start(runtime.Adapt(NewProvisionGroup(e.Sites, e.Ledger, ProvisionConfig{MaxMembers: 1000}, e.Log)))
	m := e.send(messages.CmdProvisionGroup, "endless-members", map[string]any{"group": map[string]any{"name": "Endless"}, "people": []messages.Person{{Email: ann.LoginEmail}}})
	expectFailed(t, e, m, "endless-members", messages.FailurePermanent, "more than 1000 members")
	if n := lists.Load(); n != 11 {
		t.Errorf("%d List Group Members calls, want 11 (the 11th brings the 1,001st member)", n)
	}
}

// TestProvisionInvitationsBeyondOneMessage: a group's pending invitations
// (a shared ledger key) outgrow the broker's max payload (4,200 invitations
// of private members, ~160 KB, on a 128 KiB broker): the key is kept in
// parts, and a later command for the first 1,400 again neither re-invites
// them nor fails. One write of 160 KB had failed every provision of the
// group from then on ("maximum payload exceeded", permanent).
func TestProvisionInvitationsBeyondOneMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("4,200 members")
	}
	e := newWF(t, testenv.WithMaxPayload(128<<10))
	st := e.Site
	st.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	var people [3][]messages.Person
	for i := range 4200 {
		m := st.AddMember(wixsim.MemberSeed{FirstName: "Priv", LastName: fmt.Sprint(i), LoginEmail: fmt.Sprintf("priv%d@example.com", i), Private: true})
		people[i/1400] = append(people[i/1400], messages.Person{Email: m.LoginEmail})
	}
	e.start(runtime.Adapt(provisionHandler(e)))
	var groupID string
	for i, ps := range people {
		ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, fmt.Sprintf("invites-%d", i), map[string]any{
			"group": map[string]any{"name": "Many Invites"}, "people": ps}))
		if ev.Invited != len(ps) || ev.Added != 0 || (groupID != "" && ev.GroupID != groupID) {
			t.Fatalf("command %d: invited %d, added %d, group %s (first %s); want %d invited", i, ev.Invited, ev.Added, ev.GroupID, groupID, len(ps))
		}
		groupID = ev.GroupID
	}
	if n := len(st.Invited(groupID)); n != 4200 {
		t.Fatalf("%d invited on the site, want 4200", n)
	}
	e.Wix.Sim.ResetCalls()
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "invites-again", map[string]any{
		"group": map[string]any{"name": "Many Invites"}, "people": people[0]}))
	if ev.Invited != 1400 || ev.Added != 0 || len(ev.NotAdded) != 0 || e.calls(wix.OpGroupMembersAdd) != 0 {
		t.Fatalf("again: %d invited, %d added, %d not added, %d Add Group Members calls; want 1400 invited before, no call",
			ev.Invited, ev.Added, len(ev.NotAdded), e.calls(wix.OpGroupMembersAdd))
	}
}
