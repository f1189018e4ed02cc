package handlers

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"groupflow/internal/failure"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// Private site members are invited, not added: the event counts them apart,
// and a later sync neither re-invites them nor reports them missing (issue
// 13 item 3).
func TestProvisionPrivateMembersInvited(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	pub := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Pub", LoginEmail: "pub@example.com"})
	priv := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Priv", LoginEmail: "priv@example.com", Private: true})
	e.start(runtime.Adapt(provisionHandler(e)))
	body := map[string]any{"group": map[string]any{"name": "Invites"}, "membership": "sync",
		"people": []messages.Person{{Email: pub.LoginEmail}, {Email: priv.LoginEmail}}}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "inv-1", body))
	if ev.Added != 1 || ev.Invited != 1 || ev.AlreadyMembers != 0 || len(ev.NotAdded) != 0 {
		t.Fatalf("first run %+v", ev)
	}
	if inv := e.Site.Invited(ev.GroupID); !slices.Equal(inv, []string{priv.ID}) {
		t.Fatalf("invited %v", inv)
	}
	e.Wix.Sim.ResetCalls()
	ev2 := provisioned(t, e, e.send(messages.CmdProvisionGroup, "inv-2", body))
	if ev2.Added != 0 || ev2.Invited != 1 || ev2.AlreadyMembers != 1 || len(ev2.Removed) != 0 || e.calls(wix.OpGroupMembersAdd) != 0 {
		t.Fatalf("second run %+v, adds %d", ev2, e.calls(wix.OpGroupMembersAdd))
	}
	// Once the invitation is accepted the member counts as a member.
	e.Site.AcceptInvitation(ev.GroupID, priv.ID)
	ev3 := provisioned(t, e, e.send(messages.CmdProvisionGroup, "inv-3", body))
	if ev3.Added != 0 || ev3.Invited != 0 || ev3.AlreadyMembers != 2 {
		t.Fatalf("third run %+v", ev3)
	}
}

// Under "members with approval" a create for a member becomes a group
// request: the event says pending_approval with the request id; a re-send
// while pending makes no second request; after approval a re-send picks
// the group up (issue 13 item 4).
func TestProvisionPendingApproval(t *testing.T) {
	// Each answer shape Create Group may have for a pending create (the SDK's
	// group-only answer is the simulator's default).
	for _, mode := range []string{wixsim.PendingAnswerGroupOnly, wixsim.PendingAnswerWithRequest, wixsim.PendingAnswerRequestID} {
		t.Run("answer="+mode, func(t *testing.T) { testProvisionPendingApproval(t, mode) })
	}
}

func testProvisionPendingApproval(t *testing.T, mode string) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	creator := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Creator", LoginEmail: "c@example.com"})
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	e.Site.SetModes(wixsim.Modes{GroupCreation: wixsim.GroupCreationWithApproval, PendingAnswer: mode})
	e.start(runtime.Adapt(provisionHandler(e)))
	body := map[string]any{"group": map[string]any{"name": "Needs Approval", "description": "Plain words."},
		"creatorId": creator.ID, "people": []messages.Person{{Email: m.LoginEmail}}}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "pend-1", body))
	reqs := e.Site.GroupRequests()
	if ev.Status != messages.ProvisionPendingApproval || ev.GroupID != "" || len(reqs) != 1 || ev.GroupRequestID != reqs[0].ID || ev.Added != 0 {
		t.Fatalf("event %+v, requests %+v", ev, reqs)
	}
	ev2 := provisioned(t, e, e.send(messages.CmdProvisionGroup, "pend-2", body))
	if ev2.Status != messages.ProvisionPendingApproval || ev2.GroupRequestID != ev.GroupRequestID || len(e.Site.GroupRequests()) != 1 {
		t.Fatalf("re-send while pending %+v, %d requests", ev2, len(e.Site.GroupRequests()))
	}
	g, ok := e.Site.ApproveGroupRequest(ev.GroupRequestID)
	if !ok {
		t.Fatal("approve")
	}
	ev3 := provisioned(t, e, e.send(messages.CmdProvisionGroup, "pend-3", body))
	if ev3.Status != "" || ev3.GroupID != g.ID || ev3.Added != 1 || !slices.Contains(e.Site.GroupMemberIDs(g.ID), m.ID) {
		t.Fatalf("after approval %+v", ev3)
	}
	if n := len(e.Site.GroupsByName("Needs Approval")); n != 1 {
		t.Fatalf("%d groups", n)
	}
}

