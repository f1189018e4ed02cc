package wixcontract_test

import (
	"errors"
	"testing"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// TestLegacyGroupFieldNames: with the simulator answering title,
// privacyLevel and recentActivityDate, the client's fallbacks fill Name,
// PrivacyStatus and LastActivityDate (issue 13 item 6).
func TestLegacyGroupFieldNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: 3, Groups: -1, Modes: wixsim.Modes{LegacyFieldNames: true}}})
	c := ctx(t)
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Legacy", PrivacyStatus: "PRIVATE", Description: "plain"}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.site.GetGroup(c, g.ID)
	if err != nil || got.Name != "Legacy" || got.PrivacyStatus != "PRIVATE" || got.LastActivityDate == nil || got.Description != "plain" {
		t.Fatalf("get %+v, %v", got, err)
	}
	page, err := e.site.QueryGroups(c, wix.Query{Filter: map[string]any{"title": "Legacy"}})
	if err != nil || len(page.Groups) != 1 || page.Groups[0].Name != "Legacy" || page.Groups[0].PrivacyStatus != "PRIVATE" {
		t.Fatalf("query %+v, %v", page, err)
	}
}

// TestCreateGroupPendingApproval: a create that became a group request is a
// *wix.PendingGroupError with the request id, not a group with an empty id
// (issue 13 item 4).
func TestCreateGroupPendingApproval(t *testing.T) {
	t.Parallel()
	// The answer carries the request (PendingAnswerWithRequest); the SDK's
	// group-only default is covered by the handlers' pending-approval tests.
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: 3, Groups: -1, Modes: wixsim.Modes{GroupCreation: wixsim.GroupCreationWithApproval, PendingAnswer: wixsim.PendingAnswerWithRequest}}})
	c := ctx(t)
	ids := e.memberIDs(siteA)
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Asked"}, ids[1])
	var pe *wix.PendingGroupError
	if !errors.As(err, &pe) || pe.RequestID == "" || g != nil {
		t.Fatalf("create: %+v, %v", g, err)
	}
	reqs, err := e.site.ListGroupRequests(c, wix.Paging{Limit: 10})
	if err != nil || len(reqs.GroupRequests) != 1 || reqs.GroupRequests[0].ID != pe.RequestID || reqs.GroupRequests[0].Status != wix.RequestPending {
		t.Fatalf("requests %+v, %v", reqs, err)
	}
	approved, ok := e.sim.Site(siteA).ApproveGroupRequest(pe.RequestID)
	if !ok {
		t.Fatal("not approved")
	}
	reqs, err = e.site.ListGroupRequests(c, wix.Paging{})
	if err != nil || reqs.GroupRequests[0].Status != wix.RequestApproved || reqs.GroupRequests[0].Group.ID != approved.ID {
		t.Fatalf("after approval %+v, %v", reqs, err)
	}
}

// TestAddGroupMembersAnswer: private members are invited and left out of
// the answer; members already in the group are in it (issue 13 items 3, 6).
func TestAddGroupMembersAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: -1, Groups: -1}})
	c := ctx(t)
	st := e.sim.Site(siteA)
	owner := st.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
	pub := st.AddMember(wixsim.MemberSeed{FirstName: "Pub"})
	priv := st.AddMember(wixsim.MemberSeed{FirstName: "Priv", Private: true})
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Answer"}, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.site.AddGroupMembers(c, g.ID, []string{owner.ID, pub.ID, priv.ID})
	if err != nil || len(got) != 2 || got[0].MemberID != owner.ID || got[1].MemberID != pub.ID {
		t.Fatalf("answer %+v, %v", got, err)
	}
}
