package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Limits enforced by Validate. Free-text fields must be valid UTF-8 without
// control characters (descriptions may hold line feeds and tabs); ids must
// hold no whitespace either. Strings that end up in NATS subjects, KV keys,
// object names or headers (ids, site ids, correlation ids) are bounded so
// that no command can exceed a NATS limit.
const (
	// MaxPeople bounds ProvisionGroup.People.
	MaxPeople = 10000
	// MaxGroupNameLen bounds GroupSpec.Name, in characters.
	MaxGroupNameLen = 100
	// MaxGroupDescriptionLen bounds GroupSpec.Description, in characters.
	MaxGroupDescriptionLen = 5000
	// MaxGroupTeaserLen bounds GroupSpec.Teaser, in characters (Wix's limit).
	MaxGroupTeaserLen = 1000
	// MaxMemberTitleLen bounds GroupSpec.MemberTitle, in characters (Wix's limit).
	MaxMemberTitleLen = 1000
	// MaxQuestions bounds the membership questions of a group.
	MaxQuestions = 50
	// MaxQuestionLen bounds Question.Text, in characters.
	MaxQuestionLen = 300
	// MaxRules bounds the rules of a group.
	MaxRules = 100
	// MaxRuleTitleLen bounds Rule.Title, in characters.
	MaxRuleTitleLen = 200
	// MaxRuleDescriptionLen bounds Rule.Description, in characters.
	MaxRuleDescriptionLen = 5000
	// MaxGroupIDs bounds every list of group ids in a command.
	MaxGroupIDs = 100
	// MaxIDLen bounds ids given in commands, in characters: the command's
	// own id (CommandMeta.ID, from the body or the Nats-Msg-Id /
	// Groupflow-Command-Id header), campaign ids and group ids. Ids must not
	// contain whitespace or control characters.
	MaxIDLen = 200
	// MaxCorrelationIDLen bounds CommandMeta.CorrelationID (from the body or
	// the correlation header), in characters; no control characters.
	MaxCorrelationIDLen = 200
	// MaxSiteIDLen bounds CommandMeta.SiteID, in bytes, all of SiteIDChars.
	MaxSiteIDLen = 100
	// MaxKeywords bounds Audience.Keywords.
	MaxKeywords = 100
	// MaxKeywordLen bounds each keyword, in characters.
	MaxKeywordLen = 100
	// MaxReportRows bounds GenerateReport.Top and GenerateReport.Idle.
	MaxReportRows = 1000
	// MaxIdleDays bounds GenerateReport.IdleDays (100 years).
	MaxIdleDays = 36500
	// MaxTimeZoneLen bounds GenerateReport.TimeZone, in bytes (IANA names are shorter).
	MaxTimeZoneLen = 64
	// MaxReportThreshold bounds GenerateReport.LargeGroup and SmallGroup.
	MaxReportThreshold = 1_000_000
)

// Enumerated values.
const (
	// PrivacyPublic: anyone can see the group and its content (the default).
	PrivacyPublic = "PUBLIC"
	// PrivacyPrivate: anyone can see the group, only members its content.
	PrivacyPrivate = "PRIVATE"
	// PrivacySecret: only members can see the group.
	PrivacySecret = "SECRET"

	// MembershipAdd adds the people to the group and removes no one (the default).
	MembershipAdd = "add"
	// MembershipSync makes the group's members exactly the people given
	// (members not listed are removed, admins never; see
	// GroupProvisioned.Removed). A sync that would remove more than half of
	// the group's members is refused unless ProvisionGroup.AllowMassRemoval.
	MembershipSync = "sync"

	// AudienceAll selects every subscribed member of the groups (the default).
	AudienceAll = "all"
	// AudienceInterest selects members whose membership answers match Audience.Keywords.
	AudienceInterest = "interest"

	// MatchAny selects a member matching at least one keyword (the default).
	MatchAny = "any"
	// MatchAll selects a member matching every keyword.
	MatchAll = "all"
)

// Defaults applied by Decode to GenerateReport.
const (
	DefaultReportTop  = 10 // GenerateReport.Top when 0
	DefaultReportIdle = 10 // GenerateReport.Idle when 0
)

// ---------------------------------------------------------------- provision_group

