package wix

import (
	"encoding/json"
	"strings"
	"time"
)

// Documented Wix limits. The client rejects input over them with a
// permanent error wrapping ErrInvalidInput, before any request.
const (
	// MaxPageSize is the largest paging.limit of list and query calls.
	MaxPageSize = 100
	// MaxMemberIDsPerAdd is the largest memberIds of Add/Remove Group Members.
	MaxMemberIDsPerAdd = 100
	// MaxInValues is the $in size this client uses (Wix's limit is
	// undocumented; chunk by this).
	MaxInValues = 100
	// MaxAnswerMemberIDs is the largest memberIds of List Answers.
	MaxAnswerMemberIDs = 500
	// MaxQuestions is the largest number of membership questions per group.
	MaxQuestions = 50
	// MaxQuestionLen is the longest membership question text, in characters.
	MaxQuestionLen = 300
	// MaxRules is the largest number of rules per group.
	MaxRules = 100
	// MaxGroupNameLen is the longest group name, in characters.
	MaxGroupNameLen = 100
)

// Group privacy statuses.
const (
	PrivacyPublic  = "PUBLIC"
	PrivacyPrivate = "PRIVATE"
	PrivacySecret  = "SECRET"
)

// Group member roles.
const (
	RoleMember = "MEMBER"
	RoleAdmin  = "ADMIN"
)

// Members API fieldsets.
const (
	FieldsetPublic   = "PUBLIC"
	FieldsetExtended = "EXTENDED"
	FieldsetFull     = "FULL"
)

// Email subscription statuses (EmailSubscription.SubscriptionStatus).
const (
	StatusUnknown      = "UNKNOWN"
	StatusNotSet       = "NOT_SET"
	StatusPending      = "PENDING"
	StatusSubscribed   = "SUBSCRIBED"
	StatusUnsubscribed = "UNSUBSCRIBED"
)

// Paging is offset paging: {limit, offset}. A zero Limit lets Wix choose.
type Paging struct {
	// Limit is the page size, at most MaxPageSize.
	Limit int `json:"limit,omitempty"`
	// Offset is the number of items to skip.
	Offset int `json:"offset"`
}

// PagingMetadata is the "metadata" of an offset-paged response.
type PagingMetadata struct {
	// Count is the number of items in this page.
	Count int `json:"count,omitempty"`
	// Offset is the requested offset.
	Offset int `json:"offset,omitempty"`
	// Total is the number of matching items (unset if TooManyToCount).
	Total int `json:"total,omitempty"`
	// TooManyToCount is true when Wix could not compute Total.
	TooManyToCount bool `json:"tooManyToCount,omitempty"`
}

// Sort is one sort item; an empty Order sorts ascending.
type Sort struct {
	// FieldName is the field to sort on.
	FieldName string `json:"fieldName"`
	// Order is "ASC" or "DESC".
	Order string `json:"order,omitempty"`
}

// Query is a WQL query: {filter, sort, paging}.
type Query struct {
	// Filter is a WQL filter, e.g. {"role": {"$eq": "ADMIN"}}.
	Filter map[string]any `json:"filter,omitempty"`
	// Sort lists the sort items.
	Sort []Sort `json:"sort,omitempty"`
	// Paging is the offset paging; nil lets Wix choose.
	Paging *Paging `json:"paging,omitempty"`
}

// MembersQuery is a Members API query. Members sorts with "sorting" (not
// "sort") and takes fieldsets at the top level of the request.
type MembersQuery struct {
	// Filter is a WQL filter, e.g. {"loginEmail": {"$in": [...]}}.
	Filter map[string]any
	// Sorting lists the sort items.
	Sorting []Sort
	// Paging is the offset paging; nil lets Wix choose.
	Paging *Paging
	// Fieldsets selects the returned fields (FieldsetFull for emails and
	// phones); at most 3.
	Fieldsets []string
	// Search is an optional free-text search.
	Search *MembersSearch
}

// MembersSearch is the free-text search of Query Members.
type MembersSearch struct {
	// Expression is the text, 1-100 characters.
	Expression string `json:"expression"`
	// Fields are up to 4 of loginEmail, contact.firstName, contact.lastName,
	// profile.title, profile.nickname, profile.slug.
	Fields []string `json:"fields,omitempty"`
}

