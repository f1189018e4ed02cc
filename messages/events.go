package messages

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EventMeta is embedded in every event; its fields sit at the top level of the JSON body.
type EventMeta struct {
	// CommandID is the id of the command the event completes (or results from).
	CommandID string `json:"commandId"`
	// CorrelationID echoes the command's correlationId.
	CorrelationID string `json:"correlationId,omitempty"`
	// SiteID echoes the command's siteId (the site acted on).
	SiteID string `json:"siteId,omitempty"`
	// OccurredAt is when the event happened (UTC); also the ce-time header.
	OccurredAt time.Time `json:"occurredAt"`
}

// Meta returns m itself.
func (m *EventMeta) Meta() *EventMeta { return m }

// MetaFor returns the EventMeta of an event resulting from command c at time at (converted to UTC).
func MetaFor(c *CommandMeta, at time.Time) EventMeta {
	return EventMeta{CommandID: c.ID, CorrelationID: c.CorrelationID, SiteID: c.SiteID, OccurredAt: at.UTC()}
}

// Event is implemented by every event struct (as a pointer).
type Event interface {
	// EventType returns the event's type, e.g. EvtGroupProvisioned.
	EventType() string
	// EventID returns the deterministic id of the event, used both as the
	// CloudEvents ce-id and as the Nats-Msg-Id (so a redelivered command
	// publishes no duplicate within the stream's duplicate window).
	EventID() string
	// Meta returns the event's metadata, which the caller may modify.
	Meta() *EventMeta
}

// EventID builds a deterministic event id: the event type, then commandID
// (skipped when empty), then parts, joined by ':'. ':' and '%' and control
// characters in the components are percent-encoded, so distinct inputs give
// distinct ids. EventID(EvtGroupProvisioned, "prov-1") == "group_provisioned:prov-1".
func EventID(eventType, commandID string, parts ...string) string {
	var b strings.Builder
	b.WriteString(escapeIDPart(eventType))
	if commandID != "" {
		b.WriteByte(':')
		b.WriteString(escapeIDPart(commandID))
	}
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(escapeIDPart(p))
	}
	return b.String()
}