// ProvisionGroup (CmdProvisionGroup) finds the group named Group.Name, or
// creates it, and makes People members. It completes with GroupProvisioned.
type ProvisionGroup struct {
	CommandMeta
	// Group describes the group to find or create.
	Group GroupSpec `json:"group"`
	// People to make members (at most MaxPeople). Rows that cannot be used
	// (see Person.Problem) do not fail the command: they are reported in
	// GroupProvisioned.NotAdded with reason "invalid".
	People []Person `json:"people,omitempty"`
	// Membership is MembershipAdd (default) or MembershipSync.
	Membership string `json:"membership,omitempty"`
	// Questions, when not empty, become the group's membership questions
	// (empty leaves them unchanged).
	Questions []Question `json:"questions,omitempty"`
	// Rules, when not empty, become the group's rules (empty leaves them unchanged).
	Rules []Rule `json:"rules,omitempty"`
	// AllowDuplicateName creates a new group even when one with the same
	// name exists; by default the existing group is reused.
	AllowDuplicateName bool `json:"allowDuplicateName,omitempty"`
	// CreatorID is the Wix member id to create the group as; empty means
	// the site owner. An id (IDProblem): at most MaxIDLen characters, no
	// whitespace or control characters.
	CreatorID string `json:"creatorId,omitempty"`
	// UpdateSettings makes a reused group's settings those of Group where
	// they differ (privacy status, teaser, member title; one Update Group
	// call). Without it a reused group keeps its settings and
	// GroupProvisioned.SettingsDiffer reports the differences.
	UpdateSettings bool `json:"updateSettings,omitempty"`
	// AllowMassRemoval (sync only) lets a sync remove every member but the
	// admins. Without it a sync is refused, before any write to the group's
	// members, when People is empty (Validate: invalid), when no row
	// resolves to a member while someone would be removed, or when it would
	// remove more than half of the group's current members, admins counted
	// (kind permanent; nothing is added or removed). Unresolved rows never
	// count as members to keep.
	AllowMassRemoval bool `json:"allowMassRemoval,omitempty"`
}

// GroupSpec describes a group.
type GroupSpec struct {
	// Name is required, 1..MaxGroupNameLen characters; groups are matched by
	// name. Like every one-line text field, it must be valid UTF-8 without
	// control characters.
	Name string `json:"name"`
	// Description is optional, at most MaxGroupDescriptionLen characters;
	// it may hold line feeds and tabs, no other control characters.
	Description string `json:"description,omitempty"`
	// PrivacyStatus is PrivacyPublic (default), PrivacyPrivate or PrivacySecret.
	PrivacyStatus string `json:"privacyStatus,omitempty"`
	// Teaser is a short tagline, optional, at most MaxGroupTeaserLen characters.
	Teaser string `json:"teaser,omitempty"`
	// MemberTitle is what members are called ("Members", "Yogis"), optional,
	// at most MaxMemberTitleLen characters.
	MemberTitle string `json:"memberTitle,omitempty"`
}

// CommandType returns CmdProvisionGroup.
func (*ProvisionGroup) CommandType() string { return CmdProvisionGroup }

func (c *ProvisionGroup) applyDefaults() {
	if c.Group.PrivacyStatus == "" {
		c.Group.PrivacyStatus = PrivacyPublic
	}
	if c.Membership == "" {
		c.Membership = MembershipAdd
	}
	c.People = nilIfEmpty(c.People)
	c.Questions = nilIfEmpty(c.Questions)
	c.Rules = nilIfEmpty(c.Rules)
}

// nilIfEmpty turns an empty list into nil: for optional lists, [] and an
// absent field mean the same.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Validate implements Command. Individual people are not validated here (see Person.Problem).
func (c *ProvisionGroup) Validate() error {
	var f fieldErrs
	f.meta(c.CommandMeta)
	f.text("group.name", c.Group.Name, MaxGroupNameLen)
	f.optLongText("group.description", c.Group.Description, MaxGroupDescriptionLen)
	f.optText("group.teaser", c.Group.Teaser, MaxGroupTeaserLen)
	f.optText("group.memberTitle", c.Group.MemberTitle, MaxMemberTitleLen)
	f.oneOf("group.privacyStatus", c.Group.PrivacyStatus, true, PrivacyPublic, PrivacyPrivate, PrivacySecret)
	if p := IDProblem(c.CreatorID); p != "" {
		f.add("creatorId", "%s", p)
	}
	if len(c.People) > MaxPeople {
		f.add("people", "at most %d entries", MaxPeople)
	}
	f.oneOf("membership", c.Membership, true, MembershipAdd, MembershipSync)
	switch {
	case c.AllowMassRemoval && c.Membership != MembershipSync:
		f.add("allowMassRemoval", "only allowed with membership sync")
	case c.Membership == MembershipSync && len(c.People) == 0 && !c.AllowMassRemoval:
		// An empty sync roster removes every member but the admins: a typo or
		// a lost attachment must not do that.
		f.add("people", "required with membership sync (an empty roster removes every member but the admins; send allowMassRemoval:true for that)")
	}
	f.questions("questions", c.Questions)
	f.rules("rules", c.Rules)
	return f.err(CmdProvisionGroup)
}

