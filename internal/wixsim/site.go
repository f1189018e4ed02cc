package wixsim

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Site is the isolated data of one Wix site (one app instance). All exported
// methods are safe for concurrent use and may be called while the server runs.
type Site struct {
	id  string
	now func() time.Time

	mu              sync.RWMutex
	seed            int64
	rng             *rand.Rand // ids and random slugs after seeding; guarded by mu
	members         []*Member  // creation order
	memberByID      map[string]*Member
	memberByEmail   map[string]*Member // lower-case login email
	memberByContact map[string]*Member
	memberSlugs     map[string]bool
	slugNext        map[string]int    // next numeric suffix per slug base
	slugBase        map[string]string // nickname -> kebab base (cache)
	contacts        []*Contact
	contactByID     map[string]*Contact
	subs            map[string]*Subscription
	subByID         map[string]*Subscription
	groups          []*group // creation order, deleted groups removed
	groupByID       map[string]*group
	groupBySlug     map[string]*group
	groupsByName    map[string][]*group // exact name, creation order
	ownerID         string
	seq             int
	modes           Modes
	requests        []*GroupRequest // group requests, oldest first
}

func newSite(id string, seed int64, now func() time.Time) *Site {
	st := &Site{id: id, seed: seed}
	st.now = func() time.Time { return now().UTC().Truncate(time.Millisecond) }
	st.wipe()
	return st
}

// siteSeed mixes the global seed with the site id so that sites differ.
func siteSeed(seed int64, siteID string) (uint64, uint64) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(siteID); i++ {
		h ^= uint64(siteID[i])
		h *= 1099511628211
	}
	return uint64(seed), h
}

func (st *Site) wipe() {
	a, b := siteSeed(st.seed, st.id)
	st.rng = rand.New(rand.NewPCG(a, b^0x9e3779b97f4a7c15))
	st.members = nil
	st.memberByID = map[string]*Member{}
	st.memberByEmail = map[string]*Member{}
	st.memberByContact = map[string]*Member{}
	st.memberSlugs = map[string]bool{}
	st.slugNext = map[string]int{}
	st.slugBase = map[string]string{}
	st.contacts = nil
	st.contactByID = map[string]*Contact{}
	st.subs = map[string]*Subscription{}
	st.subByID = map[string]*Subscription{}
	st.groups = nil
	st.groupByID = map[string]*group{}
	st.groupBySlug = map[string]*group{}
	st.groupsByName = map[string][]*group{}
	st.ownerID = ""
	st.seq = 0
	st.requests = nil
}

// ID returns the site id.
func (st *Site) ID() string { return st.id }

// OwnerID returns the member id of the site owner: the first member, unless
// the site has no members.
func (st *Site) OwnerID() string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.ownerID
}

func newUUID(r *rand.Rand) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], r.Uint64())
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return uuid.UUID(b).String()
}

func (st *Site) newID() string { return newUUID(st.rng) }

// ---- text helpers ----

var foldSpecial = strings.NewReplacer("ß", "ss", "ø", "o", "Ø", "O", "ł", "l", "Ł", "L", "æ", "ae", "Æ", "AE", "đ", "d", "&", " and ")

// asciiFold removes accents: "Zoë José" -> "Zoe Jose".
func asciiFold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, foldSpecial.Replace(s))
	if err != nil {
		return s
	}
	return out
}

// kebab returns the kebab-case slug of s: "Yoga Monday" -> "yoga-monday".
func kebab(s string) string {
	s = strings.ToLower(asciiFold(s))
	var b strings.Builder
	dash := false
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	out := b.String()
	if len(out) > 90 {
		out = strings.TrimRight(out[:90], "-")
	}
	return out
}

// ---- members and contacts (callers hold st.mu) ----

func (st *Site) uniqueMemberSlug(nick string) string {
	base, ok := st.slugBase[nick]
	if !ok {
		base = kebab(nick)
		if base == "" {
			base = "member"
		}
		st.slugBase[nick] = base
	}
	slug := base
	for i := st.slugNext[base]; st.memberSlugs[slug]; i++ {
		slug = base + strconv.Itoa(i+1)
		st.slugNext[base] = i + 1
	}
	st.memberSlugs[slug] = true
	return slug
}

func (st *Site) indexContact(c *Contact) {
	st.contacts = append(st.contacts, c)
	st.contactByID[c.ID] = c
}

