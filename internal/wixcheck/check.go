// Package wixcheck is the preflight of a Wix site: with the site's
// configured credentials it makes the cheapest read-only call of every
// endpoint groupflow's flows need, once per endpoint, and says per flow
// whether it will work and, if not, why and what to configure. groupctl wix
// check prints it; groupflow logs it at startup (one line per flow).
//
// Writes are never tried: a write endpoint is represented by the read of the
// same API with the same credential (groups.create by groups.query,
// groupMembers.add/remove by groupMembers.list, questions.replace by
// questions.list, rules.replace by rules.list). Wix checks the group-admin
// right of a member credential only when it writes, so a member who is not
// an admin of a group passes the preflight and is refused per group later.
package wixcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"groupflow/internal/wix"
)

// Flow is one groupflow workflow and the read probes that stand for the
// endpoints it needs.
type Flow struct {
	// Name is the flow's name in the output.
	Name string
	// Probes are the operations read (wix.Op* names).
	Probes []string
	// Writes are the write endpoints the probes stand for (informational).
	Writes []string
	// Note is printed after the verdict.
	Note string
}

// Flows lists groupflow's workflows in output order.
var Flows = []Flow{
	{Name: "provision", Probes: []string{wix.OpGroupsQuery, wix.OpMembersQuery, wix.OpContactsQuery, wix.OpGroupMembersList, wix.OpGroupRequestsList},
		Writes: []string{wix.OpGroupsCreate, wix.OpGroupMembersAdd, wix.OpGroupMembersRemove},
		Note:   "a provision command with questions or rules also needs the questions or rules flow"},
	{Name: "campaign", Probes: []string{wix.OpGroupMembersList, wix.OpMembersQuery, wix.OpSubscriptionsQuery}},
	{Name: "interest campaign", Probes: []string{wix.OpQuestionsAnswers, wix.OpMembersQuery, wix.OpSubscriptionsQuery}},
	{Name: "questions", Probes: []string{wix.OpQuestionsList}, Writes: []string{wix.OpQuestionsReplace}},
	{Name: "rules", Probes: []string{wix.OpGroupsQuery, wix.OpRulesList}, Writes: []string{wix.OpRulesReplace}},
	{Name: "report", Probes: []string{wix.OpGroupsList, wix.OpGroupsQuery}},
}

// placeholderGroup is probed when the site has no group: a 404 still shows
// that the credential was accepted. A 404 from any other probe (a
// collection endpoint, or a real group's) is a failure.
const placeholderGroup = "00000000-0000-4000-8000-000000000000"

// groupScoped are the probes that read one group: with no group on the
// site they use placeholderGroup, and only then is their 404 accepted.
var groupScoped = map[string]bool{wix.OpGroupMembersList: true, wix.OpQuestionsList: true, wix.OpQuestionsAnswers: true, wix.OpRulesList: true}

// notFoundError is a 404 from a probe that names no (placeholder) group: the
// endpoint itself was not found.
type notFoundError struct {
	op  string
	err error
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("%s: endpoint not found: check --wix-base-url or the path prefixes (%v)", e.op, e.err)
}

func (e *notFoundError) Unwrap() error { return e.err }

// Result is the verdict of one flow.
type Result struct {
	Flow string `json:"flow"`
	// OK means every probe of the flow was accepted.
	OK bool `json:"ok"`
	// Reason says why not and what to configure (empty when OK).
	Reason string `json:"reason,omitempty"`
	// Checked lists the operations read for the flow.
	Checked []string `json:"checked"`
	// NotTried lists the write endpoints the reads stand for.
	NotTried []string `json:"notTried,omitempty"`
	// Note is the flow's Note.
	Note string `json:"note,omitempty"`
}

