package messages

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the first subject token used when Subjects.Prefix is empty.
const DefaultPrefix = "groups"

// Command types. A command of type T is published on Subjects.Command(T),
// e.g. "groups.cmd.provision_group".
const (
	// CmdProvisionGroup creates (or reuses) a group and adds people to it.
	CmdProvisionGroup = "provision_group"
	// CmdSendCampaign selects the members of groups who should receive a campaign.
	CmdSendCampaign = "send_campaign"
	// CmdSetMembershipQuestions replaces the membership questions of groups.
	CmdSetMembershipQuestions = "set_membership_questions"
	// CmdPropagateRules copies group rules from a source group (or an inline list) to target groups.
	CmdPropagateRules = "propagate_rules"
	// CmdGenerateReport builds the site's group report (top and idle groups).
	CmdGenerateReport = "generate_report"
)

// Event types. An event of type T is published on Subjects.Event(T), e.g.
// "groups.evt.group_provisioned", with CloudEvents type CEType(T).
const (
	// EvtGroupProvisioned completes a provision_group command.
	EvtGroupProvisioned = "group_provisioned"
	// EvtMemberSelected is published once per member selected by a send_campaign command.
	EvtMemberSelected = "member_selected"
	// EvtCampaignCompleted completes a send_campaign command.
	EvtCampaignCompleted = "campaign_completed"
	// EvtMembershipQuestionsSet completes a set_membership_questions command.
	EvtMembershipQuestionsSet = "membership_questions_set"
	// EvtRulesPropagated completes a propagate_rules command.
	EvtRulesPropagated = "rules_propagated"
	// EvtReportGenerated completes a generate_report command.
	EvtReportGenerated = "report_generated"
	// EvtCommandFailed completes any command that could not be carried out.
	EvtCommandFailed = "command_failed"
	// EvtEmailSent is published by the downstream mailer after sending a campaign email.
	EvtEmailSent = "email_sent"
	// EvtEmailFailed is published by the downstream mailer when a campaign email could not be sent.
	EvtEmailFailed = "email_failed"
)

var commandTypes = []string{CmdProvisionGroup, CmdSendCampaign, CmdSetMembershipQuestions, CmdPropagateRules, CmdGenerateReport}

var eventTypes = []string{
	EvtGroupProvisioned, EvtMemberSelected, EvtCampaignCompleted, EvtMembershipQuestionsSet,
	EvtRulesPropagated, EvtReportGenerated, EvtCommandFailed, EvtEmailSent, EvtEmailFailed,
}

// CommandTypes returns every command type, in a fixed order. The slice is a
// fresh copy the caller may modify.
func CommandTypes() []string { return append([]string(nil), commandTypes...) }

// EventTypes returns every event type, in a fixed order. The slice is a fresh
// copy the caller may modify.
func EventTypes() []string { return append([]string(nil), eventTypes...) }

// IsCommandType reports whether t is a known command type.
func IsCommandType(t string) bool { return contains(commandTypes, t) }

// IsEventType reports whether t is a known event type.
func IsEventType(t string) bool { return contains(eventTypes, t) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Subject tokens between the prefix and the message type.
const (
	cmdToken = "cmd"
	evtToken = "evt"
	dlqToken = "dlq"
	// schedToken: JetStream message schedules (nats-server 2.14+), kept in
	// a stream of their own, ScheduleStream(), with their fired copies (a
	// schedule's target must be in its own stream).
	schedToken = "schedule"
	// firedToken: where the server publishes each fire of a schedule (the
	// schedule's target, in the schedules stream); the processor's relay
	// republishes every fired message to Command(<type>).
	firedToken = "fired"
)

// Subjects names the NATS subjects and JetStream streams of one deployment.
// The zero value uses DefaultPrefix. Prefix may contain dots ("acme.prod"),
// but no wildcards or whitespace.
type Subjects struct {
	// Prefix is the leading subject token(s); empty means DefaultPrefix.
	Prefix string
}

// MaxPrefixLen bounds a subject prefix, in bytes.
const MaxPrefixLen = 64

// CheckPrefix reports why p cannot be a Subjects.Prefix: it must be empty
// (DefaultPrefix) or at most MaxPrefixLen bytes of dot-separated, non-empty
// tokens of ASCII letters, digits, '_' and '-' (no wildcard, whitespace or
// '$' of the system subjects). It returns nil for a valid prefix.
func CheckPrefix(p string) error {
	if len(p) > MaxPrefixLen {
		return fmt.Errorf("subject prefix of %d bytes: want at most %d", len(p), MaxPrefixLen)
	}
	if p == "" {
		return nil
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return fmt.Errorf("subject prefix %q has an empty token", p)
		}
		for _, r := range tok {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return fmt.Errorf("subject prefix %q: %q not allowed (want letters, digits, '_', '-' and dots between tokens)", p, r)
			}
		}
	}
	return nil
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Command returns the subject of command type t, e.g. "groups.cmd.provision_group".
func (s Subjects) Command(t string) string { return s.prefix() + "." + cmdToken + "." + t }