func contactEmails(emails []string) []ContactEmail {
	out := make([]ContactEmail, 0, len(emails))
	for i, e := range emails {
		tag := "MAIN"
		if i > 0 {
			tag = []string{"HOME", "WORK", "UNTAGGED"}[i%3]
		}
		out = append(out, ContactEmail{Email: e, Tag: tag})
	}
	return out
}

func contactPhones(phones []string) []ContactPhone {
	out := make([]ContactPhone, 0, len(phones))
	for _, p := range phones {
		e164, cc := toE164(p)
		out = append(out, ContactPhone{Phone: p, E164Phone: e164, CountryCode: cc})
	}
	return out
}

// toE164 normalises the phone formats the seeder produces (US/CA numbers with
// or without +1, UK +44 numbers, any other +CC number).
func toE164(p string) (string, string) {
	var d strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			d.WriteRune(r)
		}
	}
	digits := d.String()
	switch {
	case strings.HasPrefix(p, "+44"):
		return "+" + digits, "GB"
	case strings.HasPrefix(p, "+1") || (!strings.HasPrefix(p, "+") && len(digits) == 10):
		if len(digits) == 10 {
			digits = "1" + digits
		}
		return "+" + digits, "US"
	case strings.HasPrefix(p, "+"):
		return "+" + digits, ""
	}
	return digits, ""
}

func (st *Site) addMemberLocked(ms MemberSeed, created time.Time) *Member {
	st.seq++
	m := &Member{
		ID:             st.newID(),
		LoginEmail:     strings.ToLower(strings.TrimSpace(ms.LoginEmail)),
		ContactID:      ms.ContactID,
		FirstName:      ms.FirstName,
		LastName:       ms.LastName,
		Nickname:       ms.Nickname,
		Phones:         slices.Clone(ms.Phones),
		Status:         "APPROVED",
		PrivacyStatus:  "PUBLIC",
		ActivityStatus: "ACTIVE",
		CreatedDate:    created,
		UpdatedDate:    created,
		LastLoginDate:  created,
		seq:            st.seq,
	}
	if ms.Private {
		m.PrivacyStatus = "PRIVATE"
	}
	if m.Nickname == "" {
		m.Nickname = strings.TrimSpace(ms.FirstName)
		if ms.LastName != "" {
			m.Nickname += " " + string([]rune(ms.LastName)[:1]) + "."
		}
	}
	m.Slug = st.uniqueMemberSlug(m.Nickname)
	if m.LoginEmail != "" {
		m.Emails = append(m.Emails, m.LoginEmail)
	}
	for _, e := range ms.Emails {
		if !slices.ContainsFunc(m.Emails, func(x string) bool { return strings.EqualFold(x, e) }) {
			m.Emails = append(m.Emails, e)
		}
	}
	if m.ContactID == "" {
		m.ContactID = st.newID()
	}
	if c, ok := st.contactByID[m.ContactID]; ok {
		c.MemberID = m.ID
	} else {
		st.indexContact(&Contact{ID: m.ContactID, FirstName: m.FirstName, LastName: m.LastName,
			Emails: contactEmails(m.Emails), Phones: contactPhones(m.Phones), MemberID: m.ID, Created: created})
	}
	st.members = append(st.members, m)
	st.memberByID[m.ID] = m
	if m.LoginEmail != "" {
		st.memberByEmail[m.LoginEmail] = m
	}
	st.memberByContact[m.ContactID] = m
	if st.ownerID == "" {
		st.ownerID = m.ID
	}
	return m
}

// AddMember adds a site member (and its contact) and returns it. The first
// member of an empty site becomes the site owner.
func (st *Site) AddMember(ms MemberSeed) Member {
	st.mu.Lock()
	defer st.mu.Unlock()
	return *st.addMemberLocked(ms, st.now())
}

// AddContact adds a contact that is not a member and returns its id.
func (st *Site) AddContact(cs ContactSeed) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	id := cs.ID
	if id == "" {
		id = st.newID()
	}
	st.indexContact(&Contact{ID: id, FirstName: cs.FirstName, LastName: cs.LastName,
		Emails: contactEmails(cs.Emails), Phones: contactPhones(cs.Phones), Created: st.now()})
	return id
}

// Members returns a copy of all members in creation order.
func (st *Site) Members() []Member {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]Member, len(st.members))
	for i, m := range st.members {
		out[i] = *m
	}
	return out
}

