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
	// NotAdded lists the rows that were not made members, and why.
	NotAdded []RowOutcome `json:"notAdded,omitempty"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
}

// ProvisionPendingApproval is GroupProvisioned.Status when the group is a
// pending group request.
const ProvisionPendingApproval = "pending_approval"

// RowOutcome says why one row of ProvisionGroup.People was not added.
type RowOutcome struct {
	// Row is the 0-based index of the row in ProvisionGroup.People.
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
	// Selected counts MemberSelected events published.
	Selected int `json:"selected"`
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
	// Groups has one outcome per requested group, in request order.
	Groups []GroupOutcome `json:"groups,omitempty"`
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
	// SourceGroupID echoes PropagateRules.SourceGroupID.
	SourceGroupID string `json:"sourceGroupId,omitempty"`
	// DryRun echoes PropagateRules.DryRun.
	DryRun bool `json:"dryRun"`
	// Rules counts the rules propagated.
	Rules int `json:"rules"`
	// Targets has one outcome per target group.
	Targets []TargetOutcome `json:"targets,omitempty"`
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
	// GeneratedAt is when the data was read.
	GeneratedAt time.Time `json:"generatedAt"`
	// TotalGroups counts the site's groups.
	TotalGroups int `json:"totalGroups"`
	// Top lists the largest groups, largest first.
	Top []GroupStat `json:"top,omitempty"`
	// Idle lists the least recently active groups, least active first.
	Idle []IdleGroup `json:"idle,omitempty"`
	// IdleDays echoes GenerateReport.IdleDays.
	IdleDays int `json:"idleDays"`
	// Objects names the stored report files.
	Objects ReportObjects `json:"objects"`
	// WixCalls counts the Wix API calls the command made.
	WixCalls int64 `json:"wixCalls"`
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
