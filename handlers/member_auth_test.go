package handlers

import (
	"fmt"
	"groupflow/internal/runtime"
	"strings"
	"testing"

	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// Strict member authentication (wixsim AuthStrict) is how a live site treats
// membership questions, rules and answers: an API key is refused. Each
// workflow that touches them fails permanently, with a reason naming the
// credential to add, without a member credential, and works end to end with
// one of a group admin.

const memberClient = "member-oauth-client"

// strictSite turns strict member auth on for w's site and returns its owner
// (an admin of every group created with the API key).
func strictSite(t *testing.T, w *testenv.WixEnv) string {
	t.Helper()
	w.Sim.SetAuthStrict(true)
	st := w.Site()
	if st.OwnerID() == "" {
		st.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	}
	return st.OwnerID()
}

// withMember re-adds w's site with the API key plus a member credential of
// memberID.
func withMember(t *testing.T, w *testenv.WixEnv, memberID string) {
	t.Helper()
	rt := w.Sim.IssueMemberRefreshToken(w.SiteID, memberID, memberClient)
	if err := w.Client.AddSite(w.SiteID, wix.Credentials{APIKey: "test-key", MemberRefreshToken: rt, MemberClientID: memberClient}); err != nil {
		t.Fatal(err)
	}
}

func refusedReason(site, endpoint string) string {
	return fmt.Sprintf("Wix refused %s for site %s with the API key (403 PERMISSION_DENIED): these endpoints need a group admin member's credential; set sites[%s].memberRefreshTokenEnv and memberClientId", endpoint, site, site)
}

func TestStrictAuthSetMembershipQuestions(t *testing.T) {
	e := newWF(t)
	owner := strictSite(t, e.Wix)
	plain := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Plain", LastName: "Member"}).ID
	gA := e.Site.AddGroup("Strict A", "", owner, plain) // owner admin, plain member
	gB := e.Site.AddGroup("Strict B", "", plain)        // plain admin
	e.start(runtime.Adapt(NewSetMembershipQuestions(e.Sites, e.Log)))
	body := map[string]any{"groupIds": []string{gA.ID, gB.ID}, "questions": []messages.Question{{Text: "Why?"}}}

	t.Run("API key only: permanent failure naming the credential", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		m := e.send(messages.CmdSetMembershipQuestions, "sq-1", body)
		expectFailed(t, e, m, "sq-1", messages.FailurePermanent, refusedReason(e.Wix.SiteID, "Create Or Replace All Membership Questions"))
		if n := e.calls(wix.OpQuestionsReplace); n != 1 {
			t.Fatalf("%d replace calls, want 1 (the refusal is site-wide)", n)
		}
	})
	t.Run("member admin of one group: that group updated, the other says why", func(t *testing.T) {
		withMember(t, e.Wix, plain)
		m := e.send(messages.CmdSetMembershipQuestions, "sq-2", body)
		ev := expect[messages.MembershipQuestionsSet](t, e, m, messages.EvtMembershipQuestionsSet)
		if len(ev.Groups) != 2 || ev.Groups[0].Outcome != messages.OutcomeFailed ||
			!strings.Contains(ev.Groups[0].Reason, "with the member credential (403 PERMISSION_DENIED): the member must be an admin of group "+gA.ID) ||
			ev.Groups[1].Outcome != messages.OutcomeUpdated {
			t.Fatalf("event %+v", ev)
		}
		if len(e.Site.Questions(gB.ID)) != 1 || len(e.Site.Questions(gA.ID)) != 0 {
			t.Fatal("questions not as reported")
		}
	})
	t.Run("admin member: works end to end", func(t *testing.T) {
		withMember(t, e.Wix, owner)
		m := e.send(messages.CmdSetMembershipQuestions, "sq-3", map[string]any{"groupIds": []string{gA.ID}, "questions": []messages.Question{{Text: "Why?"}}})
		ev := expect[messages.MembershipQuestionsSet](t, e, m, messages.EvtMembershipQuestionsSet)
		if ev.Groups[0].Outcome != messages.OutcomeUpdated || len(e.Site.Questions(gA.ID)) != 1 {
			t.Fatalf("event %+v", ev)
		}
	})
}