// Member returns one member by id.
func (st *Site) Member(id string) (Member, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	m, ok := st.memberByID[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Contacts returns a copy of all contacts in creation order.
func (st *Site) Contacts() []Contact {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]Contact, len(st.contacts))
	for i, c := range st.contacts {
		out[i] = *c
	}
	return out
}

// ---- subscriptions ----

func (st *Site) upsertSubLocked(email, status, deliverability string, at time.Time) *Subscription {
	k := strings.ToLower(strings.TrimSpace(email))
	s, ok := st.subs[k]
	if !ok {
		s = &Subscription{ID: st.newID(), Email: k, SubscriptionStatus: "NOT_SET", DeliverabilityStatus: "NOT_SET", CreatedDate: at}
		st.subs[k] = s
		st.subByID[s.ID] = s
	}
	if status != "" {
		s.SubscriptionStatus = status
	}
	if deliverability != "" {
		s.DeliverabilityStatus = deliverability
	}
	s.UpdatedDate = at
	return s
}

// SetSubscription creates or updates the subscription record of email.
// An empty status deletes the record (the email then has no record at all).
func (st *Site) SetSubscription(email, status string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if status == "" {
		k := strings.ToLower(email)
		if s, ok := st.subs[k]; ok {
			delete(st.subByID, s.ID)
			delete(st.subs, k)
		}
		return
	}
	st.upsertSubLocked(email, status, "", st.now())
}

// Subscription returns the subscription status of email, ok=false when the
// email has no record.
func (st *Site) Subscription(email string) (status string, ok bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.subs[strings.ToLower(email)]
	if !ok {
		return "", false
	}
	return s.SubscriptionStatus, true
}

// ---- groups (callers hold st.mu) ----

func (st *Site) uniqueGroupSlug(name string, self *group) string {
	base := kebab(name)
	if base == "" {
		base = "group"
	}
	slug := base
	for i := 1; ; i++ {
		if g, ok := st.groupBySlug[slug]; !ok || g == self {
			return slug
		}
		slug = base + "-" + strconv.Itoa(i)
	}
}

func (st *Site) setSlugLocked(g *group) {
	if g.Slug != "" && st.groupBySlug[g.Slug] == g {
		delete(st.groupBySlug, g.Slug)
	}
	if g.PrivacyStatus == "SECRET" {
		g.Slug = newUUID(st.rng)[:8] + "-" + newUUID(st.rng)[:4]
	} else {
		g.Slug = st.uniqueGroupSlug(g.Name, g)
	}
	st.groupBySlug[g.Slug] = g
}

func defaultSettings() map[string]any {
	return map[string]any{
		"welcomeMemberPostEnabled":       true,
		"groupDetailsChangedPostEnabled": true,
		"showMemberList":                 true,
		"aiSpamProtectionEnabled":        true,
		"allowedToInviteMembers":         "OWNER_AND_ADMINS",
		"allowedToApproveJoinRequests":   "OWNER_AND_ADMINS",
	}
}

// createGroupLocked creates a group; creatorID (or the site owner) becomes
// its ADMIN.
func (st *Site) createGroupLocked(g Group, creatorID string, at time.Time) *group {
	st.seq++
	g.ID = st.newID()
	if g.PrivacyStatus == "" || g.PrivacyStatus == "UNKNOWN" {
		g.PrivacyStatus = "PUBLIC"
	}
	if g.Settings == nil {
		g.Settings = defaultSettings()
	}
	g.CreatedDate, g.UpdatedDate, g.LastActivityDate = at, at, at
	if creatorID == "" {
		creatorID = st.ownerID
	}
	g.OwnerID = creatorID
	gr := newGroup(g, st.seq)
	st.setSlugLocked(gr)
	if creatorID != "" {
		st.joinLocked(gr, creatorID, "ADMIN", at)
	}
	gr.MembersCount = len(gr.entries)
	st.addGroupLocked(gr)
	return gr
}

// addGroupLocked appends g to the site's groups and indexes it by id and
// name (not by slug: setSlugLocked does).
func (st *Site) addGroupLocked(g *group) {
	st.groups = append(st.groups, g)
	st.groupByID[g.ID] = g
	st.groupsByName[g.Name] = append(st.groupsByName[g.Name], g)
}

// renameGroupLocked sets g's name and keeps the name index.
func (st *Site) renameGroupLocked(g *group, name string) {
	st.unindexNameLocked(g)
	g.Name = name
	st.groupsByName[name] = append(st.groupsByName[name], g)
}

