package wixsim

import "time"

// Member is a site member (Members API v1) as stored by the simulator.
type Member struct {
	ID             string    `json:"id"`
	LoginEmail     string    `json:"loginEmail,omitempty"`
	ContactID      string    `json:"contactId"`
	FirstName      string    `json:"firstName,omitempty"`
	LastName       string    `json:"lastName,omitempty"`
	Nickname       string    `json:"nickname,omitempty"`
	Slug           string    `json:"slug,omitempty"`
	Emails         []string  `json:"emails,omitempty"` // contact emails, login email first when set
	Phones         []string  `json:"phones,omitempty"` // as entered (formatted)
	Status         string    `json:"status"`           // APPROVED, PENDING, BLOCKED...
	PrivacyStatus  string    `json:"privacyStatus"`    // PUBLIC or PRIVATE
	ActivityStatus string    `json:"activityStatus"`   // ACTIVE or MUTED
	CreatedDate    time.Time `json:"createdDate"`
	UpdatedDate    time.Time `json:"updatedDate"`
	LastLoginDate  time.Time `json:"lastLoginDate"`

	seq int // creation order, the default sort
}

// MemberSeed describes a member to add with Site.AddMember. Empty fields are
// derived: the id and contact id are generated, the nickname defaults to
// "First L.", emails default to the login email.
type MemberSeed struct {
	FirstName, LastName, Nickname, LoginEmail string
	Emails, Phones                            []string
	ContactID                                 string // optional; generated when empty
	Private                                   bool   // privacyStatus PRIVATE
}

// ContactEmail is one email of a contact (Contacts v4 info.emails.items).
type ContactEmail struct {
	Email string `json:"email"`
	Tag   string `json:"tag"` // MAIN, HOME, WORK, UNTAGGED
}

// ContactPhone is one phone of a contact (Contacts v4 info.phones.items).
type ContactPhone struct {
	Phone       string `json:"phone"`       // as entered
	E164Phone   string `json:"e164Phone"`   // normalised, e.g. +12125550142
	CountryCode string `json:"countryCode"` // ISO-3166 alpha-2, e.g. US
}

// Contact is a CRM contact (Contacts v4). Every member has one; some contacts
// are not members.
type Contact struct {
	ID        string         `json:"id"`
	FirstName string         `json:"firstName,omitempty"`
	LastName  string         `json:"lastName,omitempty"`
	Emails    []ContactEmail `json:"emails,omitempty"`
	Phones    []ContactPhone `json:"phones,omitempty"`
	MemberID  string         `json:"memberId,omitempty"`
	Created   time.Time      `json:"createdDate"`
}

// ContactSeed describes a contact to add with Site.AddContact.
type ContactSeed struct {
	FirstName, LastName string
	Emails, Phones      []string
	ID                  string // optional; generated when empty
}

// Subscription is an email subscription record (Email Subscriptions v1).
type Subscription struct {
	ID                   string    `json:"id"`
	Email                string    `json:"email"`
	SubscriptionStatus   string    `json:"subscriptionStatus"`
	DeliverabilityStatus string    `json:"deliverabilityStatus"`
	CreatedDate          time.Time `json:"createdDate"`
	UpdatedDate          time.Time `json:"updatedDate"`
}

// Group is a social group as stored by the simulator (current field names).
type Group struct {
	ID               string         `json:"id"`
	Slug             string         `json:"slug"`
	Name             string         `json:"name"`
	PrivacyStatus    string         `json:"privacyStatus"`
	Description      string         `json:"description,omitempty"`
	Teaser           string         `json:"teaser,omitempty"`
	MemberTitle      string         `json:"memberTitle,omitempty"`
	Settings         map[string]any `json:"settings,omitempty"`
	CoverImage       map[string]any `json:"coverImage,omitempty"`
	MembersCount     int            `json:"membersCount"`
	OwnerID          string         `json:"ownerId,omitempty"`
	CreatedDate      time.Time      `json:"createdDate"`
	UpdatedDate      time.Time      `json:"updatedDate"`
	LastActivityDate time.Time      `json:"lastActivityDate"`
}

// GroupMember is one membership of a site member in a group.
type GroupMember struct {
	MemberID   string    `json:"memberId"`
	Role       string    `json:"role"` // ADMIN or MEMBER
	JoinedDate time.Time `json:"joinedDate"`
}

// Question is a membership question of a group.
type Question struct {
	ID       string `json:"id"`
	Required bool   `json:"required"`
	Text     string `json:"text"`
}

// Answer is one member's answer to one question.
type Answer struct {
	QuestionID string `json:"id"`
	Text       string `json:"text"`
}

// MemberAnswers holds all answers of one member in one group.
type MemberAnswers struct {
	MemberID string   `json:"memberId"`
	Answers  []Answer `json:"answers"`
}

// Rule is a group rule (rules have no ids).
type Rule struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

// RequestLog is one entry of Server.RecentRequests.
type RequestLog struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query,omitempty"`
	Op     string    `json:"op"`
	Status int       `json:"status"` // 0 when the connection was reset
}

// group is the internal, mutable state of a group.
type group struct {
	Group
	entries   []*GroupMember // in join order (joinedDate ascending)
	index     map[string]*GroupMember
	questions []Question
	answers   []*MemberAnswers // in the order answers were first recorded
	answerIdx map[string]*MemberAnswers
	rules     []Rule
	invited   map[string]time.Time // pending invitations (private site members)
	seq       int
}

func newGroup(g Group, seq int) *group {
	return &group{Group: g, index: map[string]*GroupMember{}, answerIdx: map[string]*MemberAnswers{}, seq: seq}
}

// wixTime formats a timestamp the way Wix does (UTC, milliseconds).
func wixTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
