package wixcontract_test

import (
	"slices"
	"testing"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
)

// TestMembershipQuestionsAndAnswers: replace-all assigns ids, list returns
// them, answers come back per member with the answered questions.
func TestMembershipQuestionsAndAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{sim: wixsim.Options{Members: 30, Groups: -1}})
	c := ctx(t)
	ids := e.memberIDs(siteA)
	g, err := e.site.CreateGroup(c, wix.Group{Name: "Hikers"}, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if qs, err := e.site.ListMembershipQuestions(c, g.ID); err != nil || len(qs) != 0 {
		t.Fatalf("new group questions %v, %v", qs, err)
	}
	qs, err := e.site.ReplaceMembershipQuestions(c, g.ID, []wix.MembershipQuestion{
		{Text: "Which trails do you like?", Required: true}, {Text: "Favourite snack?"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].ID == "" || qs[1].ID == "" || !qs[0].Required || qs[1].Required {
		t.Fatalf("replaced %+v", qs)
	}
	listed, err := e.site.ListMembershipQuestions(c, g.ID)
	if err != nil || !slices.Equal(listed, qs) {
		t.Fatalf("listed %+v, %v", listed, err)
	}

	st := e.sim.Site(siteA)
	for i, id := range ids[1:26] { // 25 members answer
		st.SetAnswer(g.ID, id, qs[0].ID, "trail "+string(rune('a'+i%26)))
		if i%5 == 0 {
			st.SetAnswer(g.ID, id, qs[1].ID, "nuts")
		}
	}
	page, err := e.site.ListAnswers(c, g.ID, nil, wix.Paging{Limit: 10, Offset: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.MemberAnswers) != 5 || page.Metadata.Total != 25 || page.Metadata.Offset != 20 || page.Metadata.Count != 5 {
		t.Fatalf("answers page: %d answers, metadata %+v", len(page.MemberAnswers), page.Metadata)
	}
	sel, err := e.site.ListAnswers(c, g.ID, []string{ids[1], ids[2], ids[29]}, wix.Paging{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.MemberAnswers) != 2 || sel.MemberAnswers[0].MemberID != ids[1] {
		t.Fatalf("selected answers %+v", sel.MemberAnswers)
	}
	a := sel.MemberAnswers[0]
	if len(a.Answers) != 2 || a.Answers[0].ID != qs[0].ID || a.Answers[0].Text != "trail a" {
		t.Fatalf("answers of %s: %+v", ids[1], a.Answers)
	}
	if q, ok := sel.Questions[qs[1].ID]; !ok || q.Text != "Favourite snack?" || len(sel.Questions) != 2 {
		t.Fatalf("questions map %+v", sel.Questions)
	}

	// Replacing with nothing removes the questions.
	if qs, err := e.site.ReplaceMembershipQuestions(c, g.ID, nil); err != nil || len(qs) != 0 {
		t.Fatalf("clear: %v, %v", qs, err)
	}
	if qs, _ := e.site.ListMembershipQuestions(c, g.ID); len(qs) != 0 {
		t.Fatalf("after clear: %v", qs)
	}
}

// TestRules: list is empty for a new group, replace-all returns the rules.
func TestRules(t *testing.T) {
	t.Parallel()
	for _, p := range prefixes {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, envOpt{cfg: p.cfg})
			c := ctx(t)
			g, err := e.site.CreateGroup(c, wix.Group{Name: "Rules"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if rs, err := e.site.ListRules(c, g.ID); err != nil || len(rs) != 0 {
				t.Fatalf("new group rules %v, %v", rs, err)
			}
			want := []wix.GroupRule{{Title: "Be kind", Description: "No insults."}, {Title: "No spam"}}
			got, err := e.site.ReplaceRules(c, g.ID, want)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("replace: %v, %v", got, err)
			}
			if got, err := e.site.ListRules(c, g.ID); err != nil || !slices.Equal(got, want) {
				t.Fatalf("list: %v, %v", got, err)
			}
			if e.tr.count("/social-groups/v2/rules/"+g.ID) != 3 {
				t.Fatalf("rules not served under /social-groups/v2/rules")
			}
			if got, err := e.site.ReplaceRules(c, g.ID, nil); err != nil || len(got) != 0 {
				t.Fatalf("clear: %v, %v", got, err)
			}
		})
	}
}