// ---------------------------------------------------------------- send_campaign

// SendCampaign (CmdSendCampaign) selects the members of GroupIDs matching
// Audience and publishes one MemberSelected per member (a member in several
// groups is selected once), then CampaignCompleted.
type SendCampaign struct {
	CommandMeta
	// CampaignID is required, at most MaxIDLen characters without whitespace.
	// It keys MemberSelected event ids: resending a campaign does not select
	// the same member twice within the stream's duplicate window.
	CampaignID string `json:"campaignId"`
	// GroupIDs lists 1..MaxGroupIDs distinct Wix group ids.
	GroupIDs []string `json:"groupIds"`
	// Audience selects the members; the zero value selects everyone.
	Audience Audience `json:"audience,omitzero"`
	// Content is an optional JSON object passed through untouched to every
	// MemberSelected event (e.g. {"templateId":"spring-offer"}).
	Content json.RawMessage `json:"content,omitempty"`
}

// Audience selects which members of the groups receive a campaign.
type Audience struct {
	// Type is AudienceAll (default) or AudienceInterest.
	Type string `json:"type,omitempty"`
	// Keywords (interest only, at least one) are matched case-insensitively
	// against the members' membership answers; a keyword in double quotes
	// ("\"hot yoga\"") matches as a phrase.
	Keywords []string `json:"keywords,omitempty"`
	// Match is MatchAny (default) or MatchAll.
	Match string `json:"match,omitempty"`
	// QuestionIDs (interest only) restricts matching to the answers of these
	// membership questions; empty means every answer.
	QuestionIDs []string `json:"questionIds,omitempty"`
}

// CommandType returns CmdSendCampaign.
func (*SendCampaign) CommandType() string { return CmdSendCampaign }

func (c *SendCampaign) applyDefaults() {
	if c.Audience.Type == "" {
		c.Audience.Type = AudienceAll
	}
	if c.Audience.Match == "" {
		c.Audience.Match = MatchAny
	}
	c.Audience.Keywords = nilIfEmpty(c.Audience.Keywords)
	c.Audience.QuestionIDs = nilIfEmpty(c.Audience.QuestionIDs)
	if bytes.Equal(bytes.TrimSpace(c.Content), []byte("null")) {
		c.Content = nil
	}
}

// Validate implements Command.
func (c *SendCampaign) Validate() error {
	var f fieldErrs
	f.meta(c.CommandMeta)
	switch {
	case c.CampaignID == "":
		f.add("campaignId", "required")
	case IDProblem(c.CampaignID) != "":
		f.add("campaignId", "%s", IDProblem(c.CampaignID))
	}
	f.ids("groupIds", c.GroupIDs, MaxGroupIDs)
	a := c.Audience
	f.oneOf("audience.type", a.Type, true, AudienceAll, AudienceInterest)
	f.oneOf("audience.match", a.Match, true, MatchAny, MatchAll)
	if a.Type == AudienceInterest {
		switch {
		case len(a.Keywords) == 0:
			f.add("audience.keywords", "required for type interest")
		case len(a.Keywords) > MaxKeywords:
			f.add("audience.keywords", "at most %d entries", MaxKeywords)
		default:
			for i, k := range a.Keywords {
				f.text(fmt.Sprintf("audience.keywords[%d]", i), strings.Trim(k, `" `), MaxKeywordLen)
			}
		}
		for i, q := range a.QuestionIDs {
			if blank(q) {
				f.add(fmt.Sprintf("audience.questionIds[%d]", i), "empty")
			}
		}
	} else {
		// Keywords with the default type would silently select everyone.
		if len(a.Keywords) > 0 {
			f.add("audience.keywords", "only allowed with type interest")
		}
		if len(a.QuestionIDs) > 0 {
			f.add("audience.questionIds", "only allowed with type interest")
		}
	}
	if len(c.Content) > 0 {
		if t := bytes.TrimSpace(c.Content); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			f.add("content", "must be a JSON object")
		}
	}
	return f.err(CmdSendCampaign)
}

// ---------------------------------------------------------------- set_membership_questions