// With Query Groups eventually consistent, a create whose answer was lost
// still makes exactly one group: the redelivery waits for the group to show
// up instead of creating a second (issue 13 item 6).
func TestProvisionLostCreateResponseQueryLag(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	e.Site.SetModes(wixsim.Modes{QueryGroupsLag: time.Hour})
	h := NewProvisionGroup(e.Sites, e.Ledger, ProvisionConfig{DefaultRegion: "US", CreateSettle: time.Hour, SettlePoll: 10 * time.Millisecond}, e.Log)
	crashed := false
	h.hook = func(_ context.Context, point string) error {
		switch {
		case point == "created" && !crashed:
			crashed = true // between "create sent" and "create answered"
			return errors.New("simulated crash after the create reached Wix")
		case point == "settle.wait":
			e.Site.SetModes(wixsim.Modes{}) // the search index catches up
		}
		return nil
	}
	e.start(runtime.Adapt(h))
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "lag-1", map[string]any{
		"group": map[string]any{"name": "Lagging"}, "people": []messages.Person{{Email: m.LoginEmail}}}))
	gs := e.Site.GroupsByName("Lagging")
	if len(gs) != 1 || e.calls(wix.OpGroupsCreate) != 1 || ev.GroupID != gs[0].ID || ev.Added != 1 || ev.Reused {
		t.Fatalf("%d groups, %d creates, event %+v", len(gs), e.calls(wix.OpGroupsCreate), ev)
	}
}

// A 404 from List Group Requests (wrong base URL or prefix) is an error, not
// "no request": otherwise each re-send of a pending command forgets the
// remembered request and makes a second one on a live site.
func TestProvisionGroupRequests404IsAnError(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	creator := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Creator", LoginEmail: "c@example.com"})
	e.Site.SetModes(wixsim.Modes{GroupCreation: wixsim.GroupCreationWithApproval})
	e.start(runtime.Adapt(provisionHandler(e)))
	body := map[string]any{"group": map[string]any{"name": "Needs Approval"}, "creatorId": creator.ID,
		"people": []messages.Person{{Email: creator.LoginEmail}}}
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "p404-1", body))
	if ev.Status != messages.ProvisionPendingApproval || len(e.Site.GroupRequests()) != 1 {
		t.Fatalf("event %+v", ev)
	}
	e.Wix.Sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{404: 1}, Ops: []string{wix.OpGroupRequestsList}})
	defer e.Wix.Sim.SetFaults(wixsim.Faults{})
	m := e.send(messages.CmdProvisionGroup, "p404-2", body)
	if n := len(e.Site.GroupRequests()); n != 1 {
		t.Fatalf("re-send made %d group requests", n)
	}
	expectFailed(t, e, m, "p404-2", messages.FailurePermanent, "group-requests-prefix")
}

// An attempt that failed before Create Group was sent leaves no create
// pending, so the next one creates at once, without polling Query Groups
// for a group that cannot show up and with no checkpoint write before the
// create: an in-process retry (ledger.Lease.Unsure is false) and a
// redelivery (the retries exhausted or none: the failure is recorded, with
// Record.Sure, and the message nacked). With Unsure alone a redelivery
// would wait CreateSettle (5s by default, 2 Wix calls a poll) after every
// transient Wix or ledger failure, or a shutdown.
func TestProvisionFailureBeforeCreateDoesNotSettle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retries int // runtime.Config.Retries; wfConfig's -1: none
	}{
		{"in-process retry", 2},
		{"redelivery", -1},
	} {
		t.Run(tc.name, func(t *testing.T) { testFailureBeforeCreateDoesNotSettle(t, tc.retries) })
	}
}

func testFailureBeforeCreateDoesNotSettle(t *testing.T, retries int) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	e.Site.SetModes(wixsim.Modes{QueryGroupsLag: time.Hour})
	h := NewProvisionGroup(e.Sites, e.Ledger, ProvisionConfig{DefaultRegion: "US", CreateSettle: time.Hour, SettlePoll: 10 * time.Millisecond}, e.Log)
	e.Config.Retries = retries
	var failed, settled atomic.Bool
	h.hook = func(_ context.Context, point string) error {
		switch {
		case point == "create" && failed.CompareAndSwap(false, true):
			return errors.New("transient failure before the create was sent")
		case point == "settle.wait":
			settled.Store(true)
			return failure.Permanent(errors.New("polled Query Groups though no create was sent"))
		}
		return nil
	}
	e.start(runtime.Adapt(h))
	ev := provisioned(t, e, e.send(messages.CmdProvisionGroup, "retry-1", map[string]any{
		"group": map[string]any{"name": "Retried"}, "people": []messages.Person{{Email: m.LoginEmail}}}))
	gs := e.Site.GroupsByName("Retried")
	if !failed.Load() || settled.Load() || len(gs) != 1 || e.calls(wix.OpGroupsCreate) != 1 || ev.GroupID != gs[0].ID || ev.Added != 1 || ev.Reused {
		t.Fatalf("failed %v, settled %v, %d groups, %d creates, event %+v", failed.Load(), settled.Load(), len(gs), e.calls(wix.OpGroupsCreate), ev)
	}
}
