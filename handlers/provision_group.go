package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// ProvisionConfig tunes ProvisionGroup.
type ProvisionConfig struct {
	// DefaultRegion is the ISO 3166 region used to parse phone numbers
	// without a country code (default "US").
	DefaultRegion string
	// CreateSettle bounds how long a redelivered command whose Create Group
	// outcome is unknown polls Query Groups for the group before creating
	// it again: Query Groups may show a new group only after a delay
	// (default 5s; negative: do not wait).
	CreateSettle time.Duration
	// SettlePoll is the interval of those polls (default 1s).
	SettlePoll time.Duration
	// MaxMembers bounds the group members a command lists and holds
	// (reused groups, syncs): a larger group, or a Wix listing fresh ids
	// without end, fails the command (permanent) instead of growing its
	// memory for ever (default DefaultMaxMembers).
	MaxMembers int
}

// DefaultMaxMembers is ProvisionConfig.MaxMembers' default: 500,000
// members, ~50 MB held and 5,000 List Group Members calls (25 minutes of
// one site's 200 a minute).
const DefaultMaxMembers = 500_000

// ProvisionGroup handles provision_group: find the group by exact name (or
// create it), resolve the roster, add the members in batches of 100, remove
// non-roster members in sync mode, set questions and rules.
//
// Calls for n people by email or contact id, no existing group:
// 1 Query Groups + 1 Create Group (+1 Get Group when creatorId is set: the
// create may have become a group request) + ⌈n/100⌉ Query Members + ⌈resolved/100⌉
// Add Group Members (+1 questions, +1 rules when given). Reusing a group, or
// sync mode, adds ⌈members/100⌉ List Group Members and, in sync mode,
// ⌈removed/100⌉ Remove Group Members.
//
// Sync guard: a sync that would remove someone while no row resolved to a
// member, or remove more than half of the group's members (admins counted,
// never removed), is refused (permanent) before any member is added or
// removed, unless AllowMassRemoval. A new group holds only its creator, so
// there is no one to remove. An empty sync roster is refused earlier, by
// Validate.
//
// Idempotency, with as few ledger writes as that allows (none for a new
// or reused group besides the runtime's record and outcome; one, the
// intent, with allowDuplicateName): a resumed command (a crash, failover,
// replay, or an in-process retry after Create Group was sent:
// ledger.Lease.Unsure) looks for the group by name, polling up to
// CreateSettle as Query Groups may lag, before any new create, so one
// command never creates two groups (see group). Everything else a
// redelivery asks Wix again: the
// roster is resolved again (reads), the group's members are listed again
// (so adds and removals already done are not repeated), questions and rules
// are replaced again (idempotent). Invitations of private members are
// recorded (invitedKey) right after each add batch, so they are not sent
// again; a sync's removals, decided from the members before the first write
// and passed by the guard, are checkpointed (syncPlan), so a resumed sync
// removes and reports the same ones and is never refused halfway.
type ProvisionGroup struct {
	sites  Sites
	ledger *ledger.Ledger
	cfg    ProvisionConfig
	log    *zap.Logger
	// hook, in tests, runs at named points ("create", "created",
	// "settle.wait", "add.<k>", "remove.<k>") and may fail the attempt there.
	hook func(ctx context.Context, point string) error
}

// NewProvisionGroup returns the provision_group handler.
func NewProvisionGroup(sites Sites, l *ledger.Ledger, cfg ProvisionConfig, log *zap.Logger) *ProvisionGroup {
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "US"
	}
	if cfg.CreateSettle == 0 {
		cfg.CreateSettle = 5 * time.Second
	}
	if cfg.SettlePoll <= 0 {
		cfg.SettlePoll = time.Second
	}
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = DefaultMaxMembers
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &ProvisionGroup{sites: sites, ledger: l, cfg: cfg, log: log.Named("provision_group")}
}

// CommandType implements runtime.TypedHandler.
func (h *ProvisionGroup) CommandType() string { return messages.CmdProvisionGroup }

func (h *ProvisionGroup) at(ctx context.Context, point string) error {
	if h.hook == nil {
		return nil
	}
	return h.hook(ctx, point)
}

// groupStep is the groupStepName checkpoint.
type groupStep struct {
	ID      string `json:"id,omitempty"`
	Slug    string `json:"slug,omitempty"`
	OwnerID string `json:"ownerId,omitempty"`
	Reused  bool   `json:"reused,omitempty"`
	// Creating is set before Create Group is sent; with no ID it means the
	// outcome of the create is unknown.
	Creating bool `json:"creating,omitempty"`
	// Existing lists the groups of that name that existed before the create.
	Existing []string `json:"existing,omitempty"`
	// created: this attempt created the group (not checkpointed): it holds
	// its creator only.
	created bool
	// Differ lists a reused group's settings that differ from the command's.
	Differ []messages.SettingDifference `json:"differ,omitempty"`
}

