package wixsim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	firstNames = []string{"Zoë", "José", "Chloé", "Björn", "Renée", "Łukasz", "François", "Siobhán", "Noémie", "Maria",
		"John", "Emma", "Liam", "Olivia", "Noah", "Ava", "Sophia", "Mia", "Lucas", "Amelia", "Ethan", "Isabella",
		"James", "Charlotte", "Benjamin", "Harper", "Elijah", "Evelyn", "Daniel", "Abigail", "Matteo", "Sofía",
		"Mohammed", "Fatima", "Yuki", "Hiroshi", "Priya", "Arjun", "Ana", "João", "Ingrid", "Søren", "Dmitri",
		"Olga", "Aoife", "Seán", "Camille", "Théo", "Lena", "Jürgen", "Mei", "Wei", "Grace", "Samuel", "Nora",
		"David", "Sarah", "Michael", "Laura", "Chris"}
	lastNames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martínez",
		"Rodríguez", "Müller", "Schmidt", "Dubois", "Lefèvre", "Rossi", "Russo", "Kowalski", "Nowak", "Ó Briain",
		"O'Connor", "Nguyen", "Kim", "Tanaka", "Sato", "Patel", "Singh", "Cohen", "Levi", "Silva", "Santos",
		"Andersson", "Johansson", "Jensen", "Novák", "Horváth", "Papadopoulos", "Yılmaz", "Ivanova", "Wilson",
		"Taylor", "Thomas", "Moore", "Martin", "Lee", "Clark", "Lewis", "Walker", "Hall", "Young", "King"}
	handles    = []string{"zumba_queen", "yogi", "runner42", "pilates_fan", "coach", "spin_doctor", "bookworm", "hot_yoga_girl", "barre_none", "tai_chi_master"}
	domains    = []string{"example.com", "example.org", "example.net", "mail.example.com"}
	workDoms   = []string{"company.example", "studio.example", "work.example.org"}
	activities = []string{"Yoga", "Hot Yoga", "Pilates", "Zumba", "Spinning", "Running Club", "Book Club", "Boxing",
		"Barre", "Tai Chi", "Aqua Fit", "HIIT", "Salsa", "Meditation", "Café Crème Lovers", "Parents & Toddlers",
		"CrossFit", "Climbing", "Swim Team", "Photography", "Reformer Pilates", "Kundalini Yoga"}
	qualifiers = []string{"Monday", "Tuesday Evening", "Beginners", "Advanced", "Seniors", "Morning Crew",
		"Weekend Warriors", "Moms", "Studio B", "Downtown", "Lunchtime", "Friday"}
	questionPool = []string{"What brings you to this group?", "Which classes do you enjoy most?",
		"How did you hear about us?", "Any injuries we should know about?", "What are your goals for this season?"}
	answerPool = []string{"I love pilates and hot yoga", "Zumba, spinning", "A friend told me about it",
		"Instagram", "Looking to meet new people", "Yoga after work helps me relax", "Hot yoga!!",
		"pilates reformer, barre", "Getting back in shape after my knee surgery", "Spinning and HIIT",
		"My doctor recommended it", "Run a half marathon", "Meditation and tai chi", "Salsa on fridays",
		"Flyer at the café", "Lose weight, feel better", "none", "Aqua fit with my mom"}
	rulePool = []Rule{
		{Title: "Be kind and respectful", Description: "Treat everyone with respect. Healthy debates are natural, but kindness is required."},
		{Title: "No spam or self-promotion", Description: "Give more than you take. Self-promotion and irrelevant links aren't allowed."},
		{Title: "Respect everyone's privacy", Description: "What's shared in the group should stay in the group."},
		{Title: "Book classes in advance", Description: "Please reserve your spot at least 24 hours before class."},
		{Title: "No hate speech or bullying", Description: "Make sure everyone feels safe."},
	}
)

