package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"groupflow/internal/failure"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// SetMembershipQuestions handles set_membership_questions: it replaces the
// questions of each listed group (one Create Or Replace call per group) and
// reports a per-group outcome. A group Wix refuses (404, 403...) is
// reported failed and the others are still updated; when every group is
// refused the command fails (command_failed and a DLQ entry). Transient
// failures that outlast the client's retries fail the attempt, and the
// redelivery skips the groups already done (checkpointed per group).
type SetMembershipQuestions struct {
	sites Sites
	log   *zap.Logger
}

// NewSetMembershipQuestions returns the set_membership_questions handler.
func NewSetMembershipQuestions(sites Sites, log *zap.Logger) *SetMembershipQuestions {
	if log == nil {
		log = zap.NewNop()
	}
	return &SetMembershipQuestions{sites: sites, log: log.Named("set_membership_questions")}
}

// CommandType implements runtime.TypedHandler.
func (h *SetMembershipQuestions) CommandType() string { return messages.CmdSetMembershipQuestions }

// checkQuestions re-checks the questions against Wix's limits, so that bad
// input is refused as a whole before any call (Validate already does).
func checkQuestions(qs []messages.Question) error {
	if len(qs) > messages.MaxQuestions {
		return fmt.Errorf("%d questions, at most %d", len(qs), messages.MaxQuestions)
	}
	for i, q := range qs {
		if n := utf8.RuneCountInString(q.Text); strings.TrimSpace(q.Text) == "" || n > messages.MaxQuestionLen {
			return fmt.Errorf("questions[%d].text: %d characters, want 1 to %d", i, n, messages.MaxQuestionLen)
		}
	}
	return nil
}

// Handle implements runtime.TypedHandler.
func (h *SetMembershipQuestions) Handle(ctx context.Context, cmd *runtime.Command, c *messages.SetMembershipQuestions) (_ messages.Event, err error) {
	site, ctx, prog, err := begin(ctx, h.sites, cmd)
	if err != nil {
		return nil, err
	}
	if err := checkQuestions(c.Questions); err != nil {
		return nil, failure.Permanent(fmt.Errorf("invalid set_membership_questions: %w", err))
	}
	qs := toWixQuestions(c.Questions)
	out := make([]messages.GroupOutcome, 0, len(c.GroupIDs))
	var errs []error
	failed := 0
	runtime.ProgressFrom(ctx).ExpectCalls(int64(len(c.GroupIDs))) // one call per group
	for _, id := range c.GroupIDs {
		step := "group." + id
		var o messages.GroupOutcome
		found, err := prog.Load(ctx, step, &o)
		if err != nil {
			return nil, err
		}
		if !found {
			got, err := site.ReplaceMembershipQuestions(ctx, id, qs)
			switch {
			case err == nil:
				o = messages.GroupOutcome{GroupID: id, Outcome: messages.OutcomeUpdated, Questions: len(got)}
			case needsMemberCredential(err):
				return nil, failure.Permanent(err)
			case itemRefused(err):
				o = messages.GroupOutcome{GroupID: id, Outcome: messages.OutcomeFailed, Reason: groupFailure(err)}
			default:
				return nil, err // names the call and the group
			}
			if err := prog.Checkpoint(ctx, step, o); err != nil {
				return nil, err
			}
		}
		if o.Outcome == messages.OutcomeFailed {
			failed++
			errs = append(errs, fmt.Errorf("group %s: %s", id, o.Reason))
		}
		out = append(out, o)
	}
	if failed == len(c.GroupIDs) {
		return nil, failure.Permanent(fmt.Errorf("no group updated: %w", errors.Join(errs...)))
	}
	h.log.Info("membership questions set", zap.String("command_id", cmd.ID), zap.Int("groups", len(out)),
		zap.Int("failed", failed), zap.Int64("wix_calls", prog.Calls()))
	return &messages.MembershipQuestionsSet{EventMeta: cmd.EventMeta(), Groups: out, WixCalls: prog.Calls()}, nil
}

// groupFailure explains a permanent Wix error on one group.
func groupFailure(err error) string {
	if wix.IsNotFound(err) {
		return "group not found"
	}
	if r, ok := authRefusal(err); ok {
		return r
	}
	return errorDetail(err)
}
