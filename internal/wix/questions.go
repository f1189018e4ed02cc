package wix

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

func (s *Site) questionsPath(groupID string) string {
	return s.c.cfg.QuestionsPrefix + "/membership-questions/" + url.PathEscape(groupID)
}

type questionsEnvelope struct {
	Questions []MembershipQuestion `json:"questions"`
}

// ListMembershipQuestions returns a group's membership questions.
func (s *Site) ListMembershipQuestions(ctx context.Context, groupID string) ([]MembershipQuestion, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("list membership questions: %w", err)
	}
	var out questionsEnvelope
	if err := s.doMember(ctx, call{op: OpQuestionsList, method: http.MethodGet, path: s.questionsPath(groupID), out: &out}, groupID); err != nil {
		return nil, fmt.Errorf("list membership questions of %s: %w", groupID, err)
	}
	return out.Questions, nil
}

// ReplaceMembershipQuestions creates or replaces all of a group's questions
// (at most MaxQuestions, text 1 to MaxQuestionLen characters). An empty qs
// removes them all. Wix assigns the IDs.
func (s *Site) ReplaceMembershipQuestions(ctx context.Context, groupID string, qs []MembershipQuestion) ([]MembershipQuestion, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("replace membership questions: %w", err)
	}
	if len(qs) > MaxQuestions {
		return nil, fmt.Errorf("replace membership questions of %s: %w", groupID, invalid("%d questions, max %d", len(qs), MaxQuestions))
	}
	for i, q := range qs {
		if n := utf8.RuneCountInString(q.Text); n < 1 || n > MaxQuestionLen || strings.TrimSpace(q.Text) == "" {
			return nil, fmt.Errorf("replace membership questions of %s: %w", groupID,
				invalid("question %d has %d characters, want 1 to %d", i, n, MaxQuestionLen))
		}
	}
	if qs == nil {
		qs = []MembershipQuestion{}
	}
	var out questionsEnvelope
	err := s.doMember(ctx, call{op: OpQuestionsReplace, method: http.MethodPut, path: s.questionsPath(groupID),
		body: questionsEnvelope{Questions: qs}, out: &out}, groupID)
	if err != nil {
		return nil, fmt.Errorf("replace membership questions of %s: %w", groupID, err)
	}
	return out.Questions, nil
}

type answersRequest struct {
	MemberIDs []string `json:"memberIds,omitempty"`
	Paging    *Paging  `json:"paging,omitempty"`
}

// ListAnswers returns the answers of up to MaxAnswerMemberIDs members (all
// members when memberIDs is empty). A zero p lets Wix choose the paging.
func (s *Site) ListAnswers(ctx context.Context, groupID string, memberIDs []string, p Paging) (*AnswersPage, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("list answers: %w", err)
	}
	if err := checkIDs("member ids", memberIDs, MaxAnswerMemberIDs); err != nil {
		return nil, fmt.Errorf("list answers of %s: %w", groupID, err)
	}
	if p.Limit < 0 || p.Offset < 0 {
		return nil, fmt.Errorf("list answers of %s: %w", groupID, invalid("negative paging"))
	}
	body := answersRequest{MemberIDs: memberIDs}
	if p != (Paging{}) {
		body.Paging = &p
	}
	var out AnswersPage
	err := s.doMember(ctx, call{op: OpQuestionsAnswers, method: http.MethodPost, path: s.questionsPath(groupID) + "/answers",
		body: body, out: &out}, groupID)
	if err != nil {
		return nil, fmt.Errorf("list answers of %s: %w", groupID, err)
	}
	return &out, nil
}

func (s *Site) rulesPath(groupID string) string {
	return s.c.cfg.RulesPrefix + "/rules/" + url.PathEscape(groupID)
}

type rulesEnvelope struct {
	GroupID string      `json:"groupId,omitempty"`
	Rules   []GroupRule `json:"rules"`
}

// ListRules returns a group's rules (empty when it has none).
func (s *Site) ListRules(ctx context.Context, groupID string) ([]GroupRule, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var out rulesEnvelope
	if err := s.doMember(ctx, call{op: OpRulesList, method: http.MethodGet, path: s.rulesPath(groupID), out: &out}, groupID); err != nil {
		return nil, fmt.Errorf("list rules of %s: %w", groupID, err)
	}
	return out.Rules, nil
}

// ReplaceRules creates or replaces all of a group's rules (at most
// MaxRules). An empty rules removes them all.
func (s *Site) ReplaceRules(ctx context.Context, groupID string, rules []GroupRule) ([]GroupRule, error) {
	if err := requireID("group id", groupID); err != nil {
		return nil, fmt.Errorf("replace rules: %w", err)
	}
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("replace rules of %s: %w", groupID, invalid("%d rules, max %d", len(rules), MaxRules))
	}
	if rules == nil {
		rules = []GroupRule{}
	}
	var out rulesEnvelope
	err := s.doMember(ctx, call{op: OpRulesReplace, method: http.MethodPut, path: s.rulesPath(groupID),
		body: rulesEnvelope{Rules: rules}, out: &out}, groupID)
	if err != nil {
		return nil, fmt.Errorf("replace rules of %s: %w", groupID, err)
	}
	return out.Rules, nil
}