func (st *Site) unindexNameLocked(g *group) {
	gs := slices.DeleteFunc(st.groupsByName[g.Name], func(x *group) bool { return x == g })
	if len(gs) == 0 {
		delete(st.groupsByName, g.Name)
	} else {
		st.groupsByName[g.Name] = gs
	}
}

// joinLocked appends a membership; it returns nil when already a member.
func (st *Site) joinLocked(g *group, memberID, role string, at time.Time) *GroupMember {
	if _, ok := g.index[memberID]; ok {
		return nil
	}
	if n := len(g.entries); n > 0 && at.Before(g.entries[n-1].JoinedDate) {
		at = g.entries[n-1].JoinedDate // keep entries sorted by joinedDate
	}
	gm := &GroupMember{MemberID: memberID, Role: role, JoinedDate: at}
	g.entries = append(g.entries, gm)
	g.index[memberID] = gm
	g.MembersCount = len(g.entries)
	return gm
}

func (st *Site) addGroupMembersLocked(g *group, ids []string, at time.Time) []GroupMember {
	var added []GroupMember
	for _, id := range ids {
		if gm := st.joinLocked(g, id, "MEMBER", at); gm != nil {
			added = append(added, *gm)
		}
	}
	if len(added) > 0 {
		g.LastActivityDate = at
	}
	return added
}

func (st *Site) removeGroupMembersLocked(g *group, ids []string, at time.Time) int {
	drop := map[string]bool{}
	for _, id := range ids {
		if _, ok := g.index[id]; ok {
			drop[id] = true
			delete(g.index, id)
		}
	}
	if len(drop) == 0 {
		return 0
	}
	g.entries = slices.DeleteFunc(g.entries, func(gm *GroupMember) bool { return drop[gm.MemberID] })
	g.MembersCount = len(g.entries)
	g.LastActivityDate = at
	return len(drop)
}

func (st *Site) deleteGroupLocked(g *group) {
	delete(st.groupByID, g.ID)
	st.unindexNameLocked(g)
	if st.groupBySlug[g.Slug] == g {
		delete(st.groupBySlug, g.Slug)
	}
	st.groups = slices.DeleteFunc(st.groups, func(x *group) bool { return x == g })
}

// AddGroup creates a group named name with the given privacy ("" = PUBLIC).
// The first member id (or, with none, the site owner) becomes its ADMIN; the
// other ids join as MEMBERs.
func (st *Site) AddGroup(name, privacy string, memberIDs ...string) Group {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	creator := ""
	if len(memberIDs) > 0 {
		creator = memberIDs[0]
		memberIDs = memberIDs[1:]
	}
	g := st.createGroupLocked(Group{Name: name, PrivacyStatus: privacy}, creator, now)
	for _, id := range memberIDs {
		st.joinLocked(g, id, "MEMBER", now)
	}
	return g.Group
}

// Groups returns all (not deleted) groups in creation order.
func (st *Site) Groups() []Group {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]Group, len(st.groups))
	for i, g := range st.groups {
		out[i] = g.Group
	}
	return out
}

// Group returns one group by id.
func (st *Site) Group(id string) (Group, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, ok := st.groupByID[id]
	if !ok {
		return Group{}, false
	}
	return g.Group, true
}

// GroupsByName returns the groups whose name equals name (names need not be
// unique; slugs are).
func (st *Site) GroupsByName(name string) []Group {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []Group
	for _, g := range st.groupsByName[name] {
		out = append(out, g.Group)
	}
	return out
}

// GroupMemberIDs returns the member ids of a group in join order.
func (st *Site) GroupMemberIDs(groupID string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, ok := st.groupByID[groupID]
	if !ok {
		return nil
	}
	out := make([]string, len(g.entries))
	for i, e := range g.entries {
		out[i] = e.MemberID
	}
	return out
}

// GroupMembers returns the memberships of a group in join order.
func (st *Site) GroupMembers(groupID string) []GroupMember {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, ok := st.groupByID[groupID]
	if !ok {
		return nil
	}
	out := make([]GroupMember, len(g.entries))
	for i, e := range g.entries {
		out[i] = *e
	}
	return out
}

// AddToGroup adds members (role MEMBER) to a group; existing members are kept.
func (st *Site) AddToGroup(groupID string, ids ...string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.groupByID[groupID]; ok {
		st.addGroupMembersLocked(g, ids, st.now())
	}
}

