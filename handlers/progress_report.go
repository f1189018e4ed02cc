package handlers

import (
	"context"

	"groupflow/internal/runtime"
	"groupflow/internal/wix"
)

// Progress reports of the handlers: ephemeral counters for groupctl status
// and /api/commands (runtime.ProgressFrom), never written to the ledger.

// reportProgress publishes the campaign's counters.
func (r *campaignRun) reportProgress(ctx context.Context) {
	p, t := runtime.ProgressFrom(ctx), r.st.Totals
	p.Set(runtime.ProgressMembersSeen, int64(t.Seen))
	p.Set(runtime.ProgressMembersSelected, int64(t.Selected))
	pages := r.st.Pages
	if len(r.c.GroupIDs) == 1 {
		pages = ceilDiv(r.st.Offset, wix.MaxPageSize)
	}
	p.Set(runtime.ProgressPagesRead, int64(pages))
}

// expectCampaignCalls announces the calls left after a page of a group of
// total members ending at next: one List per 99 members (pages overlap by
// one), one Query Members and at most one Query Email Subscriptions per 100
// (the README budget, with every member having an email), plus the batch in
// work.
func expectCampaignCalls(ctx context.Context, total, next int) {
	if total <= 0 {
		return
	}
	p := runtime.ProgressFrom(ctx)
	p.Total(runtime.ProgressMembersSeen, int64(total))
	left := max(0, total-next)
	p.ExpectCalls(int64(ceilDiv(left, wix.MaxPageSize-1) + 2*ceilDiv(left, wix.MaxPageSize) + 2))
}

// expectAdds announces the adds a provision has left (one call per 100).
func expectAdds(ctx context.Context, toAdd int) {
	p := runtime.ProgressFrom(ctx)
	p.Total(runtime.ProgressRowsAdded, int64(toAdd))
	p.ExpectCalls(int64(ceilDiv(toAdd, wix.MaxMemberIDsPerAdd)))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