// seedLocked fills an empty site deterministically: nMembers members with
// contacts and subscriptions, a tenth as many non-member contacts, nGroups
// groups with zipf-like sizes, questions, answers and rules. Dates are relative
// to the current day (UTC midnight), so a fixed clock gives identical data.
func (st *Site) seedLocked(nMembers, nGroups int) {
	r := st.rng
	anchor := st.now().UTC().Truncate(24 * time.Hour)
	day := 24 * time.Hour
	span := 730 * day
	start := anchor.Add(-span - 130*day)

	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(asciiFold(s)), " ", "") }
	foldedFirst := make([]string, len(firstNames))
	for i, f := range firstNames {
		foldedFirst[i] = fold(f)
	}
	foldedLast := make([]string, len(lastNames))
	for i, l := range lastNames {
		foldedLast[i] = strings.ReplaceAll(fold(l), "'", "")
	}
	if len(st.members) == 0 && nMembers > 1000 { // pre-size the indexes
		st.members = make([]*Member, 0, nMembers)
		st.memberByID = make(map[string]*Member, nMembers)
		st.memberByEmail = make(map[string]*Member, nMembers)
		st.memberByContact = make(map[string]*Member, nMembers)
		st.memberSlugs = make(map[string]bool, nMembers)
		st.contactByID = make(map[string]*Contact, nMembers*11/10)
		st.subs = make(map[string]*Subscription, nMembers)
		st.subByID = make(map[string]*Subscription, nMembers)
	}
	usedLocal := make(map[string]int, nMembers)
	phoneN := 0
	nextPhone := func() string {
		phoneN++
		n := phoneN
		if r.IntN(20) == 0 {
			return fmt.Sprintf("+44 20 7946 0%03d", n%1000)
		}
		area := 201 + (n/100)%700
		line := 100 + n%100
		switch r.IntN(3) {
		case 0:
			return fmt.Sprintf("+1 %d-555-%04d", area, line)
		case 1:
			return fmt.Sprintf("(%d) 555-%04d", area, line)
		}
		return fmt.Sprintf("+1%d555%04d", area, line)
	}

	var dupFirst, dupLast int
	for i := 0; i < nMembers; i++ {
		fi, li := r.IntN(len(firstNames)), r.IntN(len(lastNames))
		if i == 3 {
			dupFirst, dupLast = fi, li
		}
		if i > 3 && i%97 == 7 { // guaranteed duplicate full names
			fi, li = dupFirst, dupLast
		}
		first, last := firstNames[fi], lastNames[li]
		ms := MemberSeed{FirstName: first, LastName: last}
		switch x := r.IntN(10); {
		case x < 2:
			ms.Nickname = first
		case x < 3:
			ms.Nickname = handles[r.IntN(len(handles))]
		}
		if r.IntN(100) >= 3 || i == 0 { // ~3% of members have no email at all
			local := foldedFirst[fi] + "." + foldedLast[li]
			n := usedLocal[local]
			usedLocal[local] = n + 1
			if n > 0 {
				local += strconv.Itoa(n + 1)
			}
			ms.LoginEmail = local + "@" + domains[r.IntN(len(domains))]
			if r.IntN(100) < 15 {
				ms.Emails = []string{foldedFirst[fi] + "." + strconv.Itoa(i) + "@" + workDoms[r.IntN(len(workDoms))]}
			}
		}
		if r.IntN(10) < 7 {
			ms.Phones = []string{nextPhone()}
			if r.IntN(10) == 0 {
				ms.Phones = append(ms.Phones, nextPhone())
			}
		}
		ms.Private = r.IntN(100) < 8
		created := start.Add(time.Duration((float64(i) + r.Float64()) * float64(span) / float64(max(nMembers, 1)))).Truncate(time.Millisecond)
		m := st.addMemberLocked(ms, created)
		m.LastLoginDate = created.Add(time.Duration(r.Float64() * float64(anchor.Sub(created)))).Truncate(time.Millisecond)
		m.UpdatedDate = m.LastLoginDate
		switch x := r.IntN(100); {
		case x < 3:
			m.Status = "PENDING"
		case x < 4:
			m.Status = "BLOCKED"
		}
		if r.IntN(50) == 0 {
			m.ActivityStatus = "MUTED"
		}
		for j, e := range m.Emails {
			if j > 0 && r.IntN(2) == 0 {
				continue
			}
			x := r.IntN(100)
			status, deliv := "", "VALID"
			switch {
			case x < 10: // no record
				continue
			case x < 70:
				status = "SUBSCRIBED"
				if r.IntN(50) == 0 {
					deliv = "BOUNCED"
				}
			case x < 82:
				status, deliv = "NOT_SET", "NOT_SET"
			case x < 92:
				status = "UNSUBSCRIBED"
				if r.IntN(10) == 0 {
					deliv = "SPAM_COMPLAINT"
				}
			default:
				status, deliv = "PENDING", "NOT_SET"
			}
			st.upsertSubLocked(e, status, deliv, created)
		}
	}
	for i := 0; i < nMembers/10; i++ {
		cs := ContactSeed{FirstName: firstNames[r.IntN(len(firstNames))], LastName: lastNames[r.IntN(len(lastNames))]}
		if r.IntN(3) > 0 {
			cs.Emails = []string{"lead" + strconv.Itoa(i+1) + "@" + domains[r.IntN(len(domains))]}
		}
		if r.IntN(3) > 0 || len(cs.Emails) == 0 {
			cs.Phones = []string{nextPhone()}
		}
		c := &Contact{ID: st.newID(), FirstName: cs.FirstName, LastName: cs.LastName,
			Emails: contactEmails(cs.Emails), Phones: contactPhones(cs.Phones),
			Created: start.Add(time.Duration(r.Float64() * float64(span))).Truncate(time.Millisecond)}
		st.indexContact(c)
	}
	st.seedGroupsLocked(nGroups, anchor)
}