// groupMember is one entry of the group's member list.
type groupMember struct {
	ID    string `json:"id"`
	Admin bool   `json:"admin,omitempty"`
}

// batchStep is the checkpoint of one add or remove batch.
type batchStep struct {
	Failed string `json:"failed,omitempty"`
	// Invited lists the ids of an add batch that Wix left out of its answer:
	// site members with a private profile get an invitation, not membership.
	Invited []string `json:"invited,omitempty"`
}

// invitedKey is the ledger key of the ids invited to a group by any command
// and not seen as members since, so that sync neither re-invites them every
// run nor counts them as missing.
func invitedKey(siteID, groupID string) string {
	return ledger.Key("provision", "invited", siteID, groupID)
}

// requestKey is the ledger key of the pending group request for a group
// name on a site, so that a re-sent command neither makes a second request
// nor misses the group once approved.
func requestKey(siteID, name string) string {
	return ledger.Key("provision", "grouprequest", siteID, name)
}

// errPending carries a pending group request out of group().
type errPending struct{ requestID string }

func (e *errPending) Error() string { return "group creation pending approval: request " + e.requestID }

// Handle implements runtime.TypedHandler. Its steps: find or create the
// group, resolve the roster, plan the membership changes, add, remove, set
// the questions and rules, and answer with the outcome.
func (h *ProvisionGroup) Handle(ctx context.Context, cmd *runtime.Command, c *messages.ProvisionGroup) (_ messages.Event, err error) {
	site, ctx, prog, err := begin(ctx, h.sites, cmd)
	if err != nil {
		return nil, err
	}
	r := &provisionRun{h: h, cmd: cmd, c: c, site: site, prog: prog,
		log: h.log.WithLazy(zap.String("command_id", cmd.ID), zap.String("site_id", cmd.SiteID))}

	if r.g, err = h.group(ctx, site, prog, c, cmd.SiteID); err != nil {
		var pend *errPending
		if errors.As(err, &pend) {
			return r.pending(pend), nil
		}
		return nil, err
	}
	if r.settingsUpdated, err = updateSettings(ctx, site, c, r.g); err != nil {
		return nil, err
	}
	res := &resolver{site: site, region: h.cfg.DefaultRegion}
	if r.rows, r.ids, err = res.resolve(ctx, c.People); err != nil {
		return nil, err
	}
	runtime.ProgressFrom(ctx).Set(runtime.ProgressRowsResolved, int64(len(r.ids)))
	plan, err := r.plan(ctx)
	if err != nil {
		return nil, err
	}
	added, newlyInvited, err := r.add(ctx, plan.toAdd)
	if err != nil {
		return nil, err
	}
	plan.invited += len(newlyInvited)
	// Invitations accepted since they were recorded are dropped. With none
	// recorded before this command (always so for a group it created), there
	// is nothing to drop: the ones it just recorded are not members.
	if len(plan.invitedBefore) > 0 {
		if err := h.updateInvited(ctx, cmd.SiteID, r.g.ID, nil, plan.isMember); err != nil {
			return nil, err
		}
	}
	removed, notRemoved, err := r.remove(ctx, plan.toRemove, plan.isMember)
	if err != nil {
		return nil, err
	}
	if err := r.settings(ctx); err != nil {
		return nil, err
	}
	return r.provisioned(added+plan.addedBefore, plan.invited, plan.already, removed, notRemoved), nil
}

// provisionRun is one attempt at a provision_group command: the state the
// steps of ProvisionGroup.Handle pass on.
type provisionRun struct {
	h    *ProvisionGroup
	cmd  *runtime.Command
	c    *messages.ProvisionGroup
	site *wix.Site
	prog *ledger.Lease
	log  *zap.Logger
	g    groupStep
	// rows holds one result per roster row; ids the members they resolved to.
	rows []rowResult
	ids  []string
	// settingsUpdated: this command changed the reused group's settings.
	settingsUpdated bool
}

// membershipPlan is what a command does to the group's members, decided
// from the member list taken before any write.
type membershipPlan struct {
	isMember      map[string]bool
	invitedBefore []string
	toAdd         []string
	toRemove      []string
	// already counts the roster's members of the group; addedBefore those
	// an earlier attempt added; invited those invited earlier and not
	// members yet.
	already, addedBefore, invited int
}

// pending answers a command whose group waits for approval.
func (r *provisionRun) pending(pend *errPending) messages.Event {
	r.log.Info("group creation pending approval", zap.String("group_request_id", pend.requestID))
	return &messages.GroupProvisioned{
		EventMeta:      r.cmd.EventMeta(),
		Name:           r.c.Group.Name,
		Status:         messages.ProvisionPendingApproval,
		GroupRequestID: pend.requestID,
		WixCalls:       r.prog.Calls(),
	}
}

