package handlers

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// PropagateRules handles propagate_rules: the rules (from the command, or
// 1 List Rules of the source) replace the rules of every target.
//
// Targets: explicit ids (no call), every group (Query Groups pages of 100),
// or groups whose name starts with a prefix (Query Groups with
// {"title": {"$startsWith": prefix}}, then a case-insensitive prefix check
// client-side). The source is never a target.
//
// Calls: k explicit targets → 1 + k; all G groups → 1 + ⌈G/100⌉ + (G−1);
// rules given in the command save the List Rules. A dry run writes nothing
// and lists each target's rules to diff them: 1 List Rules per target
// instead of the replace.
//
// A source group with no rules would clear every target: without
// AllowEmpty the command fails (permanent) after the List Rules of the
// source, before the targets are listed, read or written. RulesPropagated
// counts Updated in a real run and WouldUpdate in a dry run.
//
// A target Wix refuses (4xx) is reported failed and the others go on; a
// transient failure that outlasts the client's retries fails the attempt
// and the redelivery skips the targets done (checkpointed per target). The
// source rules and the target list are checkpointed too, so a resumed run
// propagates the same rules to the same groups. A missing source group (404)
// fails the command (command_failed, DLQ).
type PropagateRules struct {
	sites Sites
	log   *zap.Logger
}

// NewPropagateRules returns the propagate_rules handler.
func NewPropagateRules(sites Sites, log *zap.Logger) *PropagateRules {
	if log == nil {
		log = zap.NewNop()
	}
	return &PropagateRules{sites: sites, log: log.Named("propagate_rules")}
}

// CommandType implements runtime.TypedHandler.
func (h *PropagateRules) CommandType() string { return messages.CmdPropagateRules }