// inviteLocked records an invitation of memberID to g (callers hold st.mu).
func (st *Site) inviteLocked(g *group, memberID string, at time.Time) {
	if g.invited == nil {
		g.invited = map[string]time.Time{}
	}
	if _, ok := g.invited[memberID]; !ok {
		g.invited[memberID] = at
	}
}

// Invited returns the ids of the members invited to a group who have not
// accepted yet, sorted.
func (st *Site) Invited(groupID string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, ok := st.groupByID[groupID]
	if !ok {
		return nil
	}
	var out []string
	for id := range g.invited {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// AcceptInvitation makes an invited member join the group (as a member who
// accepted the invitation would); it reports whether there was an invitation.
func (st *Site) AcceptInvitation(groupID, memberID string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	g, ok := st.groupByID[groupID]
	if !ok {
		return false
	}
	if _, ok := g.invited[memberID]; !ok {
		return false
	}
	delete(g.invited, memberID)
	st.joinLocked(g, memberID, "MEMBER", st.now())
	return true
}

// RemoveFromGroup removes members from a group.
func (st *Site) RemoveFromGroup(groupID string, ids ...string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.groupByID[groupID]; ok {
		st.removeGroupMembersLocked(g, ids, st.now())
	}
}

// ---- questions, answers, rules ----

func (st *Site) setQuestionsLocked(g *group, qs []Question) []Question {
	old := map[string]bool{}
	for _, q := range g.questions {
		old[q.ID] = true
	}
	out := make([]Question, len(qs))
	keep := map[string]bool{}
	for i, q := range qs {
		if q.ID == "" || !old[q.ID] || keep[q.ID] {
			q.ID = st.newID()
		}
		keep[q.ID] = true
		out[i] = q
	}
	g.questions = out
	// Answers to questions that no longer exist are dropped.
	g.answers = slices.DeleteFunc(g.answers, func(ma *MemberAnswers) bool {
		ma.Answers = slices.DeleteFunc(ma.Answers, func(a Answer) bool { return !keep[a.QuestionID] })
		if len(ma.Answers) == 0 {
			delete(g.answerIdx, ma.MemberID)
			return true
		}
		return false
	})
	return slices.Clone(out)
}

// SetQuestions replaces the membership questions of a group with the given
// texts (none required) and returns them with their new ids.
func (st *Site) SetQuestions(groupID string, texts ...string) []Question {
	st.mu.Lock()
	defer st.mu.Unlock()
	g, ok := st.groupByID[groupID]
	if !ok {
		return nil
	}
	qs := make([]Question, len(texts))
	for i, t := range texts {
		qs[i] = Question{Text: t}
	}
	return st.setQuestionsLocked(g, qs)
}

// Questions returns the membership questions of a group.
func (st *Site) Questions(groupID string) []Question {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if g, ok := st.groupByID[groupID]; ok {
		return slices.Clone(g.questions)
	}
	return nil
}

func (st *Site) setAnswerLocked(g *group, memberID, questionID, text string) {
	ma, ok := g.answerIdx[memberID]
	if !ok {
		ma = &MemberAnswers{MemberID: memberID}
		g.answerIdx[memberID] = ma
		g.answers = append(g.answers, ma)
	}
	for i := range ma.Answers {
		if ma.Answers[i].QuestionID == questionID {
			ma.Answers[i].Text = text
			return
		}
	}
	ma.Answers = append(ma.Answers, Answer{QuestionID: questionID, Text: text})
}

// SetAnswer records memberID's answer to a membership question of a group.
func (st *Site) SetAnswer(groupID, memberID, questionID, text string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.groupByID[groupID]; ok {
		st.setAnswerLocked(g, memberID, questionID, text)
	}
}

// Rules returns the rules of a group (empty, not nil, for a group without rules).
func (st *Site) Rules(groupID string) []Rule {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if g, ok := st.groupByID[groupID]; ok && g.rules != nil {
		return slices.Clone(g.rules)
	}
	return []Rule{}
}

// SetRules replaces the rules of a group.
func (st *Site) SetRules(groupID string, rules []Rule) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if g, ok := st.groupByID[groupID]; ok {
		g.rules = slices.Clone(rules)
	}
}

// Reset wipes the site and reseeds it with the given numbers of members and
// groups (Reset(0, 0) leaves an empty site). Seeding is deterministic.
func (st *Site) Reset(members, groups int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.wipe()
	st.seedLocked(members, groups)
}