// plan reads the group's members (unless it is new and the mode is add)
// and the invitations sent earlier, and decides who is added and, in sync
// mode, who is removed; the sync guard checks the removals before the
// first write.
func (r *provisionRun) plan(ctx context.Context) (membershipPlan, error) {
	var p membershipPlan
	// The group's members before this command added anyone.
	var current []groupMember
	// A group this attempt created holds its creator only; any other (reused,
	// or created by an earlier attempt that may have added members) is
	// listed: that is how a redelivery knows which adds were done.
	if !r.g.created || r.c.Membership == messages.MembershipSync {
		var err error
		if current, err = r.h.members(ctx, r.site, r.g.ID); err != nil {
			return p, err
		}
	} else if r.g.OwnerID != "" {
		current = []groupMember{{ID: r.g.OwnerID, Admin: true}}
	}
	p.isMember = make(map[string]bool, len(current))
	for _, m := range current {
		p.isMember[m.ID] = true
	}
	// Invitations sent earlier and not accepted yet: not re-sent, not
	// missing. A group this attempt created has none (its id is new: nothing
	// was recorded under it), so that ledger read is skipped.
	if !r.g.created {
		if _, err := r.h.ledger.Load(ctx, invitedKey(r.cmd.SiteID, r.g.ID), &p.invitedBefore); err != nil {
			return p, fmt.Errorf("load invitations: %w", err)
		}
	}
	wasInvited := make(map[string]bool, len(p.invitedBefore))
	for _, id := range p.invitedBefore {
		wasInvited[id] = true
	}
	for _, id := range r.ids {
		switch {
		case p.isMember[id] && (r.g.Reused || id == r.g.OwnerID):
			p.already++
		case p.isMember[id]:
			// A group this command created held only its creator: the others
			// were added by an earlier attempt.
			p.addedBefore++
		case wasInvited[id]:
			p.invited++
		default:
			p.toAdd = append(p.toAdd, id)
		}
	}
	if r.c.Membership == messages.MembershipSync {
		return p, r.syncPlan(ctx, &p, current)
	}
	return p, nil
}

// syncPlan is the "sync.plan" checkpoint: the members a sync removes, as
// decided (and checked by the guard) from the member list taken before the
// first write, so a redelivery removes the same ones, reports them all, and
// is never refused halfway.
type syncPlan struct {
	Remove []string `json:"remove"`
}

// syncPlan decides the removals of a sync (or takes those an earlier
// attempt decided) into p.toRemove.
func (r *provisionRun) syncPlan(ctx context.Context, p *membershipPlan, current []groupMember) error {
	const step = "sync.plan"
	var sp syncPlan
	if found, err := r.prog.Load(ctx, step, &sp); err != nil || found {
		p.toRemove = sp.Remove
		return err
	}
	p.toRemove = syncRemovals(current, r.ids)
	if len(p.toRemove) == 0 {
		return nil
	}
	if err := guardSync(r.c, len(current), len(p.toRemove), len(r.ids)); err != nil {
		return err
	}
	return r.prog.Checkpoint(ctx, step, syncPlan{Remove: p.toRemove})
}

// add adds toAdd in batches and returns how many became members and the
// ids Wix invited instead (recorded under invitedKey after each batch). The
// rows of a batch Wix refused are marked failed. Batches are not
// checkpointed: a redelivery lists the group's members and adds only the
// others.
func (r *provisionRun) add(ctx context.Context, toAdd []string) (added int, invited []string, _ error) {
	rowOf := make(map[string]int, len(r.ids))
	for i, row := range r.rows {
		if row.MemberID != "" {
			rowOf[row.MemberID] = i
		}
	}
	expectAdds(ctx, len(toAdd))
	for k, chunk := range wix.Chunk(toAdd, wix.MaxMemberIDsPerAdd) {
		step := "add." + strconv.Itoa(k)
		b, err := r.batch(ctx, step, func(b *batchStep) error {
			answer, err := r.site.AddGroupMembers(ctx, r.g.ID, chunk)
			if err != nil {
				if !itemRefused(err) {
					return fmt.Errorf("add members batch %d: %w", k, err)
				}
				r.log.Warn("add members batch refused", zap.Int("batch", k), zap.Error(err))
				b.Failed = errorDetail(err)
			} else {
				b.Invited = notAnswered(chunk, answer)
			}
			return nil
		})
		if err != nil {
			return 0, nil, err
		}
		if len(b.Invited) > 0 {
			// At once: a redelivery must not invite them again.
			if err := r.h.updateInvited(ctx, r.cmd.SiteID, r.g.ID, b.Invited, nil); err != nil {
				return 0, nil, err
			}
		}
		if b.Failed != "" {
			for _, id := range chunk {
				r.rows[rowOf[id]] = rowResult{Reason: messages.ReasonFailed, Detail: b.Failed}
			}
			continue
		}
		added += len(chunk) - len(b.Invited)
		runtime.ProgressFrom(ctx).Set(runtime.ProgressRowsAdded, int64(added))
		invited = append(invited, b.Invited...)
	}
	return added, invited, nil
}

