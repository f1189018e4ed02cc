package handlers

import (
	"context"
	"fmt"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"

	"groupflow/internal/events"
	"groupflow/messages"
)

// publishSelected publishes one member_selected event and tells whether
// another command (a repeated campaign with the same campaign id) selected
// this member already: the events stream then holds its event, with the same
// id, inside the duplicate window, and keeps it instead of this one. A
// duplicate of this command's own earlier attempt of the batch is no repeat;
// one of its own earlier batch is a member Wix named twice (batchRepeated). Cost: one
// stream read per duplicate.
func (r *campaignRun) publishSelected(ctx context.Context, msg *message.Message) error {
	dup, err := r.h.pub.PublishAcked(ctx, r.h.js, messages.EvtMemberSelected, msg)
	if err != nil || dup == 0 {
		return err
	}
	st, err := r.h.js.Stream(ctx, r.h.pub.Subjects().EventStream())
	if err != nil {
		return fmt.Errorf("read the selected event kept by the stream: %w", err)
	}
	orig, err := st.GetMsg(ctx, dup)
	if err != nil {
		return fmt.Errorf("read the selected event kept by the stream (seq %d): %w", dup, err)
	}
	switch {
	case orig.Header.Get(events.HeaderCommandID) != r.cmd.ID:
		r.batchAlready++
	case r.st.Batch != nil && dup <= r.st.Batch.Seq:
		// This command's own event from an earlier batch: Wix named the
		// member twice (pages that repeat a member beyond the page before).
		// It was seen and selected then.
		r.batchRepeated++
	}
	return nil
}

// noteNoAnswers records, for an interest campaign, a group whose answers
// list is empty from the start when the group has no membership questions
// (one List Membership Questions call, made only for such a group): the
// completion event names it, so "seen=0" has its reason.
func (r *campaignRun) noteNoAnswers(ctx context.Context, gi, offset, answers int) error {
	if offset != 0 || answers != 0 {
		return nil
	}
	groupID := r.c.GroupIDs[gi]
	qs, err := r.site.ListMembershipQuestions(ctx, groupID)
	if err != nil {
		return err
	}
	if len(qs) == 0 && !slices.Contains(r.st.NoQuestions, groupID) {
		r.st.NoQuestions = append(r.st.NoQuestions, groupID)
	}
	return nil
}