// Event returns the subject of event type t, e.g. "groups.evt.group_provisioned".
func (s Subjects) Event(t string) string { return s.prefix() + "." + evtToken + "." + t }

// DLQ returns the dead-letter subject of command type t, e.g.
// "groups.dlq.provision_group". A dead-lettered message keeps its original
// body; the DLQ headers (HeaderDLQReason etc.) say why.
func (s Subjects) DLQ(t string) string { return s.prefix() + "." + dlqToken + "." + t }

// Ops request/reply subjects (core NATS, answered by the processor; not
// streamed). OpsProgress is answered by every instance running the asked
// command; the discovery subjects by one instance (a queue group).
const (
	OpsProgress   = "progress"
	OpsGroupsList = "groups.ls"
	OpsGroupsShow = "groups.show"
)

// Ops returns the request subject of ops request name, e.g. "groups.ops.progress".
func (s Subjects) Ops(name string) string { return s.prefix() + ".ops." + name }

// Commands returns the wildcard subject matching every command, "groups.cmd.>".
func (s Subjects) Commands() string { return s.prefix() + "." + cmdToken + ".>" }

// Events returns the wildcard subject matching every event, "groups.evt.>".
func (s Subjects) Events() string { return s.prefix() + "." + evtToken + ".>" }

// DLQs returns the wildcard subject matching every dead letter, "groups.dlq.>".
func (s Subjects) DLQs() string { return s.prefix() + "." + dlqToken + ".>" }

// Schedule returns the subject of the schedule named name (one or more
// tokens, e.g. "report.weekly"): "groups.schedule.report.weekly".
func (s Subjects) Schedule(name string) string { return s.prefix() + "." + schedToken + "." + name }

// Schedules returns the wildcard subject matching every schedule, "groups.schedule.>".
func (s Subjects) Schedules() string { return s.prefix() + "." + schedToken + ".>" }

// Fired returns the subject a schedule named name of command type t fires
// on, e.g. "groups.fired.generate_report.report.weekly".
func (s Subjects) Fired(t, name string) string {
	return s.prefix() + "." + firedToken + "." + t + "." + name
}

// FiredAll returns the wildcard subject matching every fired message, "groups.fired.>".
func (s Subjects) FiredAll() string { return s.prefix() + "." + firedToken + ".>" }

// FiredTypeOf returns the command type of a fired subject (its token after
// "fired"), or "" and false. The type is not checked against the known ones.
func (s Subjects) FiredTypeOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, s.prefix()+"."+firedToken+".")
	t, _, _ := strings.Cut(rest, ".")
	if !ok || t == "" || strings.ContainsAny(t, "*> \t\r\n") {
		return "", false
	}
	return t, true
}

// ScheduleStream returns the JetStream stream holding Schedules() and
// FiredAll(), e.g. "GROUPS_SCHEDULES".
func (s Subjects) ScheduleStream() string { return s.streamBase() + "_SCHEDULES" }

// CommandStream returns the JetStream stream holding Commands(), e.g. "GROUPS_COMMANDS".
func (s Subjects) CommandStream() string { return s.streamBase() + "_COMMANDS" }

// EventStream returns the JetStream stream holding Events(), e.g. "GROUPS_EVENTS".
func (s Subjects) EventStream() string { return s.streamBase() + "_EVENTS" }

// DLQStream returns the JetStream stream holding DLQs(), e.g. "GROUPS_DLQ".
func (s Subjects) DLQStream() string { return s.streamBase() + "_DLQ" }

// streamBase upper-cases the prefix and replaces every rune outside
// [A-Z0-9_] with '_' ("acme.prod" -> "ACME_PROD").
func (s Subjects) streamBase() string {
	up := strings.ToUpper(s.prefix())
	var b strings.Builder
	for _, r := range up {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// CommandTypeOf is the inverse of Command: it returns the command type of a
// command subject and true, or "" and false when subject is not a single-token
// command subject under this prefix. It does not check that the type is known
// (Decode does, with an *UnknownCommandError).
func (s Subjects) CommandTypeOf(subject string) (string, bool) { return s.typeOf(cmdToken, subject) }

// EventTypeOf is the inverse of Event, like CommandTypeOf.
func (s Subjects) EventTypeOf(subject string) (string, bool) { return s.typeOf(evtToken, subject) }

// DLQTypeOf is the inverse of DLQ: it returns the command type of a dead-letter subject.
func (s Subjects) DLQTypeOf(subject string) (string, bool) { return s.typeOf(dlqToken, subject) }

func (s Subjects) typeOf(token, subject string) (string, bool) {
	t, ok := strings.CutPrefix(subject, s.prefix()+"."+token+".")
	if !ok || t == "" || strings.ContainsAny(t, ".*> \t\r\n") {
		return "", false
	}
	return t, true
}