// GroupSettings are a group's settings. Booleans are pointers so that an
// explicit false is sent.
type GroupSettings struct {
	// WelcomeMemberPostEnabled (legacy memberWelcomePostEnabled).
	WelcomeMemberPostEnabled *bool `json:"welcomeMemberPostEnabled,omitempty"`
	// GroupDetailsChangedPostEnabled posts when details change.
	GroupDetailsChangedPostEnabled *bool `json:"groupDetailsChangedPostEnabled,omitempty"`
	// ShowMemberList shows the member list.
	ShowMemberList *bool `json:"showMemberList,omitempty"`
	// AISpamProtectionEnabled (Wix default true).
	AISpamProtectionEnabled *bool `json:"aiSpamProtectionEnabled,omitempty"`
	// AllowedToInviteMembers is OWNER_AND_ADMINS, OWNER or ALL_MEMBERS.
	AllowedToInviteMembers string `json:"allowedToInviteMembers,omitempty"`
	// AllowedToApproveJoinRequests is OWNER_AND_ADMINS, OWNER or ALL_MEMBERS.
	AllowedToApproveJoinRequests string `json:"allowedToApproveJoinRequests,omitempty"`
	// MembersCanInvite is deprecated (legacy membersPermittedToInvite).
	MembersCanInvite *bool `json:"membersCanInvite,omitempty"`
	// MembersCanApprove is deprecated (legacy membersPermittedToApprove).
	MembersCanApprove *bool `json:"membersCanApprove,omitempty"`
}