// SetMembershipQuestions (CmdSetMembershipQuestions) replaces the membership
// questions of each group in GroupIDs. It completes with MembershipQuestionsSet.
type SetMembershipQuestions struct {
	CommandMeta
	// GroupIDs lists 1..MaxGroupIDs distinct Wix group ids.
	GroupIDs []string `json:"groupIds"`
	// Questions is required; [] removes every question. At most MaxQuestions.
	Questions []Question `json:"questions"`
}

// Question is a membership question asked to people who ask to join a group.
type Question struct {
	// Text is required, 1..MaxQuestionLen characters.
	Text string `json:"text"`
	// Required makes an answer mandatory.
	Required bool `json:"required,omitempty"`
}

// CommandType returns CmdSetMembershipQuestions.
func (*SetMembershipQuestions) CommandType() string { return CmdSetMembershipQuestions }

// Validate implements Command. A missing (or null) questions field is an
// error, so that a typo cannot remove every question; send [] for that.
func (c *SetMembershipQuestions) Validate() error {
	var f fieldErrs
	f.meta(c.CommandMeta)
	f.ids("groupIds", c.GroupIDs, MaxGroupIDs)
	if c.Questions == nil {
		f.add("questions", "required")
	}
	f.questions("questions", c.Questions)
	return f.err(CmdSetMembershipQuestions)
}

// ---------------------------------------------------------------- propagate_rules

// PropagateRules (CmdPropagateRules) makes the rules of every target group
// equal to Rules, or to the rules of SourceGroupID when Rules is empty. It
// completes with RulesPropagated.
type PropagateRules struct {
	CommandMeta
	// SourceGroupID is the group whose rules are copied; required unless
	// Rules is given. A group id as in GroupIDs (GroupIDProblem).
	SourceGroupID string `json:"sourceGroupId,omitempty"`
	// Rules, when given, are propagated instead of the source group's (at most
	// MaxRules, titles unique).
	Rules []Rule `json:"rules,omitempty"`
	// Targets selects the groups to update; exactly one of its fields is set.
	Targets Targets `json:"targets"`
	// DryRun computes the diffs (RulesPropagated outcome "would_update") without writing.
	DryRun bool `json:"dryRun,omitempty"`
	// AllowEmpty lets an empty rule set read from SourceGroupID replace the
	// targets' rules, i.e. clear them. Without it a source group with no
	// rules fails the command (kind permanent) before any target is touched.
	// Only allowed when the rules come from the source (Rules empty).
	AllowEmpty bool `json:"allowEmpty,omitempty"`
}

// Rule is a group rule. Rules are identified by title.
type Rule struct {
	// Title is required, 1..MaxRuleTitleLen characters, unique within a group.
	Title string `json:"title"`
	// Description is optional, at most MaxRuleDescriptionLen characters.
	Description string `json:"description,omitempty"`
}

// Targets selects groups; exactly one field must be set.
type Targets struct {
	// All selects every group of the site except the source.
	All bool `json:"all,omitempty"`
	// GroupIDs lists 1..MaxGroupIDs distinct group ids, not including the source.
	GroupIDs []string `json:"groupIds,omitempty"`
	// NamePrefix selects groups whose name starts with it (case-insensitive), except the source.
	NamePrefix string `json:"namePrefix,omitempty"`
}

// CommandType returns CmdPropagateRules.
func (*PropagateRules) CommandType() string { return CmdPropagateRules }

func (c *PropagateRules) applyDefaults() { c.Rules = nilIfEmpty(c.Rules) }

// Validate implements Command.
func (c *PropagateRules) Validate() error {
	var f fieldErrs
	f.meta(c.CommandMeta)
	if blank(c.SourceGroupID) && len(c.Rules) == 0 {
		f.add("sourceGroupId", "required unless rules are given")
	} else {
		f.groupID("sourceGroupId", c.SourceGroupID)
	}
	f.rules("rules", c.Rules)
	if c.AllowEmpty && len(c.Rules) > 0 {
		f.add("allowEmpty", "only allowed when the rules come from sourceGroupId")
	}
	t := c.Targets
	n := 0
	if t.All {
		n++
	}
	if t.GroupIDs != nil {
		n++
	}
	if t.NamePrefix != "" {
		n++
	}
	switch {
	case n == 0:
		f.add("targets", "required")
	case n > 1:
		f.add("targets", "exactly one of all, groupIds, namePrefix")
	case t.GroupIDs != nil:
		f.ids("targets.groupIds", t.GroupIDs, MaxGroupIDs)
		for i, id := range t.GroupIDs {
			if id != "" && id == c.SourceGroupID {
				f.add(fmt.Sprintf("targets.groupIds[%d]", i), "is the source group")
			}
		}
	case t.NamePrefix != "":
		f.text("targets.namePrefix", t.NamePrefix, MaxGroupNameLen)
	}
	return f.err(CmdPropagateRules)
}