// remove removes toRemove (sync mode only) in batches and returns the ids
// removed, and those of the batches Wix refused (4xx) with its refusal:
// they are left for the next sync, and the event names them. Batches are not
// checkpointed: a redelivery lists the members again and sends only the
// ids still members (isMember); the others count as removed.
func (r *provisionRun) remove(ctx context.Context, toRemove []string, isMember map[string]bool) (removed []string, notRemoved []messages.MemberOutcome, _ error) {
	if r.c.Membership != messages.MembershipSync {
		return nil, nil, nil
	}
	for k, chunk := range wix.Chunk(toRemove, wix.MaxMemberIDsPerAdd) {
		left := slices.DeleteFunc(slices.Clone(chunk), func(id string) bool { return !isMember[id] })
		if len(left) == 0 {
			removed = append(removed, chunk...) // by an earlier attempt
			continue
		}
		step := "remove." + strconv.Itoa(k)
		b, err := r.batch(ctx, step, func(b *batchStep) error {
			if err := r.site.RemoveGroupMembers(ctx, r.g.ID, left); err != nil {
				if !itemRefused(err) {
					return fmt.Errorf("remove members batch %d: %w", k, err)
				}
				// Not fatal: tomorrow's sync tries again.
				r.log.Warn("remove members batch refused", zap.Int("batch", k), zap.Error(err))
				b.Failed = errorDetail(err)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if b.Failed != "" {
			for _, id := range left {
				notRemoved = append(notRemoved, messages.MemberOutcome{MemberID: id, Reason: b.Failed})
			}
			removed = append(removed, slices.DeleteFunc(slices.Clone(chunk), func(id string) bool { return isMember[id] })...) // by an earlier attempt
			continue
		}
		removed = append(removed, chunk...)
	}
	return removed, notRemoved, nil
}

// batch runs send for one add or remove batch.
func (r *provisionRun) batch(ctx context.Context, step string, send func(*batchStep) error) (batchStep, error) {
	var b batchStep
	if err := send(&b); err != nil {
		return b, err
	}
	return b, r.h.at(ctx, step)
}

// settings sets the command's membership questions and rules. Both calls
// replace the whole list, so a redelivery may repeat them: no checkpoint.
func (r *provisionRun) settings(ctx context.Context) error {
	if len(r.c.Questions) > 0 {
		if _, err := r.site.ReplaceMembershipQuestions(ctx, r.g.ID, toWixQuestions(r.c.Questions)); err != nil {
			return fmt.Errorf("set membership questions: %w", err)
		}
	}
	if len(r.c.Rules) > 0 {
		if _, err := r.site.ReplaceRules(ctx, r.g.ID, toWixRules(r.c.Rules)); err != nil {
			return fmt.Errorf("set rules: %w", err)
		}
	}
	return nil
}

// provisioned returns the completion event, listing the rows not added
// and the members not removed.
func (r *provisionRun) provisioned(added, invited, already int, removed []string, notRemoved []messages.MemberOutcome) messages.Event {
	var notAdded []messages.RowOutcome
	for i, row := range r.rows {
		if row.Reason == "" {
			continue
		}
		p := r.c.People[i]
		notAdded = append(notAdded, messages.RowOutcome{Row: i + 1, Ref: p.Ref, Kind: p.Kind(), Reason: row.Reason, Detail: row.Detail, Candidates: row.Candidates})
	}
	r.log.Info("group provisioned", zap.String("group_id", r.g.ID), zap.Bool("reused", r.g.Reused),
		zap.Int("added", added), zap.Int("invited", invited), zap.Int("already", already), zap.Int("removed", len(removed)),
		zap.Int("not_removed", len(notRemoved)), zap.Int("not_added", len(notAdded)), zap.Int64("wix_calls", r.prog.Calls()))
	return &messages.GroupProvisioned{
		EventMeta:      r.cmd.EventMeta(),
		GroupID:        r.g.ID,
		Slug:           r.g.Slug,
		Name:           r.c.Group.Name,
		Reused:         r.g.Reused,
		Added:          added,
		Invited:        invited,
		AlreadyMembers: already,
		Removed:        removed,
		NotRemoved:     notRemoved,
		NotAdded:       sortedOutcomes(notAdded),
		WixCalls:       r.prog.Calls(),
		SettingsDiffer: r.g.Differ, SettingsUpdated: r.settingsUpdated,
	}
}

// syncRemovals returns the members a sync removes: the group's members
// (current) that are not admins and not among the roster's resolved member
// ids (keep). Unresolved rows have no id, so they keep no one.
func syncRemovals(current []groupMember, keep []string) []string {
	kept := make(map[string]bool, len(keep))
	for _, id := range keep {
		kept[id] = true
	}
	var out []string
	for _, m := range current {
		if !m.Admin && !kept[m.ID] {
			out = append(out, m.ID)
		}
	}
	return out
}

// guardSync refuses (permanent) a sync that removes someone while no row of
// the roster resolved to a member, or that removes more than half of the
// group's members (admins counted), unless c.AllowMassRemoval. It runs
// before the first add or remove; its pass is checkpointed with the
// removals (syncPlan).
func guardSync(c *messages.ProvisionGroup, members, toRemove, resolved int) error {
	if c.AllowMassRemoval || toRemove == 0 {
		return nil
	}
	limit := members / 2
	switch {
	case resolved == 0:
		return failure.Permanent(fmt.Errorf("sync would remove %d of the group's %d members and no row of the roster resolved to a member (0 of %d rows); send allowMassRemoval:true to allow it",
			toRemove, members, len(c.People)))
	case toRemove > limit:
		return failure.Permanent(fmt.Errorf("sync would remove %d of the group's %d members, more than half (at most %d without allowMassRemoval; %d of %d rows resolved to members); send allowMassRemoval:true to allow it",
			toRemove, members, limit, resolved, len(c.People)))
	}
	return nil
}

// group finds or creates the group, at most once per command.
//
// Exactly once without a checkpoint: a fresh command (and an in-process
// retry of attempts that sent no Create Group: ledger.Lease.Unsure) finds
// the group by name or creates it; a resumed one that finds none polls
// Query Groups for up to CreateSettle first (settle), since a create an
// earlier attempt sent may show late. With allowDuplicateName a group of
// the name may exist already, so the intent to create, with the groups
// that exist before, is checkpointed before the create instead (one write).
//
// On a site that requires approval of groups created by members, the create
// becomes a group request: group returns *errPending with its id and
// remembers it per site and name (requestKey). A later command for the same
// name finds the request: still pending, *errPending again (no second
// request); approved, its group; rejected, a permanent error.
func (h *ProvisionGroup) group(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.ProvisionGroup, siteID string) (groupStep, error) {
	var g groupStep
	if _, err := prog.Load(ctx, groupStepName, &g); err != nil {
		return g, err
	}
	if g.ID != "" {
		return g, nil
	}
	same, err := groupsNamed(ctx, site, c.Group.Name)
	if err != nil {
		return g, err
	}
	var done bool
	switch {
	case g.Creating: // an intent checkpointed by an earlier attempt
		g, done, err = h.resumeIntent(ctx, site, prog, c, siteID, g, same)
	case c.AllowDuplicateName:
		g, done, err = h.intend(ctx, site, prog, c, siteID, same)
	default:
		g, done, err = h.find(ctx, site, prog, c, siteID, same)
	}
	if err != nil || done {
		return g, err
	}
	return h.create(ctx, site, prog, c, siteID)
}

// groupStepName is the ledger step of the group (groupStep).
const groupStepName = "group"

// find reuses the oldest group of the name (done), or reports none so the
// caller creates one. A resumed command (Unsure) that finds none first
// polls for up to CreateSettle (settle): an earlier attempt's create may
// show late. A group a resumed command finds that Wix dates at or after
// the command's first attempt (by groupflow's clock) is reported as
// created by it, not reused: a Wix clock behind groupflow's can make such
// a group read as reused, never make a second one.
func (h *ProvisionGroup) find(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.ProvisionGroup, siteID string, same []wix.Group) (g groupStep, done bool, err error) {
	if len(same) == 0 {
		if found, err := h.pendingRequest(ctx, site, prog, siteID, c.Group.Name, &g); err != nil || found {
			return g, true, err
		}
		if !prog.Unsure() {
			return g, false, nil
		}
		x, err := h.settle(ctx, site, siteID, c.Group.Name, same, func(wix.Group) bool { return true })
		if err != nil || x == nil {
			return g, err != nil, err
		}
		same = []wix.Group{*x}
	}
	x := same[0]
	// Wix dates to the millisecond: a group created in the millisecond the
	// command started (a fast Wix) is dated before StartedAt's nanoseconds.
	if prog.Unsure() && x.CreatedDate != nil && !x.CreatedDate.Before(prog.Record().StartedAt.Truncate(time.Millisecond)) {
		return groupStep{ID: x.ID, Slug: x.Slug, OwnerID: x.OwnerID}, true, nil
	}
	// Not checkpointed unless its settings differ: a redelivery finds the
	// same (oldest) group, but after an update of its settings it must
	// still report what differed.
	g = groupStep{ID: x.ID, Slug: x.Slug, OwnerID: x.OwnerID, Reused: true, Differ: settingsDiffer(x, c.Group)}
	if len(g.Differ) == 0 {
		return g, true, nil
	}
	return g, true, prog.Checkpoint(ctx, groupStepName, g)
}

// intend checkpoints the intent to create a group beside the ones of that
// name (allowDuplicateName): Creating, with their ids. A pending request
// remembered for the name when there are none is the answer (done).
func (h *ProvisionGroup) intend(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.ProvisionGroup, siteID string, same []wix.Group) (g groupStep, done bool, err error) {
	if len(same) == 0 {
		if found, err := h.pendingRequest(ctx, site, prog, siteID, c.Group.Name, &g); err != nil || found {
			return g, true, err
		}
	}
	g = groupStep{Creating: true}
	for _, x := range same {
		g.Existing = append(g.Existing, x.ID)
	}
	return g, false, prog.Checkpoint(ctx, groupStepName, g)
}

// resumeIntent resumes after a checkpointed intent (intend): a create was
// sent and its outcome is unknown, so a group of the name that did not
// exist before is ours, polling for up to CreateSettle (settle) before
// creating again.
func (h *ProvisionGroup) resumeIntent(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.ProvisionGroup, siteID string, g groupStep, same []wix.Group) (groupStep, bool, error) {
	x, err := h.settle(ctx, site, siteID, c.Group.Name, same, func(x wix.Group) bool { return !hasString(g.Existing, x.ID) })
	if err != nil || x == nil {
		return g, err != nil, err
	}
	g = groupStep{ID: x.ID, Slug: x.Slug, OwnerID: x.OwnerID}
	return g, true, prog.Checkpoint(ctx, groupStepName, g)
}

// settle polls Query Groups every SettlePoll for up to CreateSettle until a
// group of the name is ours, and returns it (nil when none showed). A
// pending group request of the name ends it with *errPending. Costs 1 Query
// Groups and 1 List Group Requests per poll.
func (h *ProvisionGroup) settle(ctx context.Context, site *wix.Site, siteID, name string, same []wix.Group, ours func(wix.Group) bool) (*wix.Group, error) {
	deadline := time.Now().Add(h.cfg.CreateSettle)
	for {
		for i := range same {
			if ours(same[i]) {
				return &same[i], nil
			}
		}
		if r, err := h.requestNamed(ctx, site, name); err != nil {
			return nil, err
		} else if r != nil && r.Status == wix.RequestPending {
			return nil, h.rememberRequest(ctx, siteID, name, r.ID)
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		if err := h.at(ctx, "settle.wait"); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(h.cfg.SettlePoll):
		}
		var err error
		if same, err = groupsNamed(ctx, site, name); err != nil {
			return nil, err
		}
	}
}

// create sends Create Group, marking the lease Acting first (a later
// attempt is then Unsure and looks before creating again); a refusal (4xx)
// takes the mark back. Not checkpointed after: a redelivery finds the group
// by name (settle), and that saves a write on every command.
func (h *ProvisionGroup) create(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.ProvisionGroup, siteID string) (groupStep, error) {
	if err := h.at(ctx, "create"); err != nil {
		return groupStep{}, err
	}
	// No write since Acquire (or the intent): make sure no other instance
	// took the command over (Hold), as the intent's compare-and-set did.
	if err := prog.Hold(ctx); err != nil {
		return groupStep{}, err
	}
	prog.Acting()
	created, err := site.CreateGroup(ctx, wix.Group{
		Name:          c.Group.Name,
		Description:   c.Group.Description,
		PrivacyStatus: c.Group.PrivacyStatus,
		Teaser:        c.Group.Teaser,
		MemberTitle:   c.Group.MemberTitle,
	}, c.CreatorID)
	var pe *wix.PendingGroupError
	switch {
	case errors.As(err, &pe) && pe.RequestID != "":
		return groupStep{}, h.rememberRequest(ctx, siteID, c.Group.Name, pe.RequestID)
	case errors.As(err, &pe):
		return groupStep{}, h.pendingCreated(ctx, site, siteID, c.Group.Name, "")
	case err != nil:
		if s := wix.StatusOf(err); s >= 400 && s < 500 {
			prog.Unacted() // refused: nothing was created
		}
		return groupStep{}, fmt.Errorf("create group: %w", err)
	}
	if c.CreatorID != "" {
		// A create for a member may have become a group request whose answer
		// carries an id that is not (yet) a group (the Velo listGroupRequests
		// example shows a request _id equal to its group's _id; unconfirmed).
		// One Get Group tells: a 404 means pending.
		if _, err := site.GetGroup(ctx, created.ID); wix.IsNotFound(err) {
			return groupStep{}, h.pendingCreated(ctx, site, siteID, c.Group.Name, created.ID)
		} else if err != nil {
			return groupStep{}, fmt.Errorf("created group: %w", err) // the error names the call and the group
		}
	}
	if err := h.at(ctx, "created"); err != nil {
		return groupStep{}, err
	}
	owner := created.OwnerID
	if c.CreatorID != "" {
		owner = c.CreatorID
	}
	return groupStep{ID: created.ID, Slug: created.Slug, OwnerID: owner, created: true}, nil
}

// pendingCreated remembers the group request a create became: the newest
// pending request of the name, else id (the id Wix answered, or none), and
// returns the *errPending that reports it.
func (h *ProvisionGroup) pendingCreated(ctx context.Context, site *wix.Site, siteID, name, id string) error {
	r, err := h.requestNamed(ctx, site, name)
	if err != nil {
		return err
	}
	if r != nil {
		id = r.ID
	}
	return h.rememberRequest(ctx, siteID, name, id)
}

// pendingRequest looks up the group request remembered for name. Still
// pending: *errPending. Approved: g is its group (checkpointed), found is
// true. Rejected or canceled: a permanent error (the remembered request is
// forgotten, so a later command asks again). Unknown: forgotten, not found.
func (h *ProvisionGroup) pendingRequest(ctx context.Context, site *wix.Site, prog *ledger.Lease, siteID, name string, g *groupStep) (found bool, err error) {
	var id string
	rev, err := h.ledger.Load(ctx, requestKey(siteID, name), &id)
	if err != nil || rev == 0 {
		return false, err
	}
	r, err := h.requestByID(ctx, site, id)
	if err != nil {
		return false, err
	}
	if r != nil && r.Status == wix.RequestPending {
		return true, &errPending{requestID: r.ID}
	}
	// Forgotten only if no other command remembered another request since
	// (then the conflict is transient: the redelivery reads that one).
	if err := h.ledger.Remove(ctx, requestKey(siteID, name), rev); err != nil {
		return false, fmt.Errorf("forget group request: %w", err)
	}
	switch {
	case r == nil:
		return false, nil
	case r.Status == wix.RequestApproved && r.Group.ID != "":
		*g = groupStep{ID: r.Group.ID, Slug: r.Group.Slug, OwnerID: r.Group.OwnerID}
		return true, prog.Checkpoint(ctx, groupStepName, *g)
	case r.Status == wix.RequestApproved:
		return false, nil // approved, group id not in the request: Query Groups will find it
	default:
		return true, failure.Permanent(fmt.Errorf("group request %s for %q was %s: %s", r.ID, name, r.Status, r.RequestDetails.RejectionReason))
	}
}

// rememberRequest stores the pending request id for name and returns the
// *errPending that reports it.
func (h *ProvisionGroup) rememberRequest(ctx context.Context, siteID, name, id string) error {
	err := updateShared(ctx, h.ledger, requestKey(siteID, name), func(cur *string) bool {
		changed := *cur != id
		*cur = id
		return changed
	})
	if err != nil {
		return fmt.Errorf("remember group request: %w", err)
	}
	return &errPending{requestID: id}
}

// maxRequestPages bounds the List Group Requests pages read to find one.
const maxRequestPages = 10

// findRequest returns the newest group request for which match is true, or
// nil. A site where List Group Requests is refused (4xx other than 404) has
// none to find. A 404 means the collection endpoint was not found (wrong
// base URL or --wix-group-requests-prefix): a permanent error, never "no
// request", or each re-send of a pending command would make another request.
func (h *ProvisionGroup) findRequest(ctx context.Context, site *wix.Site, match func(*wix.GroupRequest) bool) (*wix.GroupRequest, error) {
	for k := 0; k < maxRequestPages; k++ {
		page, err := site.ListGroupRequests(ctx, wix.Paging{Limit: wix.MaxPageSize, Offset: k * wix.MaxPageSize})
		if err != nil {
			if wix.IsNotFound(err) {
				return nil, failure.Permanent(fmt.Errorf("list group requests: endpoint not found, check --wix-base-url and --wix-group-requests-prefix: %w", err))
			}
			if itemRefused(err) {
				h.log.Debug("list group requests refused", zap.Error(err))
				return nil, nil
			}
			return nil, fmt.Errorf("list group requests: %w", err)
		}
		for i := range page.GroupRequests {
			if match(&page.GroupRequests[i]) {
				return &page.GroupRequests[i], nil
			}
		}
		if len(page.GroupRequests) < wix.MaxPageSize {
			break
		}
	}
	return nil, nil
}

func (h *ProvisionGroup) requestByID(ctx context.Context, site *wix.Site, id string) (*wix.GroupRequest, error) {
	if id == "" {
		return nil, nil
	}
	return h.findRequest(ctx, site, func(r *wix.GroupRequest) bool { return r.ID == id })
}

// requestNamed returns the newest pending group request for name, or nil.
func (h *ProvisionGroup) requestNamed(ctx context.Context, site *wix.Site, name string) (*wix.GroupRequest, error) {
	return h.findRequest(ctx, site, func(r *wix.GroupRequest) bool {
		return r.Status == wix.RequestPending && r.Group.Name == name
	})
}

// notAnswered returns the ids of sent missing from Add Group Members'
// answer: site members with a private profile, who were invited instead.
func notAnswered(sent []string, answer []wix.GroupMember) []string {
	in := make(map[string]bool, len(answer))
	for _, m := range answer {
		in[m.MemberID] = true
	}
	var out []string
	for _, id := range sent {
		if !in[id] {
			out = append(out, id)
		}
	}
	return out
}

// updateInvited adds invited to the ids recorded as invited to the group
// and not members yet (invitedKey), and drops those in isMember; no write
// when nothing changes.
func (h *ProvisionGroup) updateInvited(ctx context.Context, siteID, groupID string, invited []string, isMember map[string]bool) error {
	err := updateShared(ctx, h.ledger, invitedKey(siteID, groupID), func(cur *[]string) bool {
		keep := make([]string, 0, len(*cur)+len(invited))
		seen := make(map[string]bool, len(*cur)+len(invited))
		for _, list := range [][]string{*cur, invited} {
			for _, id := range list {
				if !isMember[id] && !seen[id] {
					seen[id] = true
					keep = append(keep, id)
				}
			}
		}
		changed := !slices.Equal(keep, *cur)
		*cur = keep
		return changed
	})
	if err != nil {
		return fmt.Errorf("save invitations: %w", err)
	}
	return nil
}

// updateShared applies fn to the value of a key shared by commands and
// stores it with a compare-and-set, reading again after another command's
// write; fn reports whether it changed the value (no write otherwise).
func updateShared[T any](ctx context.Context, l *ledger.Ledger, key string, fn func(*T) bool) error {
	for range 8 {
		var v T
		rev, err := l.Load(ctx, key, &v)
		if err != nil {
			return err
		}
		if !fn(&v) {
			return nil
		}
		if _, err := l.Store(ctx, key, v, rev); !errors.Is(err, ledger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%s: %w (8 attempts)", key, ledger.ErrConflict)
}

// groupsNamed returns the groups named exactly name, oldest first (Query
// Groups by title, then an exact comparison: Wix's filter may be looser),
// each once; maxIdlePages pages in a row without a new group fail it
// (permanent).
func groupsNamed(ctx context.Context, site *wix.Site, name string) ([]wix.Group, error) {
	q := wix.Query{
		Filter: map[string]any{"title": map[string]any{"$eq": name}},
		Sort:   []wix.Sort{{FieldName: "createdDate", Order: "ASC"}},
		Paging: &wix.Paging{Limit: wix.MaxPageSize},
	}
	var out []wix.Group
	kept := map[string]bool{}
	idle := newIdlePages("query groups by name")
	for page, err := range site.GroupPages(ctx, q) {
		if err != nil {
			return nil, fmt.Errorf("query groups by name: %w", err)
		}
		for _, g := range page.Groups {
			if g.Name == name && !kept[g.ID] {
				kept[g.ID] = true
				out = append(out, g)
			}
		}
		if err := idle.page(len(page.Groups), func(i int) string { return page.Groups[i].ID }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// members lists the group's members (⌈members/100⌉ List Group Members),
// each once: an id Wix names several times (offset paging shifted by joins,
// or an odd Wix) is one member, an admin if any entry says so, so that the
// sync guard counts the group's real size and a removal is sent and
// reported once. maxIdlePages pages in a row without a new member
// fail the command (permanent). Not checkpointed: a redelivery lists
// them again, and that list, not one from before the first attempt's adds
// and removals, is what it must plan from.
func (h *ProvisionGroup) members(ctx context.Context, site *wix.Site, groupID string) ([]groupMember, error) {
	var out []groupMember
	at := map[string]int{}
	idle := newIdlePages("list group members of " + groupID)
	for page, err := range site.GroupMemberPages(ctx, groupID, 0) {
		if err != nil {
			return nil, fmt.Errorf("list group members: %w", err)
		}
		if len(page.Members) == 0 {
			break
		}
		for _, m := range page.Members {
			admin := m.Role == wix.RoleAdmin
			if i, seen := at[m.MemberID]; seen {
				out[i].Admin = out[i].Admin || admin
				continue
			}
			if len(out) >= h.cfg.MaxMembers {
				return nil, failure.Permanent(fmt.Errorf("list group members of %s: more than %d members, the most one command lists and holds (groupflow --max-group-members)",
					groupID, h.cfg.MaxMembers))
			}
			at[m.MemberID] = len(out)
			out = append(out, groupMember{ID: m.MemberID, Admin: admin})
		}
		if err := idle.page(len(page.Members), func(i int) string { return page.Members[i].MemberID }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func toWixQuestions(qs []messages.Question) []wix.MembershipQuestion {
	out := make([]wix.MembershipQuestion, len(qs))
	for i, q := range qs {
		out[i] = wix.MembershipQuestion{Text: q.Text, Required: q.Required}
	}
	return out
}

func toWixRules(rs []messages.Rule) []wix.GroupRule {
	out := make([]wix.GroupRule, len(rs))
	for i, r := range rs {
		out[i] = wix.GroupRule{Title: r.Title, Description: r.Description}
	}
	return out
}

func fromWixRules(rs []wix.GroupRule) []messages.Rule {
	out := make([]messages.Rule, len(rs))
	for i, r := range rs {
		out[i] = messages.Rule{Title: r.Title, Description: r.Description}
	}
	return out
}