// UnmarshalJSON reads the current names and falls back to legacy ones.
func (s *GroupSettings) UnmarshalJSON(b []byte) error {
	type plain GroupSettings
	var v struct {
		plain
		MembersPermittedToInvite  *bool `json:"membersPermittedToInvite"`
		MembersPermittedToApprove *bool `json:"membersPermittedToApprove"`
		MemberWelcomePostEnabled  *bool `json:"memberWelcomePostEnabled"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = GroupSettings(v.plain)
	s.MembersCanInvite = firstNonNil(s.MembersCanInvite, v.MembersPermittedToInvite)
	s.MembersCanApprove = firstNonNil(s.MembersCanApprove, v.MembersPermittedToApprove)
	s.WelcomeMemberPostEnabled = firstNonNil(s.WelcomeMemberPostEnabled, v.MemberWelcomePostEnabled)
	return nil
}

func firstNonNil[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Group is a Wix group (REST names). Read-only fields (ID, Slug,
// MembersCount, OwnerID, dates) are ignored by Wix on create and update.
type Group struct {
	// ID is the group GUID.
	ID string `json:"id,omitempty"`
	// Slug is the URL slug, derived from the name.
	Slug string `json:"slug,omitempty"`
	// Name is the group name, at most MaxGroupNameLen characters (legacy "title").
	Name string `json:"name,omitempty"`
	// Description is the description (DraftJS by default).
	Description string `json:"description,omitempty"`
	// Teaser is a short description, at most 1000 characters.
	Teaser string `json:"teaser,omitempty"`
	// MemberTitle is what members are called, e.g. "Friends".
	MemberTitle string `json:"memberTitle,omitempty"`
	// PrivacyStatus is PUBLIC, PRIVATE or SECRET (legacy "privacyLevel").
	PrivacyStatus string `json:"privacyStatus,omitempty"`
	// MembersCount counts the members, creator included.
	MembersCount int `json:"membersCount,omitempty"`
	// OwnerID is the owner's member ID (legacy "createdBy.id").
	OwnerID string `json:"ownerId,omitempty"`
	// CreatedDate is when the group was created.
	CreatedDate *time.Time `json:"createdDate,omitempty"`
	// UpdatedDate is when the group was last updated.
	UpdatedDate *time.Time `json:"updatedDate,omitempty"`
	// LastActivityDate is the last activity (legacy "recentActivityDate").
	LastActivityDate *time.Time `json:"lastActivityDate,omitempty"`
	// Settings are the group settings.
	Settings *GroupSettings `json:"settings,omitempty"`
	// CoverImage is {image, position, mobilePosition, altText}, kept raw.
	CoverImage json.RawMessage `json:"coverImage,omitempty"`
}

// UnmarshalJSON reads the current names and falls back to the legacy
// title, privacyLevel, recentActivityDate, createdBy.id and
// details.membersTitle.
func (g *Group) UnmarshalJSON(b []byte) error {
	var v groupJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var err error
	*g, err = v.group()
	return err
}

// groupPlain is Group without its methods.
type groupPlain Group

// groupJSON is a Group's wire form: the current names and the legacy ones.
// It has no UnmarshalJSON, so an answer holding groups decoded through it
// (see wixDecoder) is scanned once, not once more per group.
type groupJSON struct {
	groupPlain
	Title              string     `json:"title"`
	PrivacyLevel       string     `json:"privacyLevel"`
	RecentActivityDate *time.Time `json:"recentActivityDate"`
	CreatedBy          *struct {
		ID string `json:"id"`
	} `json:"createdBy"`
	Details *struct {
		MembersTitle string `json:"membersTitle"`
	} `json:"details"`
}

// group returns the Group v holds, legacy names filling the current ones;
// an invalid id or owner id (see checkAnswerID) is an error.
func (v *groupJSON) group() (Group, error) {
	g := Group(v.groupPlain)
	g.Name = firstNonEmpty(g.Name, v.Title)
	g.PrivacyStatus = firstNonEmpty(g.PrivacyStatus, v.PrivacyLevel)
	g.LastActivityDate = firstNonNil(g.LastActivityDate, v.RecentActivityDate)
	if g.OwnerID == "" && v.CreatedBy != nil {
		g.OwnerID = v.CreatedBy.ID
	}
	if g.MemberTitle == "" && v.Details != nil {
		g.MemberTitle = v.Details.MembersTitle
	}
	if err := checkAnswerID("group id", g.ID); err != nil {
		return Group{}, err
	}
	if err := checkAnswerID("group owner id", g.OwnerID); err != nil {
		return Group{}, err
	}
	return g, nil
}

// ptr returns the Group v holds, nil for a nil v (an answer without one).
func (v *groupJSON) ptr() (*Group, error) {
	if v == nil {
		return nil, nil
	}
	g, err := v.group()
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// groupsOf converts decoded groups (nil stays nil).
func groupsOf(vs []groupJSON) ([]Group, error) {
	if vs == nil {
		return nil, nil
	}
	gs := make([]Group, len(vs))
	for i := range vs {
		var err error
		if gs[i], err = vs[i].group(); err != nil {
			return nil, err
		}
	}
	return gs, nil
}

// writable returns g without the read-only fields, for create and update
// bodies (keepID keeps ID).
func (g Group) writable(keepID bool) Group {
	w := g
	if !keepID {
		w.ID = ""
	}
	w.MembersCount, w.OwnerID = 0, ""
	w.CreatedDate, w.UpdatedDate, w.LastActivityDate = nil, nil, nil
	return w
}

// GroupMember is a member of a group. JSON: {"memberId", "role": {"value"},
// "joinedDate"}; legacy "siteMemberId".
type GroupMember struct {
	// MemberID is the site member ID (shared with the Members API).
	MemberID string
	// Role is RoleMember or RoleAdmin.
	Role string
	// JoinedDate is when the member joined.
	JoinedDate *time.Time
}

type groupMemberJSON struct {
	MemberID     string          `json:"memberId,omitempty"`
	SiteMemberID string          `json:"siteMemberId,omitempty"`
	Role         json.RawMessage `json:"role,omitempty"`
	JoinedDate   *time.Time      `json:"joinedDate,omitempty"`
}

// MarshalJSON writes the REST shape.
func (m GroupMember) MarshalJSON() ([]byte, error) {
	v := groupMemberJSON{MemberID: m.MemberID, JoinedDate: m.JoinedDate}
	if m.Role != "" {
		r, err := json.Marshal(struct {
			Value string `json:"value"`
		}{m.Role})
		if err != nil {
			return nil, err
		}
		v.Role = r
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads the REST shape; role may be {"value": x} or a plain
// string, memberId falls back to siteMemberId.
func (m *GroupMember) UnmarshalJSON(b []byte) error {
	var v groupMemberJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return v.member(m)
}

// member sets *m from its wire form v.
func (v *groupMemberJSON) member(m *GroupMember) error {
	*m = GroupMember{MemberID: firstNonEmpty(v.MemberID, v.SiteMemberID), JoinedDate: v.JoinedDate}
	if err := checkAnswerID("member id", m.MemberID); err != nil {
		return err
	}
	if len(v.Role) > 0 && string(v.Role) != "null" {
		var obj struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal(v.Role, &obj); err != nil {
			if err := json.Unmarshal(v.Role, &m.Role); err != nil {
				return err
			}
		} else {
			m.Role = obj.Value
		}
	}
	return nil
}

// groupMembersOf converts decoded group members (nil stays nil).
func groupMembersOf(vs []groupMemberJSON) ([]GroupMember, error) {
	if vs == nil {
		return nil, nil
	}
	ms := make([]GroupMember, len(vs))
	for i := range vs {
		if err := vs[i].member(&ms[i]); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// MemberContact is the contact part of a site member.
type MemberContact struct {
	// FirstName is the first name.
	FirstName string `json:"firstName,omitempty"`
	// LastName is the last name.
	LastName string `json:"lastName,omitempty"`
	// Emails are the contact's emails (FULL fieldset).
	Emails []string `json:"emails,omitempty"`
	// Phones are the contact's phones (FULL fieldset).
	Phones []string `json:"phones,omitempty"`
	// Birthdate is "YYYY-MM-DD".
	Birthdate string `json:"birthdate,omitempty"`
	// Company is the company name.
	Company string `json:"company,omitempty"`
	// JobTitle is the job title.
	JobTitle string `json:"jobTitle,omitempty"`
}

// MemberProfile is the public profile of a site member.
type MemberProfile struct {
	// Nickname is the display name.
	Nickname string `json:"nickname,omitempty"`
	// Slug is the profile URL slug.
	Slug string `json:"slug,omitempty"`
	// Title is the profile title.
	Title string `json:"title,omitempty"`
}

// Member is a site member (Members API v1).
type Member struct {
	// ID is the member GUID.
	ID string `json:"id,omitempty"`
	// LoginEmail is the login email (EXTENDED or FULL fieldset).
	LoginEmail string `json:"loginEmail,omitempty"`
	// LoginEmailVerified reports a verified login email.
	LoginEmailVerified bool `json:"loginEmailVerified,omitempty"`
	// ContactID is the member's contact GUID.
	ContactID string `json:"contactId,omitempty"`
	// Status is UNKNOWN, PENDING, APPROVED, BLOCKED or OFFLINE.
	Status string `json:"status,omitempty"`
	// PrivacyStatus is UNKNOWN, PRIVATE or PUBLIC.
	PrivacyStatus string `json:"privacyStatus,omitempty"`
	// ActivityStatus is UNKNOWN, ACTIVE or MUTED.
	ActivityStatus string `json:"activityStatus,omitempty"`
	// Contact holds names, emails and phones (FULL fieldset).
	Contact MemberContact `json:"contact,omitzero"`
	// Profile is the public profile.
	Profile MemberProfile `json:"profile,omitzero"`
	// CreatedDate is when the member was created.
	CreatedDate *time.Time `json:"createdDate,omitempty"`
	// UpdatedDate is when the member was last updated.
	UpdatedDate *time.Time `json:"updatedDate,omitempty"`
	// LastLoginDate is the last login.
	LastLoginDate *time.Time `json:"lastLoginDate,omitempty"`
}

// UnmarshalJSON reads a member; an invalid id or contact id (see
// checkAnswerID) is an error.
func (m *Member) UnmarshalJSON(b []byte) error {
	type plain Member
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	if err := checkAnswerID("member id", m.ID); err != nil {
		return err
	}
	return checkAnswerID("member contact id", m.ContactID)
}

// Email returns the login email, else the first contact email, else "".
func (m Member) Email() string {
	if m.LoginEmail != "" {
		return m.LoginEmail
	}
	for _, e := range m.Contact.Emails {
		if e != "" {
			return e
		}
	}
	return ""
}

// EmailSubscription is the marketing subscription state of one email.
type EmailSubscription struct {
	// ID is the subscription GUID.
	ID string `json:"id,omitempty"`
	// Email is the email address.
	Email string `json:"email,omitempty"`
	// SubscriptionStatus is one of the Status* constants.
	SubscriptionStatus string `json:"subscriptionStatus,omitempty"`
	// DeliverabilityStatus is NOT_SET, VALID, BOUNCED, SPAM_COMPLAINT or INACTIVE.
	DeliverabilityStatus string `json:"deliverabilityStatus,omitempty"`
	// CreatedDate is when the record was created.
	CreatedDate *time.Time `json:"createdDate,omitempty"`
	// UpdatedDate is when the record was last updated.
	UpdatedDate *time.Time `json:"updatedDate,omitempty"`
}

// MembershipQuestion is a question asked to people who ask to join a group.
type MembershipQuestion struct {
	// ID is assigned by Wix.
	ID string `json:"id,omitempty"`
	// Required makes the answer mandatory.
	Required bool `json:"required,omitempty"`
	// Text is 1 to MaxQuestionLen characters.
	Text string `json:"text,omitempty"`
}

// Answer is one answer of a member.
type Answer struct {
	// ID is the question ID.
	ID string `json:"id,omitempty"`
	// Text is the answer text.
	Text string `json:"text,omitempty"`
}

// MemberAnswers are the answers of one member.
type MemberAnswers struct {
	// MemberID is the member.
	MemberID string `json:"memberId,omitempty"`
	// Answers are the member's answers.
	Answers []Answer `json:"answers,omitempty"`
}

// AnswersPage is one page of List Answers.
type AnswersPage struct {
	// MemberAnswers are the answers, per member.
	MemberAnswers []MemberAnswers `json:"memberAnswers,omitempty"`
	// Questions maps question IDs to the questions that have answers.
	Questions map[string]MembershipQuestion `json:"questions,omitempty"`
	// Metadata is the paging metadata.
	Metadata PagingMetadata `json:"metadata"`
}

// GroupRule is one rule of a group.
type GroupRule struct {
	// Title is the rule title.
	Title string `json:"title,omitempty"`
	// Description is the rule text.
	Description string `json:"description,omitempty"`
}

// Contact is a Contacts v4 contact, flattened.
type Contact struct {
	// ID is the contact GUID.
	ID string `json:"id,omitempty"`
	// FirstName is info.name.first.
	FirstName string `json:"firstName,omitempty"`
	// LastName is info.name.last.
	LastName string `json:"lastName,omitempty"`
	// Emails are the contact's emails, primary first.
	Emails []string `json:"emails,omitempty"`
	// Phones are the contact's phones (E.164 when Wix has it), primary first.
	Phones []string `json:"phones,omitempty"`
}

// contactV4 is the Contacts v4 REST shape.
type contactV4 struct {
	ID   string `json:"id"`
	Info struct {
		Name struct {
			First string `json:"first"`
			Last  string `json:"last"`
		} `json:"name"`
		Emails struct {
			Items []struct {
				Email string `json:"email"`
			} `json:"items"`
		} `json:"emails"`
		Phones struct {
			Items []struct {
				Phone     string `json:"phone"`
				E164Phone string `json:"e164Phone"`
			} `json:"items"`
		} `json:"phones"`
	} `json:"info"`
	PrimaryInfo struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
	} `json:"primaryInfo"`
}

// UnmarshalJSON flattens the Contacts v4 shape ({id, info: {name, emails,
// phones}, primaryInfo}).
func (c *Contact) UnmarshalJSON(b []byte) error {
	var v contactV4
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if err := checkAnswerID("contact id", v.ID); err != nil {
		return err
	}
	*c = Contact{ID: v.ID, FirstName: v.Info.Name.First, LastName: v.Info.Name.Last}
	for _, it := range v.Info.Emails.Items {
		if it.Email != "" {
			c.Emails = appendUnique(c.Emails, it.Email, strings.EqualFold)
		}
	}
	if p := v.PrimaryInfo.Email; p != "" {
		c.Emails = toFront(c.Emails, p, strings.EqualFold)
	}
	primary := -1
	for _, it := range v.Info.Phones.Items {
		p := firstNonEmpty(it.E164Phone, it.Phone)
		if p == "" {
			continue
		}
		if pp := v.PrimaryInfo.Phone; pp != "" && primary < 0 && (pp == it.Phone || pp == it.E164Phone) {
			primary = len(c.Phones)
		}
		c.Phones = appendUnique(c.Phones, p, func(a, b string) bool { return a == b })
	}
	switch {
	case primary > 0:
		c.Phones = toFront(c.Phones, c.Phones[primary], func(a, b string) bool { return a == b })
	case primary < 0 && v.PrimaryInfo.Phone != "":
		c.Phones = toFront(c.Phones, v.PrimaryInfo.Phone, func(a, b string) bool { return a == b })
	}
	return nil
}

func appendUnique(s []string, v string, eq func(a, b string) bool) []string {
	for _, x := range s {
		if eq(x, v) {
			return s
		}
	}
	return append(s, v)
}

// toFront moves v (or an equal element) to the front, inserting it if absent.
func toFront(s []string, v string, eq func(a, b string) bool) []string {
	out := []string{v}
	for _, x := range s {
		if eq(x, v) {
			out[0] = x
			continue
		}
		out = append(out, x)
	}
	return out
}

// GroupsPage is one page of groups.
type GroupsPage struct {
	// Groups are the groups of this page.
	Groups []Group `json:"groups"`
	// Metadata is the paging metadata.
	Metadata PagingMetadata `json:"metadata"`
}

// GroupMembersPage is one page of group members.
type GroupMembersPage struct {
	// Members are the group members of this page.
	Members []GroupMember `json:"members"`
	// Metadata is the paging metadata.
	Metadata PagingMetadata `json:"metadata"`
}

// decodeWix decodes an answer into p, its groups through groupJSON.
func (p *GroupsPage) decodeWix(raw []byte) error {
	var v struct {
		Groups   []groupJSON    `json:"groups"`
		Metadata PagingMetadata `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	gs, err := groupsOf(v.Groups)
	if err != nil {
		return err
	}
	p.Groups, p.Metadata = gs, v.Metadata
	return nil
}

// decodeWix decodes an answer into p, its members through groupMemberJSON.
func (p *GroupMembersPage) decodeWix(raw []byte) error {
	var v struct {
		Members  []groupMemberJSON `json:"members"`
		Metadata PagingMetadata    `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	ms, err := groupMembersOf(v.Members)
	if err != nil {
		return err
	}
	p.Members, p.Metadata = ms, v.Metadata
	return nil
}

// MembersPage is one page of site members.
type MembersPage struct {
	// Members are the site members of this page.
	Members []Member `json:"members"`
	// Metadata is the paging metadata.
	Metadata PagingMetadata `json:"metadata"`
}

// SubscriptionsPage is one page of email subscriptions.
type SubscriptionsPage struct {
	// Subscriptions are the records found; emails without a record are
	// absent (treat them as StatusNotSet, see Status).
	Subscriptions []EmailSubscription `json:"subscriptions"`
	// Metadata is the paging metadata.
	Metadata PagingMetadata `json:"metadata"`
}

// Status returns the subscription status of email in the page (case
// insensitive), StatusNotSet when the page has no record for it.
func (p *SubscriptionsPage) Status(email string) string {
	for _, s := range p.Subscriptions {
		if strings.EqualFold(s.Email, email) {
			if s.SubscriptionStatus == "" {
				return StatusNotSet
			}
			return s.SubscriptionStatus
		}
	}
	return StatusNotSet
}

// ContactsPage is one page of contacts.
type ContactsPage struct {
	// Contacts are the contacts of this page.
	Contacts []Contact `json:"contacts"`
	// Metadata is the paging metadata (from "pagingMetadata" or "metadata").
	Metadata PagingMetadata `json:"metadata"`
}