// target is one target group (the "targets" checkpoint).
type target struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Handle implements runtime.TypedHandler. Its steps: the rules (given, or
// read from the source group), the targets, one checkpointed outcome per
// target, the event.
func (h *PropagateRules) Handle(ctx context.Context, cmd *runtime.Command, c *messages.PropagateRules) (_ messages.Event, err error) {
	site, ctx, prog, err := begin(ctx, h.sites, cmd)
	if err != nil {
		return nil, err
	}

	rules, err := sourceRules(ctx, site, prog, c)
	if err != nil {
		return nil, err
	}
	targets, err := h.targets(ctx, site, prog, c)
	if err != nil {
		return nil, err
	}

	wixRules := toWixRules(rules)
	evt := &messages.RulesPropagated{EventMeta: cmd.EventMeta(), SourceGroupID: c.SourceGroupID, DryRun: c.DryRun, Rules: len(rules)}
	runtime.ProgressFrom(ctx).ExpectCalls(int64(len(targets))) // one call per target
	for _, t := range targets {
		step := "target." + t.ID
		var o messages.TargetOutcome
		found, err := prog.Load(ctx, step, &o)
		if err != nil {
			return nil, err
		}
		if !found {
			if o, err = propagateTo(ctx, site, c, t, rules, wixRules); err != nil {
				return nil, err
			}
			if err := prog.Checkpoint(ctx, step, o); err != nil {
				return nil, err
			}
		}
		switch o.Outcome {
		case messages.OutcomeUpdated:
			evt.Updated++
		case messages.OutcomeWouldUpdate:
			evt.WouldUpdate++
		case messages.OutcomeFailed:
			evt.Failed++
		}
		evt.Targets = append(evt.Targets, o)
	}
	evt.WixCalls = prog.Calls()
	h.log.Info("rules propagated", zap.String("command_id", cmd.ID), zap.Bool("dry_run", c.DryRun),
		zap.Int("targets", len(targets)), zap.Int("updated", evt.Updated), zap.Int("would_update", evt.WouldUpdate), zap.Int("failed", evt.Failed), zap.Int64("wix_calls", evt.WixCalls))
	return evt, nil
}

// sourceRules returns the command's rules, or else the source group's (one
// Wix call, checkpointed). A missing source group, rules a command could
// not carry (messages.RulesProblems: too many, too long, control
// characters, titles repeated), or none without c.AllowEmpty are permanent
// errors, before any target is listed, read or written.
func sourceRules(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.PropagateRules) ([]messages.Rule, error) {
	rules := c.Rules
	if len(rules) > 0 {
		return rules, nil
	}
	if found, err := prog.Load(ctx, "source", &rules); err != nil || found {
		return rules, err
	}
	got, err := site.ListRules(ctx, c.SourceGroupID)
	if err != nil {
		if wix.IsNotFound(err) {
			return nil, failure.Permanent(fmt.Errorf("source group %s not found: %w", c.SourceGroupID, err))
		}
		return nil, fmt.Errorf("source: %w", err) // the error names the call and the group
	}
	rules = fromWixRules(got)
	if probs := messages.RulesProblems(rules); len(probs) > 0 {
		return nil, failure.Permanent(fmt.Errorf("source group %s: its rules break the limits of a command's rules: %s", c.SourceGroupID, fieldProblems(probs)))
	}
	if len(rules) == 0 && !c.AllowEmpty {
		// Replacing with nothing clears every target: only on request. A
		// dry run is refused too, as the same command without dryRun would
		// be. Nothing is checkpointed, so a replay once the source has
		// rules reads them.
		return nil, failure.Permanent(fmt.Errorf("source group %s has no rules; send allowEmpty:true to clear the targets' rules", c.SourceGroupID))
	}
	return rules, prog.Checkpoint(ctx, "source", rules)
}

// propagateTo replaces the rules of target t (one Wix call), or in a dry
// run reads them and diffs them with rules. A refusal of that group is its
// outcome; a member credential that is needed is a permanent error.
func propagateTo(ctx context.Context, site *wix.Site, c *messages.PropagateRules, t target, rules []messages.Rule, wixRules []wix.GroupRule) (messages.TargetOutcome, error) {
	o := messages.TargetOutcome{GroupID: t.ID, Name: t.Name}
	var err error
	if c.DryRun {
		var old []wix.GroupRule
		if old, err = site.ListRules(ctx, t.ID); err == nil {
			d := messages.DiffRules(fromWixRules(old), rules)
			o.Diff = &d
			o.Outcome = messages.OutcomeWouldUpdate
			if d.Empty() {
				o.Outcome = messages.OutcomeUnchanged
			}
			return o, nil
		}
	} else if _, err = site.ReplaceRules(ctx, t.ID, wixRules); err == nil {
		o.Outcome = messages.OutcomeUpdated
		return o, nil
	}
	switch {
	case needsMemberCredential(err):
		return o, failure.Permanent(err)
	case itemRefused(err):
		o.Outcome, o.Reason = messages.OutcomeFailed, groupFailure(err)
		return o, nil
	case c.DryRun:
		return o, err // names the call and the group
	}
	return o, err // names the call and the group
}

// targets selects the target groups, once per command. Each group once; a
// listing whose pages stop bringing new groups (maxIdlePages in a row)
// fails the command (permanent) before any target is written.
func (h *PropagateRules) targets(ctx context.Context, site *wix.Site, prog *ledger.Lease, c *messages.PropagateRules) ([]target, error) {
	var out []target
	if found, err := prog.Load(ctx, "targets", &out); err != nil || found {
		return out, err
	}
	switch t := c.Targets; {
	case len(t.GroupIDs) > 0:
		for _, id := range t.GroupIDs {
			if id != c.SourceGroupID {
				out = append(out, target{ID: id})
			}
		}
		return out, nil // nothing to checkpoint: it comes from the command
	case t.All || t.NamePrefix != "":
		q := wix.Query{
			Sort:   []wix.Sort{{FieldName: "createdDate", Order: "ASC"}},
			Paging: &wix.Paging{Limit: wix.MaxPageSize},
		}
		prefix := strings.ToLower(t.NamePrefix)
		if !t.All {
			q.Filter = map[string]any{"title": map[string]any{"$startsWith": t.NamePrefix}}
		}
		seen := map[string]bool{}
		idle := newIdlePages("list groups")
		for page, err := range site.GroupPages(ctx, q) {
			if err != nil {
				return nil, fmt.Errorf("list groups: %w", err)
			}
			if err := idle.page(len(page.Groups), func(i int) string { return page.Groups[i].ID }); err != nil {
				return nil, err
			}
			for _, g := range page.Groups {
				if g.ID == c.SourceGroupID || seen[g.ID] {
					continue
				}
				if !t.All && !strings.HasPrefix(strings.ToLower(g.Name), prefix) {
					continue
				}
				seen[g.ID] = true
				out = append(out, target{ID: g.ID, Name: g.Name})
			}
		}
	}
	return out, prog.Checkpoint(ctx, "targets", out)
}

// maxFieldProblems bounds the problems fieldProblems names.
const maxFieldProblems = 5

// fieldProblems joins the first maxFieldProblems of probs, and counts the rest.
func fieldProblems(probs []messages.FieldError) string {
	parts := make([]string, 0, maxFieldProblems+1)
	for i, p := range probs {
		if i == maxFieldProblems {
			parts = append(parts, fmt.Sprintf("and %d more", len(probs)-maxFieldProblems))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}