// ---------------------------------------------------------------- generate_report

// GenerateReport (CmdGenerateReport) builds the site's group report (HTML,
// CSV and JSON objects) and completes with ReportGenerated.
type GenerateReport struct {
	CommandMeta
	// Top is how many largest groups to list, 0..MaxReportRows; 0 means DefaultReportTop.
	Top int `json:"top,omitempty"`
	// Idle is how many idle groups to list, 0..MaxReportRows; 0 means DefaultReportIdle.
	Idle int `json:"idle,omitempty"`
	// IdleDays lists as idle only groups without activity for at least that
	// many days, 0..MaxIdleDays; 0 (default) means no filter (the least
	// recently active groups are listed). It is also the idle threshold of
	// the "large group idle" flag (DefaultFlagIdleDays when 0).
	IdleDays int `json:"idleDays,omitempty"`
	// TimeZone is the IANA time zone (e.g. "Europe/Berlin") the report's
	// times are shown in; empty means the site's configured zone, else UTC.
	// At most MaxTimeZoneLen bytes, a name time.LoadLocation knows.
	TimeZone string `json:"timeZone,omitempty"`
	// AllGroups lists every group of the site (List Groups, 100 a page:
	// ⌈G/100⌉ more Wix calls for G groups) and compares it with the
	// previous all-groups report of the site (ReportGenerated.Changes).
	AllGroups bool `json:"allGroups,omitempty"`
	// LargeGroup is the member count from which an idle group is flagged
	// (DefaultLargeGroup when 0); SmallGroup flags groups with fewer members
	// (DefaultSmallGroup when 0). Both 0..MaxReportThreshold.
	LargeGroup int `json:"largeGroup,omitempty"`
	SmallGroup int `json:"smallGroup,omitempty"`
}

// Report flag defaults (GenerateReport fields left 0).
const (
	DefaultFlagIdleDays = 30 // GenerateReport.IdleDays for the idle flag
	DefaultLargeGroup   = 20 // GenerateReport.LargeGroup
	DefaultSmallGroup   = 3  // GenerateReport.SmallGroup
)

// TimeZoneProblem describes why tz is not a usable IANA time zone name, or
// returns "" ("" itself is fine: it means the default).
func TimeZoneProblem(tz string) string {
	switch {
	case tz == "":
		return ""
	case len(tz) > MaxTimeZoneLen:
		return fmt.Sprintf("must be at most %d bytes", MaxTimeZoneLen)
	case tz == "Local" || strings.ContainsAny(tz, " \\") || strings.HasPrefix(tz, "/") || strings.Contains(tz, ".."):
		return "must be an IANA time zone name such as Europe/Berlin"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return "is not a known IANA time zone name"
	}
	return ""
}

// CommandType returns CmdGenerateReport.
func (*GenerateReport) CommandType() string { return CmdGenerateReport }

func (c *GenerateReport) applyDefaults() {
	if c.Top == 0 {
		c.Top = DefaultReportTop
	}
	if c.Idle == 0 {
		c.Idle = DefaultReportIdle
	}
}

// Validate implements Command.
func (c *GenerateReport) Validate() error {
	var f fieldErrs
	f.meta(c.CommandMeta)
	if c.Top < 0 || c.Top > MaxReportRows {
		f.add("top", "must be between 0 and %d", MaxReportRows)
	}
	if c.Idle < 0 || c.Idle > MaxReportRows {
		f.add("idle", "must be between 0 and %d", MaxReportRows)
	}
	if c.IdleDays < 0 || c.IdleDays > MaxIdleDays {
		f.add("idleDays", "must be between 0 and %d", MaxIdleDays)
	}
	if p := TimeZoneProblem(c.TimeZone); p != "" {
		f.add("timeZone", "%s", p)
	}
	if c.LargeGroup < 0 || c.LargeGroup > MaxReportThreshold {
		f.add("largeGroup", "must be between 0 and %d", MaxReportThreshold)
	}
	if c.SmallGroup < 0 || c.SmallGroup > MaxReportThreshold {
		f.add("smallGroup", "must be between 0 and %d", MaxReportThreshold)
	}
	return f.err(CmdGenerateReport)
}