func (st *Site) seedGroupsLocked(nGroups int, anchor time.Time) {
	r := st.rng
	day := 24 * time.Hour
	nMembers := len(st.members)
	perm := make([]int, nMembers)
	for i := range perm {
		perm[i] = i
	}
	ranks := r.Perm(max(nGroups, 0))
	var names []string
	type tj struct {
		m *Member
		t time.Time
	}
	for gi := 0; gi < nGroups; gi++ {
		name := activities[r.IntN(len(activities))] + " " + qualifiers[r.IntN(len(qualifiers))]
		if gi == 9 && len(names) > 3 {
			name = names[3] // guaranteed duplicate group name (slugs differ)
		}
		names = append(names, name)
		privacy := "PUBLIC"
		switch x := r.IntN(10); {
		case x < 2:
			privacy = "PRIVATE"
		case x < 3:
			privacy = "SECRET"
		}
		created := anchor.Add(-time.Duration((125 + r.Float64()*600) * float64(day))).Truncate(time.Millisecond)
		last := anchor.Add(-time.Duration(r.Float64() * 120 * float64(day))).Truncate(time.Millisecond)
		size := int(math.Ceil(float64(nMembers) * 0.35 / math.Pow(float64(ranks[gi]+1), 1.07)))
		if r.IntN(4) == 0 {
			size = min(size, 1+r.IntN(12))
		}
		size = min(max(size, 1), nMembers)
		// partial Fisher-Yates: perm[:size] is a uniform sample
		for k := 0; k < size; k++ {
			j := k + r.IntN(nMembers-k)
			perm[k], perm[j] = perm[j], perm[k]
		}
		act := strings.SplitN(name, " ", 2)[0]
		g := Group{
			Name:          name,
			PrivacyStatus: privacy,
			Description:   fmt.Sprintf("Welcome to %s! We meet every week for %s, chat and support each other.", name, strings.ToLower(act)),
			Teaser:        "Join us for " + strings.ToLower(name),
			MemberTitle:   "Members",
		}
		creator := ""
		if size > 0 {
			creator = st.members[perm[0]].ID
		}
		st.seq++
		g.ID = st.newID()
		g.Settings = defaultSettings()
		g.OwnerID = creator
		g.CreatedDate, g.UpdatedDate = created, created
		gr := newGroup(g, st.seq)
		st.setSlugLocked(gr)
		joins := make([]tj, 0, size)
		for k := 1; k < size; k++ {
			m := st.members[perm[k]]
			t := created.Add(time.Duration(r.Float64() * float64(last.Sub(created)))).Truncate(time.Millisecond)
			if t.Before(m.CreatedDate) {
				t = m.CreatedDate
			}
			joins = append(joins, tj{m, t})
		}
		slices.SortFunc(joins, func(a, b tj) int { return a.t.Compare(b.t) })
		gr.entries = make([]*GroupMember, 0, size)
		if creator != "" {
			st.joinLocked(gr, creator, "ADMIN", created)
		}
		for _, j := range joins {
			role := "MEMBER"
			if r.IntN(60) == 0 {
				role = "ADMIN"
			}
			st.joinLocked(gr, j.m.ID, role, j.t)
		}
		gr.LastActivityDate = last
		if n := len(gr.entries); n > 0 && gr.entries[n-1].JoinedDate.After(last) {
			gr.LastActivityDate = gr.entries[n-1].JoinedDate
		}
		gr.MembersCount = len(gr.entries)
		if r.IntN(10) < 3 && size > 0 {
			nq := 1 + r.IntN(3)
			qs := make([]Question, nq)
			for q := range qs {
				qs[q] = Question{ID: st.newID(), Text: questionPool[(gi+q)%len(questionPool)], Required: q == 0}
			}
			gr.questions = qs
			for k := 0; k < min(size, 300); k++ {
				if r.IntN(2) == 0 {
					continue
				}
				for _, q := range qs {
					if q.Required || r.IntN(2) == 0 {
						st.setAnswerLocked(gr, gr.entries[k].MemberID, q.ID, answerPool[r.IntN(len(answerPool))])
					}
				}
			}
		}
		if r.IntN(10) < 4 {
			n := 2 + r.IntN(3)
			gr.rules = slices.Clone(rulePool[:n])
		}
		st.addGroupLocked(gr)
	}
}