func TestStrictAuthPropagateRules(t *testing.T) {
	e := newWF(t)
	owner := strictSite(t, e.Wix)
	src := e.Site.AddGroup("Rules Source", "", owner)
	e.Site.SetRules(src.ID, []wixsim.Rule{{Title: "Be kind", Description: "Always"}})
	a := e.Site.AddGroup("Rules A", "", owner)
	e.start(runtime.Adapt(NewPropagateRules(e.Sites, e.Log)))
	body := map[string]any{"sourceGroupId": src.ID, "targets": map[string]any{"groupIds": []string{a.ID}}}

	m := e.send(messages.CmdPropagateRules, "pr-1", body)
	expectFailed(t, e, m, "pr-1", messages.FailurePermanent, refusedReason(e.Wix.SiteID, "List Rules"))
	// Rules given inline skip the source read: the replace is refused.
	m = e.send(messages.CmdPropagateRules, "pr-2", map[string]any{"sourceGroupId": src.ID, "rules": []messages.Rule{{Title: "R", Description: "D"}},
		"targets": map[string]any{"groupIds": []string{a.ID}}})
	expectFailed(t, e, m, "pr-2", messages.FailurePermanent, refusedReason(e.Wix.SiteID, "Create Or Replace All Rules"))

	withMember(t, e.Wix, owner)
	m = e.send(messages.CmdPropagateRules, "pr-3", body)
	ev := expect[messages.RulesPropagated](t, e, m, messages.EvtRulesPropagated)
	if ev.Updated != 1 || len(e.Site.Rules(a.ID)) != 1 || e.Site.Rules(a.ID)[0].Title != "Be kind" {
		t.Fatalf("event %+v, rules %+v", ev, e.Site.Rules(a.ID))
	}
}

func TestStrictAuthProvisionWithQuestionsAndRules(t *testing.T) {
	e := newWF(t)
	owner := strictSite(t, e.Wix) // creator, so admin, of the groups provisioned with the API key
	p := e.Site.AddMember(wixsim.MemberSeed{FirstName: "Pat", LastName: "Roe", LoginEmail: "pat@example.com"})
	e.start(runtime.Adapt(provisionHandler(e)))
	body := func(name string) map[string]any {
		return map[string]any{"group": map[string]any{"name": name}, "people": []messages.Person{{Email: p.LoginEmail}},
			"questions": []messages.Question{{Text: "Why?"}}, "rules": []messages.Rule{{Title: "Be kind", Description: "x"}}}
	}
	m := e.send(messages.CmdProvisionGroup, "pg-1", body("Strict Provision"))
	expectFailed(t, e, m, "pg-1", messages.FailurePermanent, refusedReason(e.Wix.SiteID, "Create Or Replace All Membership Questions"))

	withMember(t, e.Wix, owner)
	m = e.send(messages.CmdProvisionGroup, "pg-2", body("Strict Provision 2"))
	ev := provisioned(t, e, m)
	if len(e.Site.Questions(ev.GroupID)) != 1 || len(e.Site.Rules(ev.GroupID)) != 1 {
		t.Fatalf("questions %v rules %v", e.Site.Questions(ev.GroupID), e.Site.Rules(ev.GroupID))
	}
}

func TestStrictAuthInterestCampaign(t *testing.T) {
	e := newCampaignEnv(t, nil)
	owner := strictSite(t, e.wx)
	i1 := e.member("Ina", "ina@example.com", wix.StatusSubscribed)
	yoga := e.wx.Site().AddGroup("Yoga strict", "", owner, i1).ID
	qs := e.wx.Site().SetQuestions(yoga, "What do you like?")
	e.wx.Site().SetAnswer(yoga, i1, qs[0].ID, "hot yoga")
	cmd := func(id string) map[string]any {
		return map[string]any{"id": id, "campaignId": id, "groupIds": []string{yoga},
			"audience": map[string]any{"type": "interest", "keywords": []string{"yoga"}}}
	}
	done, failed := e.run(cmd("ic-1"))
	if failed == nil || failed.Kind != messages.FailurePermanent || !strings.Contains(failed.Reason, refusedReason(e.wx.SiteID, "List Answers")) {
		t.Fatalf("done %+v failed %+v", done, failed)
	}
	withMember(t, e.wx, owner)
	done, failed = e.run(cmd("ic-2"))
	if failed != nil || done.Selected != 1 {
		t.Fatalf("done %+v failed %+v", done, failed)
	}
}
