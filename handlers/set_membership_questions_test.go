package handlers

import (
	"context"
	"strings"
	"testing"

	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

func TestSetMembershipQuestions(t *testing.T) {
	e := newWF(t)
	g1 := e.Site.AddGroup("Q One", "")
	g2 := e.Site.AddGroup("Q Two", "")
	e.Site.SetQuestions(g2.ID, "old question")
	e.start(runtime.Adapt(NewSetMembershipQuestions(e.Sites, e.Log)))
	qs := []messages.Question{{Text: "Why do you join?", Required: true}, {Text: "Favourite class?"}}

	t.Run("per-group outcomes, a 404 group does not stop the others", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		m := e.send(messages.CmdSetMembershipQuestions, "q-1", map[string]any{"groupIds": []string{g1.ID, "missing-group", g2.ID}, "questions": qs})
		ev := expect[messages.MembershipQuestionsSet](t, e, m, messages.EvtMembershipQuestionsSet)
		want := []messages.GroupOutcome{
			{GroupID: g1.ID, Outcome: messages.OutcomeUpdated, Questions: 2},
			{GroupID: "missing-group", Outcome: messages.OutcomeFailed, Reason: "group not found"},
			{GroupID: g2.ID, Outcome: messages.OutcomeUpdated, Questions: 2},
		}
		if len(ev.Groups) != 3 || ev.Groups[0] != want[0] || ev.Groups[1] != want[1] || ev.Groups[2] != want[2] || ev.WixCalls != 3 {
			t.Fatalf("event %+v", ev)
		}
		for _, id := range []string{g1.ID, g2.ID} {
			got := e.Site.Questions(id)
			if len(got) != 2 || got[0].Text != qs[0].Text || !got[0].Required || got[1].Text != qs[1].Text {
				t.Fatalf("questions of %s: %+v", id, got)
			}
		}
	})
	t.Run("every group refused: command_failed and DLQ", func(t *testing.T) {
		m := e.send(messages.CmdSetMembershipQuestions, "q-2", map[string]any{"groupIds": []string{"nope-1", "nope-2"}, "questions": qs})
		expectFailed(t, e, m, "q-2", messages.FailurePermanent, "no group updated")
	})
	t.Run("invalid input refused as a whole before any call", func(t *testing.T) {
		e.Wix.Sim.ResetCalls()
		many := make([]messages.Question, 51)
		for i := range many {
			many[i] = messages.Question{Text: "q"}
		}
		m := e.send(messages.CmdSetMembershipQuestions, "q-3", map[string]any{"groupIds": []string{g1.ID}, "questions": append(many[:1], messages.Question{Text: strings.Repeat("x", 301)})})
		expectFailed(t, e, m, "q-3", messages.FailureInvalid, "questions[1].text")
		m = e.send(messages.CmdSetMembershipQuestions, "q-4", map[string]any{"groupIds": []string{g1.ID}, "questions": many})
		expectFailed(t, e, m, "q-4", messages.FailureInvalid, "at most 50")
		if n := e.Wix.Calls(); n != 0 {
			t.Fatalf("%d Wix calls for invalid commands", n)
		}
	})
	t.Run("empty list removes every question", func(t *testing.T) {
		m := e.send(messages.CmdSetMembershipQuestions, "q-5", `{"groupIds":["`+g1.ID+`"],"questions":[]}`)
		ev := expect[messages.MembershipQuestionsSet](t, e, m, messages.EvtMembershipQuestionsSet)
		if ev.Groups[0].Outcome != messages.OutcomeUpdated || len(e.Site.Questions(g1.ID)) != 0 {
			t.Fatalf("event %+v", ev)
		}
	})
}

// The handler re-checks the questions even if Validate was bypassed.
func TestSetMembershipQuestionsRechecksInput(t *testing.T) {
	e := newWF(t)
	h := NewSetMembershipQuestions(e.Sites, nil)
	cmd := &messages.SetMembershipQuestions{GroupIDs: []string{"g"}, Questions: []messages.Question{{Text: "  "}}}
	_, err := h.Handle(context.Background(), &runtime.Command{Type: h.CommandType(), ID: "direct", SiteID: e.Wix.SiteID, Payload: cmd}, cmd)
	if err == nil || !strings.Contains(err.Error(), "questions[0].text") || e.Wix.Calls() != 0 {
		t.Fatalf("err %v, calls %d", err, e.Wix.Calls())
	}
	var _ = wix.MaxQuestions
}