func escapeIDPart(s string) string {
	if !strings.ContainsFunc(s, needsEscape) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' || c == '%' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool { return r == ':' || r == '%' || r < 0x20 || r == 0x7f }

// CEType returns the CloudEvents type of event type t, e.g. "groupflow.group_provisioned".
func CEType(t string) string { return CETypePrefix + t }

// CETypePrefix prefixes every CloudEvents type.
const CETypePrefix = "groupflow."

// NewEvent returns a new zero event of type t, or nil and false for an unknown type.
func NewEvent(t string) (Event, bool) {
	switch t {
	case EvtGroupProvisioned:
		return &GroupProvisioned{}, true
	case EvtMemberSelected:
		return &MemberSelected{}, true
	case EvtCampaignCompleted:
		return &CampaignCompleted{}, true
	case EvtMembershipQuestionsSet:
		return &MembershipQuestionsSet{}, true
	case EvtRulesPropagated:
		return &RulesPropagated{}, true
	case EvtReportGenerated:
		return &ReportGenerated{}, true
	case EvtCommandFailed:
		return &CommandFailed{}, true
	case EvtEmailSent:
		return &EmailSent{}, true
	case EvtEmailFailed:
		return &EmailFailed{}, true
	}
	return nil, false
}

// DecodeEvent parses an event body of type eventType (the last token of its
// subject). Unknown fields are ignored. It is meant for consumers; events are
// not validated.
func DecodeEvent(eventType string, body []byte) (Event, error) {
	e, ok := NewEvent(eventType)
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	if err := json.Unmarshal(body, e); err != nil {
		return nil, fmt.Errorf("malformed %s event: %w", eventType, err)
	}
	return e, nil
}

// ---------------------------------------------------------------- group_provisioned

// Row outcome reasons (RowOutcome.Reason).
const (
	// ReasonNotFound: no contact matches the row's identifier.
	ReasonNotFound = "not_found"
	// ReasonAmbiguous: several contacts match (see RowOutcome.Candidates).
	ReasonAmbiguous = "ambiguous"
	// ReasonInvalid: the row is unusable (see Person.Problem; the problem is in Detail).
	ReasonInvalid = "invalid"
	// ReasonDuplicate: the row resolves to the same contact as an earlier row.
	ReasonDuplicate = "duplicate"
	// ReasonFailed: Wix refused to add the member (the error is in Detail).
	ReasonFailed = "failed"
)

// GroupProvisioned (EvtGroupProvisioned) completes a ProvisionGroup command.
// Its EventID derives from the command id.
type GroupProvisioned struct {
	EventMeta
	// Truncated and Full: see Truncation (lists NotAdded, Removed and NotRemoved).
	Truncation
	// GroupID is the Wix group id.
	GroupID string `json:"groupId"`
	// Slug is the group's URL slug.
	Slug string `json:"slug,omitempty"`
	// Name is the group's name.
	Name string `json:"name"`
	// Reused is true when an existing group with that name was used.
	Reused bool `json:"reused"`
	// Status is "" when the group exists, or ProvisionPendingApproval when
	// Wix made the create a group request awaiting the site's approval:
	// then GroupID is empty, GroupRequestID is set and no one was added.
	// Re-send the command with a new id once the request is approved.
	Status string `json:"status,omitempty"`
	// GroupRequestID is the id of the pending group request.
	GroupRequestID string `json:"groupRequestId,omitempty"`
	// Added counts people made members by this command.
	Added int `json:"added"`
	// Invited counts people with a private profile whom Wix invited instead
	// of adding (now or by an earlier command) and who have not joined yet.
	Invited int `json:"invited"`
	// AlreadyMembers counts people who were members already.
	AlreadyMembers int `json:"alreadyMembers"`
	// Removed lists the member ids removed (membership "sync" only).
	Removed []string `json:"removed,omitempty"`
	// RemovedTotal, in a truncated event, is the full length of Removed.
	RemovedTotal int `json:"removedTotal,omitempty"`
	// NotAdded lists the rows that were not made members, and why.
	NotAdded []RowOutcome `json:"notAdded,omitempty"`
	// NotAddedTotal, in a truncated event, is the full length of NotAdded.
	NotAddedTotal int `json:"notAddedTotal,omitempty"`
	// NotRemoved lists the members a sync was to remove and did not: Wix
	// refused their Remove Group Members batch (4xx; the next sync tries
	// again). Removed and NotRemoved together are the sync's removals.
	NotRemoved []MemberOutcome `json:"notRemoved,omitempty"`
	// NotRemovedTotal, in a truncated event, is the full length of NotRemoved.
	NotRemovedTotal int `json:"notRemovedTotal,omitempty"`
	// SettingsDiffer lists the settings of a reused group that differ from
	// the command's Group; SettingsUpdated says the command changed them
	// (ProvisionGroup.UpdateSettings).
	SettingsDiffer  []SettingDifference `json:"settingsDiffer,omitempty"`
	SettingsUpdated bool                `json:"settingsUpdated,omitempty"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
}

// MemberOutcome says why a group member was not removed.
type MemberOutcome struct {
	// MemberID is the member's site member id.
	MemberID string `json:"memberId"`
	// Reason is Wix's refusal of the member's batch.
	Reason string `json:"reason"`
}

// SettingDifference is one setting of a reused group that differs from the
// command's: Group is the group's value (before any update), Command the
// command's.
type SettingDifference struct {
	// Setting is "privacyStatus", "teaser" or "memberTitle".
	Setting string `json:"setting"`
	Group   string `json:"group"`
	Command string `json:"command"`
}

// ProvisionPendingApproval is GroupProvisioned.Status when the group is a
// pending group request.
const ProvisionPendingApproval = "pending_approval"

// RowOutcome says why one row of ProvisionGroup.People was not added.
type RowOutcome struct {
	// Row is the 1-based position of the row in ProvisionGroup.People (1 =
	// the first person); Ref carries the roster file's line when groupctl
	// read one (1-based, the header is line 1).
	Row int `json:"row"`
	// Ref echoes Person.Ref.
	Ref string `json:"ref,omitempty"`
	// Kind is the identifier used (Person.Kind), or "".
	Kind string `json:"kind,omitempty"`
	// Reason is ReasonNotFound, ReasonAmbiguous, ReasonInvalid, ReasonDuplicate or ReasonFailed.
	Reason string `json:"reason"`
	// Detail is a human-readable explanation without personal data.
	Detail string `json:"detail,omitempty"`
	// Candidates counts the matching contacts (ReasonAmbiguous).
	Candidates int `json:"candidates,omitempty"`
}

// EventType returns EvtGroupProvisioned.
func (*GroupProvisioned) EventType() string { return EvtGroupProvisioned }

// EventID returns EventID(EvtGroupProvisioned, CommandID).
func (e *GroupProvisioned) EventID() string { return EventID(EvtGroupProvisioned, e.CommandID) }

// ---------------------------------------------------------------- member_selected

// MemberSelected (EvtMemberSelected) is published once per member selected
// by a SendCampaign command; the mailer consumes it. Its EventID derives from
// the campaign id and member id only, so resending a campaign (a new command
// id) is deduplicated per member within the stream's duplicate window.
type MemberSelected struct {
	EventMeta
	// CampaignID echoes SendCampaign.CampaignID.
	CampaignID string `json:"campaignId"`
	// MemberID is the Wix member id.
	MemberID string `json:"memberId"`
	// ContactID is the member's Wix contact id.
	ContactID string `json:"contactId,omitempty"`
	// Email is the member's email address.
	Email string `json:"email"`
	// FirstName of the member, if known.
	FirstName string `json:"firstName,omitempty"`
	// LastName of the member, if known.
	LastName string `json:"lastName,omitempty"`
	// GroupIDs lists the campaign's groups the member belongs to.
	GroupIDs []string `json:"groupIds"`
	// MatchedKeywords lists the keywords matched (interest audiences).
	MatchedKeywords []string `json:"matchedKeywords,omitempty"`
	// Content echoes SendCampaign.Content.
	Content json.RawMessage `json:"content,omitempty"`
}

// EventType returns EvtMemberSelected.
func (*MemberSelected) EventType() string { return EvtMemberSelected }

// EventID returns EventID(EvtMemberSelected, "", CampaignID, MemberID).
func (e *MemberSelected) EventID() string {
	return EventID(EvtMemberSelected, "", e.CampaignID, e.MemberID)
}

// ---------------------------------------------------------------- campaign_completed

// Subscription statuses counted in Skipped.NotSubscribed.
const (
	SubscriptionNotSet  = "NOT_SET"
	SubscriptionPending = "PENDING"
	SubscriptionUnknown = "UNKNOWN"
)

// CampaignCompleted (EvtCampaignCompleted) completes a SendCampaign command.
// Its EventID derives from the campaign id and the command id.
type CampaignCompleted struct {
	EventMeta
	// CampaignID echoes SendCampaign.CampaignID.
	CampaignID string `json:"campaignId"`
	// GroupIDs echoes SendCampaign.GroupIDs.
	GroupIDs []string `json:"groupIds,omitempty"`
	// AudienceType echoes Audience.Type.
	AudienceType string `json:"audienceType"`
	// MembersSeen counts distinct members of the groups.
	MembersSeen int `json:"membersSeen"`
	// Selected counts MemberSelected events published by this command.
	Selected int `json:"selected"`
	// AlreadySelected counts members an earlier command of the same
	// campaign id selected (their member_selected event, with the same id,
	// is in the events stream's duplicate window): not selected again.
	// MembersSeen = Selected + AlreadySelected + the Skipped counts.
	AlreadySelected int `json:"alreadySelected"`
	// GroupsWithoutQuestions lists, for an interest audience, the groups
	// with no membership questions: no answer there can match.
	GroupsWithoutQuestions []string `json:"groupsWithoutQuestions,omitempty"`
	// Skipped counts members not selected, by reason.
	Skipped Skipped `json:"skipped"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
}

// Skipped counts members not selected by a campaign, by reason.
type Skipped struct {
	// NoEmail counts members without an email address.
	NoEmail int `json:"noEmail"`
	// NotSubscribed counts members whose subscription status is not
	// SUBSCRIBED, by status (SubscriptionNotSet, SubscriptionPending, SubscriptionUnknown).
	NotSubscribed map[string]int `json:"notSubscribed,omitempty"`
	// Unsubscribed counts members who unsubscribed.
	Unsubscribed int `json:"unsubscribed"`
	// NotMatched counts members matching no keyword (interest audiences).
	NotMatched int `json:"notMatched"`
}

// EventType returns EvtCampaignCompleted.
func (*CampaignCompleted) EventType() string { return EvtCampaignCompleted }

// EventID returns EventID(EvtCampaignCompleted, CommandID, CampaignID).
func (e *CampaignCompleted) EventID() string {
	return EventID(EvtCampaignCompleted, e.CommandID, e.CampaignID)
}

// ---------------------------------------------------------------- membership_questions_set

// Group outcomes (GroupOutcome.Outcome, TargetOutcome.Outcome).
const (
	OutcomeUpdated     = "updated"
	OutcomeFailed      = "failed"
	OutcomeUnchanged   = "unchanged"
	OutcomeWouldUpdate = "would_update" // dry run
)

// MembershipQuestionsSet (EvtMembershipQuestionsSet) completes a
// SetMembershipQuestions command. Its EventID derives from the command id.
type MembershipQuestionsSet struct {
	EventMeta
	// Truncated and Full: see Truncation (list Groups).
	Truncation
	// Groups has one outcome per requested group, in request order.
	Groups []GroupOutcome `json:"groups,omitempty"`
	// GroupsTotal, in a truncated event, is the full length of Groups.
	GroupsTotal int `json:"groupsTotal,omitempty"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
}

// GroupOutcome is the outcome for one group.
type GroupOutcome struct {
	// GroupID is the Wix group id.
	GroupID string `json:"groupId"`
	// Outcome is OutcomeUpdated, OutcomeFailed, OutcomeUnchanged or OutcomeWouldUpdate.
	Outcome string `json:"outcome"`
	// Reason explains a failure.
	Reason string `json:"reason,omitempty"`
	// Questions counts the group's questions afterwards.
	Questions int `json:"questions"`
}

// EventType returns EvtMembershipQuestionsSet.
func (*MembershipQuestionsSet) EventType() string { return EvtMembershipQuestionsSet }

// EventID returns EventID(EvtMembershipQuestionsSet, CommandID).
func (e *MembershipQuestionsSet) EventID() string {
	return EventID(EvtMembershipQuestionsSet, e.CommandID)
}

// ---------------------------------------------------------------- rules_propagated

// RulesPropagated (EvtRulesPropagated) completes a PropagateRules command.
// Its EventID derives from the command id.
type RulesPropagated struct {
	EventMeta
	// Truncated and Full: see Truncation (list Targets).
	Truncation
	// SourceGroupID echoes PropagateRules.SourceGroupID.
	SourceGroupID string `json:"sourceGroupId,omitempty"`
	// DryRun echoes PropagateRules.DryRun.
	DryRun bool `json:"dryRun"`
	// Rules counts the rules propagated.
	Rules int `json:"rules"`
	// Targets has one outcome per target group.
	Targets []TargetOutcome `json:"targets,omitempty"`
	// TargetsTotal, in a truncated event, is the full length of Targets.
	TargetsTotal int `json:"targetsTotal,omitempty"`
	// Updated counts targets updated; 0 in a dry run.
	Updated int `json:"updated"`
	// WouldUpdate counts, in a dry run, targets whose rules would change
	// (outcome "would_update"); 0 otherwise.
	WouldUpdate int `json:"wouldUpdate"`
	// Failed counts targets that failed.
	Failed int `json:"failed"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
}

// TargetOutcome is the outcome for one target group.
type TargetOutcome struct {
	// GroupID is the Wix group id.
	GroupID string `json:"groupId"`
	// Name is the group's name.
	Name string `json:"name,omitempty"`
	// Outcome is OutcomeUpdated, OutcomeFailed, OutcomeUnchanged or OutcomeWouldUpdate.
	Outcome string `json:"outcome"`
	// Reason explains a failure.
	Reason string `json:"reason,omitempty"`
	// Diff is the change made (or that would be made), see DiffRules.
	Diff *RulesDiff `json:"diff,omitempty"`
}

// EventType returns EvtRulesPropagated.
func (*RulesPropagated) EventType() string { return EvtRulesPropagated }

// EventID returns EventID(EvtRulesPropagated, CommandID).
func (e *RulesPropagated) EventID() string { return EventID(EvtRulesPropagated, e.CommandID) }

// ---------------------------------------------------------------- report_generated

// ReportGenerated (EvtReportGenerated) completes a GenerateReport command.
// Its EventID derives from the command id.
type ReportGenerated struct {
	EventMeta
	// Truncated and Full: see Truncation (lists Top and Idle; the stored
	// report files in Objects always hold every row).
	Truncation
	// GeneratedAt is when the data was read.
	GeneratedAt time.Time `json:"generatedAt"`
	// TotalGroups counts the site's groups.
	TotalGroups int `json:"totalGroups"`
	// Top lists the largest groups, largest first.
	Top []GroupStat `json:"top,omitempty"`
	// TopTotal, in a truncated event, is the full length of Top.
	TopTotal int `json:"topTotal,omitempty"`
	// Idle lists the least recently active groups, least active first.
	Idle []IdleGroup `json:"idle,omitempty"`
	// IdleTotal, in a truncated event, is the full length of Idle.
	IdleTotal int `json:"idleTotal,omitempty"`
	// IdleDays echoes GenerateReport.IdleDays.
	IdleDays int `json:"idleDays"`
	// Objects names the stored report files.
	Objects ReportObjects `json:"objects"`
	// WixCalls counts the Wix API calls the command made: 1 + ⌈top/100⌉ +
	// ⌈idle/100⌉ at most, plus ⌈G/100⌉ for G groups with AllGroups.
	WixCalls int64 `json:"wixCalls"`
	// Site is the site as configured for people: name, URL, time zone.
	Site ReportSite `json:"site"`
	// AllGroups echoes GenerateReport.AllGroups: Groups lists every group.
	AllGroups bool `json:"allGroups,omitempty"`
	// Groups lists every group (AllGroups only), largest first.
	Groups []ReportGroup `json:"groups,omitempty"`
	// GroupsTotal, in a truncated event, is the full length of Groups.
	GroupsTotal int `json:"groupsTotal,omitempty"`
	// Flags are the groups that need attention, each with a suggested action.
	Flags []ReportFlag `json:"flags,omitempty"`
	// FlagsTotal, in a truncated event, is the full length of Flags.
	FlagsTotal int `json:"flagsTotal,omitempty"`
	// Changes compares an all-groups report with the site's previous one
	// (nil when not AllGroups or there is no previous report).
	Changes *ReportChanges `json:"changes,omitempty"`
	// Recipients are the site's configured report recipients (addresses).
	Recipients []string `json:"recipients,omitempty"`
}

// ReportSite describes the report's site for people.
type ReportSite struct {
	// Name is the site's configured name ("" when none: the id is shown).
	Name string `json:"name,omitempty"`
	// URL is the site's base URL ("" when unknown: groups are not linked).
	URL string `json:"url,omitempty"`
	// TimeZone is the IANA zone the report's times are shown in.
	TimeZone string `json:"timeZone"`
}

// ReportGroup is one row of ReportGenerated.Groups.
type ReportGroup struct {
	GroupID string `json:"groupId"`
	Name    string `json:"name"`
	Slug    string `json:"slug,omitempty"`
	// URL is the group's page on the site ("" without a site URL).
	URL          string `json:"url,omitempty"`
	Privacy      string `json:"privacy,omitempty"`
	MembersCount int    `json:"membersCount"`
	// CreatedDate and LastActivity are zero when unknown.
	CreatedDate  time.Time `json:"createdDate"`
	LastActivity time.Time `json:"lastActivity"`
	// MemberChange is the net member change since the previous report
	// (0 without one, or for a new group).
	MemberChange int `json:"memberChange"`
	// New is true when the previous report did not have the group.
	New bool `json:"new,omitempty"`
}

// Report flag kinds (ReportFlag.Kind).
const (
	FlagLargeIdle   = "large_idle"   // a large group idle longer than the threshold
	FlagSmall       = "small"        // fewer members than the threshold
	FlagNeverActive = "never_active" // created, never any activity
)

// ReportFlag is a group that needs attention.
type ReportFlag struct {
	GroupID      string `json:"groupId"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	MembersCount int    `json:"membersCount"`
	// IdleDays is the whole days since the last activity (or creation).
	IdleDays int `json:"idleDays"`
	// Action is the suggested action, in plain English.
	Action string `json:"action"`
}

// MaxChangeRows bounds ReportChanges.Added and Removed in the event.
const MaxChangeRows = 100

// ReportChanges compares a report with the site's previous all-groups report.
type ReportChanges struct {
	PreviousReportID string    `json:"previousReportId"`
	PreviousAt       time.Time `json:"previousAt"`
	// MemberChange is the net change of all members counts.
	MemberChange int `json:"memberChange"`
	// Added and Removed are the groups new since, and gone since, the
	// previous report: the first MaxChangeRows of each (the stored report
	// files list all); AddedTotal and RemovedTotal count them all.
	Added        []GroupStat `json:"added,omitempty"`
	Removed      []GroupStat `json:"removed,omitempty"`
	AddedTotal   int         `json:"addedTotal"`
	RemovedTotal int         `json:"removedTotal"`
}

// GroupStat is one row of ReportGenerated.Top.
type GroupStat struct {
	GroupID      string `json:"groupId"`
	Name         string `json:"name"`
	Slug         string `json:"slug,omitempty"`
	MembersCount int    `json:"membersCount"`
}

// IdleGroup is one row of ReportGenerated.Idle.
type IdleGroup struct {
	GroupID      string `json:"groupId"`
	Name         string `json:"name"`
	Slug         string `json:"slug,omitempty"`
	MembersCount int    `json:"membersCount"`
	// LastActivity is the group's last activity (zero when unknown).
	LastActivity time.Time `json:"lastActivity"`
	// IdleDays is the number of whole days since LastActivity.
	IdleDays int `json:"idleDays"`
}

// ReportObjects names the stored report files (object store bucket and keys).
type ReportObjects struct {
	Bucket string `json:"bucket"`
	HTML   string `json:"html"`
	CSV    string `json:"csv"`
	JSON   string `json:"json"`
}

// EventType returns EvtReportGenerated.
func (*ReportGenerated) EventType() string { return EvtReportGenerated }

// EventID returns EventID(EvtReportGenerated, CommandID).
func (e *ReportGenerated) EventID() string { return EventID(EvtReportGenerated, e.CommandID) }

// ---------------------------------------------------------------- command_failed

// Failure kinds (CommandFailed.Kind, also the Groupflow-Dlq-Kind header).
const (
	// FailureInvalid: the command failed validation (Fields lists why).
	FailureInvalid = "invalid"
	// FailureMalformed: the body was not valid JSON of the right shape, or the type is unknown.
	FailureMalformed = "malformed"
	// FailurePermanent: carrying the command out failed in a way retrying cannot fix.
	FailurePermanent = "permanent"
	// FailureExhausted: transient failures persisted through every redelivery.
	FailureExhausted = "exhausted"
)

// CommandFailed (EvtCommandFailed) completes a command that could not be
// carried out; the command was moved to DLQSubject. Its EventID derives from
// the command id.
type CommandFailed struct {
	EventMeta
	// CommandType is the failed command's type.
	CommandType string `json:"commandType"`
	// Subject is the subject the command was received on.
	Subject string `json:"subject"`
	// Kind is FailureInvalid, FailureMalformed, FailurePermanent or FailureExhausted.
	Kind string `json:"kind"`
	// Reason is the error message.
	Reason string `json:"reason"`
	// Fields lists the invalid fields (Kind FailureInvalid).
	Fields []FieldError `json:"fields,omitempty"`
	// Deliveries counts the deliveries of the command.
	Deliveries int `json:"deliveries"`
	// DLQSubject is where the command was dead-lettered.
	DLQSubject string `json:"dlqSubject,omitempty"`
}

// EventType returns EvtCommandFailed.
func (*CommandFailed) EventType() string { return EvtCommandFailed }

// EventID returns EventID(EvtCommandFailed, CommandID).
func (e *CommandFailed) EventID() string { return EventID(EvtCommandFailed, e.CommandID) }

// ---------------------------------------------------------------- email_sent / email_failed

// EmailSent (EvtEmailSent) is published by the downstream mailer once it has
// sent the email for a MemberSelected event. Its EventID derives from SourceEventID.
type EmailSent struct {
	EventMeta
	// SourceEventID is the EventID of the MemberSelected event.
	SourceEventID string `json:"sourceEventId"`
	// CampaignID echoes MemberSelected.CampaignID.
	CampaignID string `json:"campaignId"`
	// MemberID echoes MemberSelected.MemberID.
	MemberID string `json:"memberId"`
	// MessageID is the mail server's message id.
	MessageID string `json:"messageId,omitempty"`
}

// EventType returns EvtEmailSent.
func (*EmailSent) EventType() string { return EvtEmailSent }

// EventID returns EventID(EvtEmailSent, "", SourceEventID).
func (e *EmailSent) EventID() string { return EventID(EvtEmailSent, "", e.SourceEventID) }

// EmailFailed (EvtEmailFailed) is published by the downstream mailer when the
// email for a MemberSelected event could not be sent. Its EventID derives from SourceEventID.
type EmailFailed struct {
	EventMeta
	// SourceEventID is the EventID of the MemberSelected event.
	SourceEventID string `json:"sourceEventId"`
	// CampaignID echoes MemberSelected.CampaignID.
	CampaignID string `json:"campaignId"`
	// MemberID echoes MemberSelected.MemberID.
	MemberID string `json:"memberId"`
	// Reason is the error message.
	Reason string `json:"reason"`
	// Permanent is true when retrying cannot help (e.g. a rejected address).
	Permanent bool `json:"permanent"`
}

// EventType returns EvtEmailFailed.
func (*EmailFailed) EventType() string { return EvtEmailFailed }

// EventID returns EventID(EvtEmailFailed, "", SourceEventID).
func (e *EmailFailed) EventID() string { return EventID(EvtEmailFailed, "", e.SourceEventID) }

// ---------------------------------------------------------------- truncated outcomes

// OutcomesBucket is the JetStream Object Store bucket holding the full body
// of every completion event that had to be truncated (see Truncation).
const OutcomesBucket = "GROUPFLOW_OUTCOMES"

// OutcomeRef names a stored object: the full, untruncated body of an event.
type OutcomeRef struct {
	// Bucket is the Object Store bucket (OutcomesBucket).
	Bucket string `json:"bucket"`
	// Object is the object's name in Bucket.
	Object string `json:"object"`
}

// Truncation is embedded in every completion event with lists that have no
// useful bound (Truncatable). A completion is always exactly one event: when
// its encoding would not fit in one NATS message (the broker's max_payload,
// less headers and the ledger record that keeps it), groupflow stores the
// full event JSON in the OutcomesBucket object store first, then publishes
// the event with each such list cut to its first entries, Truncated set, the
// list's full length in its <list>Total field, and Full naming the object.
// An event that fits is never truncated: Truncated is false, Full and every
// <list>Total are absent.
type Truncation struct {
	// Truncated is true when lists of the event were cut to fit in one message.
	Truncated bool `json:"truncated,omitempty"`
	// Full names the object holding the full event (when Truncated).
	Full *OutcomeRef `json:"full,omitempty"`
}

// IsTruncated reports whether the event's lists were cut (see Truncation).
func (t *Truncation) IsTruncated() bool { return t.Truncated }

// List is one truncatable list of an event, as Truncatable.Lists returns it.
type List struct {
	// Field is the list's JSON name ("notAdded").
	Field string
	// Len is the list's length.
	Len int
	// Item returns entry i (0 <= i < Len), to measure its encoding.
	Item func(i int) any
}

// Truncatable is implemented by the completion events whose lists may not fit
// in one message: GroupProvisioned (notAdded, removed), RulesPropagated
// (targets), MembershipQuestionsSet (groups), ReportGenerated (top, idle).
// The other events are bounded by the limits Validate enforces.
type Truncatable interface {
	Event
	// IsTruncated reports whether the event is already truncated.
	IsTruncated() bool
	// Lists returns the event's truncatable lists, always in the same order.
	Lists() []List
	// KeepFirst returns a copy of the event that keeps the first keep[i]
	// entries of Lists()[i] (keep has one count per list; all entries are
	// kept when keep[i] >= Len), with every
	// <list>Total set to the list's full length, Truncated set and Full =
	// full. The receiver is not modified; truncating a truncated event again
	// keeps the totals of the first truncation.
	KeepFirst(keep []int, full OutcomeRef) Truncatable
}

// listOf describes s as a List.
func listOf[T any](field string, s []T) List {
	return List{Field: field, Len: len(s), Item: func(i int) any { return s[i] }}
}

// keepFirst returns the first n entries of s (nil when none is kept).
func keepFirst[T any](s []T, n int) []T {
	if n <= 0 || len(s) == 0 {
		return nil
	}
	return s[:min(n, len(s))]
}

// total is a list's full length: its length, or the total recorded by an
// earlier truncation.
func total(recorded, length int) int { return max(recorded, length) }

func truncation(full OutcomeRef) Truncation { return Truncation{Truncated: true, Full: &full} }

// Lists implements Truncatable: notAdded, removed, notRemoved.
func (e *GroupProvisioned) Lists() []List {
	return []List{listOf("notAdded", e.NotAdded), listOf("removed", e.Removed), listOf("notRemoved", e.NotRemoved)}
}

// KeepFirst implements Truncatable.
func (e *GroupProvisioned) KeepFirst(keep []int, full OutcomeRef) Truncatable {
	c := *e
	c.NotAddedTotal, c.NotAdded = total(e.NotAddedTotal, len(e.NotAdded)), keepFirst(e.NotAdded, keep[0])
	c.RemovedTotal, c.Removed = total(e.RemovedTotal, len(e.Removed)), keepFirst(e.Removed, keep[1])
	c.NotRemovedTotal, c.NotRemoved = total(e.NotRemovedTotal, len(e.NotRemoved)), keepFirst(e.NotRemoved, keep[2])
	c.Truncation = truncation(full)
	return &c
}

// Lists implements Truncatable: groups.
func (e *MembershipQuestionsSet) Lists() []List { return []List{listOf("groups", e.Groups)} }

// KeepFirst implements Truncatable.
func (e *MembershipQuestionsSet) KeepFirst(keep []int, full OutcomeRef) Truncatable {
	c := *e
	c.GroupsTotal, c.Groups = total(e.GroupsTotal, len(e.Groups)), keepFirst(e.Groups, keep[0])
	c.Truncation = truncation(full)
	return &c
}

// Lists implements Truncatable: targets.
func (e *RulesPropagated) Lists() []List { return []List{listOf("targets", e.Targets)} }

// KeepFirst implements Truncatable.
func (e *RulesPropagated) KeepFirst(keep []int, full OutcomeRef) Truncatable {
	c := *e
	c.TargetsTotal, c.Targets = total(e.TargetsTotal, len(e.Targets)), keepFirst(e.Targets, keep[0])
	c.Truncation = truncation(full)
	return &c
}

// Lists implements Truncatable: top, idle, groups, flags (Changes.Added
// and Removed are bounded by MaxChangeRows).
func (e *ReportGenerated) Lists() []List {
	return []List{listOf("top", e.Top), listOf("idle", e.Idle), listOf("groups", e.Groups), listOf("flags", e.Flags)}
}

// KeepFirst implements Truncatable.
func (e *ReportGenerated) KeepFirst(keep []int, full OutcomeRef) Truncatable {
	c := *e
	c.TopTotal, c.Top = total(e.TopTotal, len(e.Top)), keepFirst(e.Top, keep[0])
	c.IdleTotal, c.Idle = total(e.IdleTotal, len(e.Idle)), keepFirst(e.Idle, keep[1])
	c.GroupsTotal, c.Groups = total(e.GroupsTotal, len(e.Groups)), keepFirst(e.Groups, keep[2])
	c.FlagsTotal, c.Flags = total(e.FlagsTotal, len(e.Flags)), keepFirst(e.Flags, keep[3])
	c.Truncation = truncation(full)
	return &c
}