// Check runs the probes of every flow on site, each operation once, and
// returns one Result per flow in Flows order. It never returns secrets.
func Check(ctx context.Context, site *wix.Site) []Result {
	groupID := ""
	errs := map[string]error{}
	probe := func(op string) error {
		if err, done := errs[op]; done {
			return err
		}
		placeholder := groupID == "" && groupScoped[op]
		err := run(ctx, site, op, &groupID)
		if wix.IsNotFound(err) {
			if placeholder {
				err = nil // the endpoint answered past authentication
			} else {
				err = &notFoundError{op: op, err: err}
			}
		}
		errs[op] = err
		return err
	}
	// groups.query first: it finds a real group for the group-scoped reads.
	_ = probe(wix.OpGroupsQuery)
	out := make([]Result, 0, len(Flows))
	for _, f := range Flows {
		r := Result{Flow: f.Name, OK: true, Checked: f.Probes, NotTried: f.Writes, Note: f.Note}
		var reasons []string
		for _, op := range f.Probes {
			if err := probe(op); err != nil {
				r.OK = false
				reasons = append(reasons, explain(op, err, site))
			}
		}
		r.Reason = strings.Join(dedupe(reasons), "; ")
		out = append(out, r)
	}
	return out
}

// run makes the read of op (page size 1).
func run(ctx context.Context, site *wix.Site, op string, groupID *string) error {
	one := &wix.Paging{Limit: 1}
	gid := *groupID
	if gid == "" {
		gid = placeholderGroup
	}
	var err error
	switch op {
	case wix.OpGroupsQuery:
		var p *wix.GroupsPage
		if p, err = site.QueryGroups(ctx, wix.Query{Paging: one}); err == nil && len(p.Groups) > 0 {
			*groupID = p.Groups[0].ID
		}
	case wix.OpGroupsList:
		_, err = site.ListGroups(ctx, *one)
	case wix.OpMembersQuery:
		_, err = site.QueryMembers(ctx, wix.MembersQuery{Paging: one})
	case wix.OpContactsQuery:
		_, err = site.QueryContacts(ctx, wix.Query{Paging: one})
	case wix.OpSubscriptionsQuery:
		_, err = site.QueryEmailSubscriptions(ctx, []string{"preflight@example.invalid"}, *one)
	case wix.OpGroupMembersList:
		_, err = site.ListGroupMembers(ctx, gid, *one)
	case wix.OpQuestionsList:
		_, err = site.ListMembershipQuestions(ctx, gid)
	case wix.OpQuestionsAnswers:
		_, err = site.ListAnswers(ctx, gid, nil, *one)
	case wix.OpRulesList:
		_, err = site.ListRules(ctx, gid)
	case wix.OpGroupRequestsList:
		_, err = site.ListGroupRequests(ctx, *one)
	default:
		err = fmt.Errorf("no probe for %s", op)
	}
	return err
}

// explain turns a failed probe into a reason that says what to configure.
func explain(op string, err error, site *wix.Site) string {
	var nf *notFoundError
	if errors.As(err, &nf) {
		return nf.Error()
	}
	var ar *wix.AuthRefusedError
	if errors.As(err, &ar) {
		return ar.Error()
	}
	var ae *wix.APIError
	if errors.As(err, &ae) && !strings.HasPrefix(ae.Op, "oauth.") {
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("Wix refused %s for site %s (%d %s): give the API key or app the permission of that API, or check the site id", op, site.ID(), ae.Status, ae.Code)
		}
		return fmt.Sprintf("%s could not be checked: %s", op, ae.Error())
	}
	return fmt.Sprintf("%s could not be checked: %v", op, err)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Format prints one line per flow: site, flow, "ok" or "FAILS", and the
// operations read or the reason.
func Format(w io.Writer, siteID string, rs []Result) {
	for _, r := range rs {
		if r.OK {
			fmt.Fprintf(w, "%s  %-17s  ok     read %s", siteID, r.Flow, strings.Join(r.Checked, ", "))
			if len(r.NotTried) > 0 {
				fmt.Fprintf(w, " (writes not tried: %s)", strings.Join(r.NotTried, ", "))
			}
		} else {
			fmt.Fprintf(w, "%s  %-17s  FAILS  %s", siteID, r.Flow, r.Reason)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "; %s", r.Note)
		}
		fmt.Fprintln(w)
	}
}

// Log writes one info line per flow (warn when it will not work).
func Log(log *zap.Logger, siteID string, rs []Result) {
	for _, r := range rs {
		fields := []zap.Field{zap.String("site", siteID), zap.String("flow", r.Flow), zap.Bool("ok", r.OK), zap.Strings("checked", r.Checked)}
		if r.OK {
			log.Info("wix preflight: flow will work", fields...)
			continue
		}
		log.Info("wix preflight: flow will NOT work", append(fields, zap.String("reason", r.Reason))...)
	}
}
