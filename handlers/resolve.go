package handlers

import (
	"context"
	"sort"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"groupflow/internal/wix"
	"groupflow/messages"
)

// Roster resolution: rows of ProvisionGroup.People to site member ids, with
// the fewest Wix calls, every query batch checkpointed.
//
// Calls, for e distinct emails, c distinct contact ids, p distinct phones
// matching q contacts, and k distinct names on a site of M members:
//   - emails: ⌈e/100⌉ Query Members {"loginEmail": {"$in": [...]}};
//   - phones: ⌈p/100⌉ Contacts queries {"info.phones.e164Phone": {"$in": [E.164...]}}
//     (phone is not filterable in Members), and the contacts found join the
//     contact-id batches;
//   - contact ids: ⌈(c+q)/100⌉ Query Members {"contactId": {"$in": [...]}};
//   - names: Members filters are accent-sensitive, so names are matched
//     client-side (nickname, or first + last name, folded), either by reading
//     every member (⌈M/100⌉ pages, FULL fieldset) or by one Members search
//     per name (its longest word, on nickname, first and last name; Wix's
//     search ignores case and accents), whichever is cheaper. With k ≥ 2
//     names the first page of the scan is read to learn M, and the scan goes
//     on when its ⌈M/100⌉−1 remaining pages cost no more than k searches;
//     a single name is searched directly. A search returning more than 100
//     members costs extra pages; when those would make the searches dearer
//     than the rest of the scan, the scan takes over. Names thus cost
//     min(⌈M/100⌉, k+1) calls when each search fits one page (k for k = 1).

// Detail texts of RowOutcome (no personal data).
const (
	detailUnparsablePhone = "phone number cannot be parsed"
	detailNoMemberEmail   = "no site member with this login email"
	detailNoMemberContact = "no site member with this contact id"
	detailNoContactPhone  = "no contact with this phone number"
	detailPhoneNotMember  = "contacts with this phone number are not site members"
	detailNoMemberName    = "no site member with this name"
	detailAmbiguousName   = "several site members have this name"
	detailAmbiguousPhone  = "several site members have this phone number"
)

// rowResult is the resolution of one roster row: MemberID, or Reason.
type rowResult struct {
	MemberID   string
	Reason     string
	Detail     string
	Candidates int
}

// resolver resolves a roster on one site.
type resolver struct {
	site   *wix.Site
	region string
}

// rowKey is a row's identifier, normalised.
type rowKey struct {
	kind, key string
}

// nameMatch is the members matching one folded name.
type nameMatch struct {
	// IDs holds up to two matching member ids.
	IDs []string `json:"ids,omitempty"`
	// N counts the matching members.
	N int `json:"n"`
}

// resolve returns one result per row, and the resolved member ids in
// roster order, each once (a later row of the same member is a duplicate).
// Its steps: classify the rows, look their keys up, assign the members.
func (r *resolver) resolve(ctx context.Context, people []messages.Person) ([]rowResult, []string, error) {
	rk := r.classify(people)
	lk, err := r.lookup(ctx, rk)
	if err != nil {
		return nil, nil, err
	}
	return rk.results, lk.assign(rk.results, rk.keys, people), nil
}

// rosterKeys is a roster classified: each row's key (or, in results, why
// the row is invalid), and the distinct keys of each kind in roster order.
type rosterKeys struct {
	results                     []rowResult
	keys                        []rowKey
	emails, phones, cids, names []string
	// nameToken maps each folded name to its search token.
	nameToken map[string]string
}

// classify normalises each row's identifier, without Wix calls.
func (r *resolver) classify(people []messages.Person) *rosterKeys {
	rk := &rosterKeys{results: make([]rowResult, len(people)), keys: make([]rowKey, len(people)), nameToken: map[string]string{}}
	seen := map[rowKey]bool{}
	for i, p := range people {
		k, invalid := r.rowKey(p)
		if invalid != "" {
			rk.results[i] = rowResult{Reason: messages.ReasonInvalid, Detail: invalid}
			continue
		}
		if _, ok := rk.nameToken[k.key]; k.kind == messages.KindName && !ok {
			rk.nameToken[k.key] = searchToken(p.FullName())
		}
		rk.keys[i] = k
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k.kind {
		case messages.KindEmail:
			rk.emails = append(rk.emails, k.key)
		case messages.KindContactID:
			rk.cids = append(rk.cids, k.key)
		case messages.KindPhone:
			rk.phones = append(rk.phones, k.key)
		case messages.KindName:
			rk.names = append(rk.names, k.key)
		}
	}
	return rk
}

// rowKey returns a row's normalised key, or why the row is invalid.
func (r *resolver) rowKey(p messages.Person) (rowKey, string) {
	if prob := p.Problem(); prob != "" {
		return rowKey{}, prob
	}
	switch kind := p.Kind(); kind {
	case messages.KindEmail:
		return rowKey{kind, strings.ToLower(strings.TrimSpace(p.Email))}, ""
	case messages.KindContactID:
		return rowKey{kind, strings.TrimSpace(p.ContactID)}, ""
	case messages.KindPhone:
		e164, ok := normalizePhone(p.Phone, r.region)
		if !ok {
			return rowKey{}, detailUnparsablePhone
		}
		return rowKey{kind, e164}, ""
	case messages.KindName:
		return rowKey{kind, foldName(p.FullName())}, ""
	}
	return rowKey{}, ""
}

// lookups holds the answers to a roster's queries.
type lookups struct {
	byEmail, byContact map[string]string
	byPhone            map[string][]string
	byName             map[string]nameMatch
}

// lookup queries Wix for the roster's keys: emails, phones, contact ids
// (those of the rows and the contacts found by phone), names.
func (r *resolver) lookup(ctx context.Context, rk *rosterKeys) (*lookups, error) {
	lk := &lookups{}
	var err error
	lk.byEmail, err = batched(ctx, rk.emails, func(ctx context.Context, chunk []string) (map[string]string, error) {
		return r.membersBy(ctx, "loginEmail", chunk, func(m wix.Member) string { return strings.ToLower(m.LoginEmail) })
	})
	if err != nil {
		return nil, err
	}
	if lk.byPhone, err = batched(ctx, rk.phones, r.contactsByPhone); err != nil {
		return nil, err
	}
	// Contacts found by phone are looked up with the contact-id rows.
	cids := rk.cids
	cidSeen := make(map[string]bool, len(cids))
	for _, c := range cids {
		cidSeen[c] = true
	}
	for _, ph := range rk.phones {
		for _, c := range lk.byPhone[ph] {
			if !cidSeen[c] {
				cidSeen[c] = true
				cids = append(cids, c)
			}
		}
	}
	lk.byContact, err = batched(ctx, cids, func(ctx context.Context, chunk []string) (map[string]string, error) {
		return r.membersBy(ctx, "contactId", chunk, func(m wix.Member) string { return m.ContactID })
	})
	if err != nil {
		return nil, err
	}
	if lk.byName, err = r.names(ctx, rk.names, rk.nameToken); err != nil {
		return nil, err
	}
	return lk, nil
}

// assign sets the result of each valid row (results[i] with no Reason) from
// the lookups and returns the resolved member ids in roster order, each
// once: a later row of the same member is a duplicate (its detail names the
// first row, 1-based, and that row's ref).
func (lk *lookups) assign(results []rowResult, keys []rowKey, people []messages.Person) []string {
	var ids []string
	firstRow := map[string]int{}
	for i := range results {
		if results[i].Reason != "" {
			continue
		}
		res := lk.member(keys[i])
		if res.MemberID != "" {
			if j, dup := firstRow[res.MemberID]; dup {
				res = rowResult{Reason: messages.ReasonDuplicate, Detail: duplicateDetail(j, people[j].Ref)}
			} else {
				firstRow[res.MemberID] = i
				ids = append(ids, res.MemberID)
			}
		}
		results[i] = res
	}
	return ids
}

// member returns the member of a row's key, or why there is none.
func (lk *lookups) member(k rowKey) rowResult {
	switch k.kind {
	case messages.KindEmail:
		if id := lk.byEmail[k.key]; id != "" {
			return rowResult{MemberID: id}
		}
		return rowResult{Reason: messages.ReasonNotFound, Detail: detailNoMemberEmail}
	case messages.KindContactID:
		if id := lk.byContact[k.key]; id != "" {
			return rowResult{MemberID: id}
		}
		return rowResult{Reason: messages.ReasonNotFound, Detail: detailNoMemberContact}
	case messages.KindPhone:
		contacts := lk.byPhone[k.key]
		var found []string
		for _, c := range contacts {
			if id := lk.byContact[c]; id != "" && !hasString(found, id) {
				found = append(found, id)
			}
		}
		switch {
		case len(contacts) == 0:
			return rowResult{Reason: messages.ReasonNotFound, Detail: detailNoContactPhone}
		case len(found) == 0:
			return rowResult{Reason: messages.ReasonNotFound, Detail: detailPhoneNotMember}
		case len(found) > 1:
			return rowResult{Reason: messages.ReasonAmbiguous, Detail: detailAmbiguousPhone, Candidates: len(found)}
		}
		return rowResult{MemberID: found[0]}
	case messages.KindName:
		m := lk.byName[k.key]
		switch {
		case m.N == 0:
			return rowResult{Reason: messages.ReasonNotFound, Detail: detailNoMemberName}
		case m.N > 1:
			return rowResult{Reason: messages.ReasonAmbiguous, Detail: detailAmbiguousName, Candidates: m.N}
		}
		return rowResult{MemberID: m.IDs[0]}
	}
	return rowResult{}
}

func hasString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// batched looks keys up in batches of wix.MaxInValues with query, which
// returns a value for the keys it found (the zero value for the others).
// Nothing is checkpointed: the lookups are reads, and a redelivery simply
// asks again.
func batched[T any](ctx context.Context, keys []string, query func(context.Context, []string) (map[string]T, error)) (map[string]T, error) {
	out := make(map[string]T, len(keys))
	for _, chunk := range wix.Chunk(keys, wix.MaxInValues) {
		got, err := query(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for _, key := range chunk {
			out[key] = got[key]
		}
	}
	return out, nil
}

// membersBy queries the members whose field is in values and maps each
// member's key(m) to its id.
func (r *resolver) membersBy(ctx context.Context, field string, values []string, key func(wix.Member) string) (map[string]string, error) {
	out := make(map[string]string, len(values))
	q := wix.MembersQuery{
		Filter:    map[string]any{field: map[string]any{"$in": values}},
		Paging:    &wix.Paging{Limit: wix.MaxPageSize},
		Fieldsets: []string{wix.FieldsetExtended}, // loginEmail is not in PUBLIC
	}
	idle := newIdlePages("query members by " + field)
	for page, err := range r.site.MemberPages(ctx, q) {
		if err != nil {
			return nil, err
		}
		for _, m := range page.Members {
			if k := key(m); k != "" && out[k] == "" {
				out[k] = m.ID
			}
		}
		if err := idle.page(len(page.Members), func(i int) string { return page.Members[i].ID }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// contactsByPhone maps each E.164 phone to the ids of the contacts having it.
func (r *resolver) contactsByPhone(ctx context.Context, phones []string) (map[string][]string, error) {
	want := make(map[string]bool, len(phones))
	for _, p := range phones {
		want[p] = true
	}
	out := make(map[string][]string, len(phones))
	// info.phones.phone holds the number as entered; the E.164 form is the
	// separate filterable field info.phones.e164Phone (internal/wix/README.md).
	filter := map[string]any{wix.FieldContactE164Phone: map[string]any{"$in": phones}}
	idle := newIdlePages("query contacts by phone")
	for offset := 0; ; {
		page, err := r.site.QueryContacts(ctx, wix.Query{Filter: filter, Paging: &wix.Paging{Limit: wix.MaxPageSize, Offset: offset}})
		if err != nil {
			return nil, err
		}
		for _, c := range page.Contacts {
			for _, ph := range c.Phones {
				if e, ok := normalizePhone(ph, r.region); ok && want[e] && !hasString(out[e], c.ID) {
					out[e] = append(out[e], c.ID)
				}
			}
		}
		// A counted total decides, so a Wix serving fewer than 100 a page is
		// read to its total; without one, a short page is the last.
		n := len(page.Contacts)
		offset += n
		if !wix.MorePages(n, wix.MaxPageSize, offset, page.Metadata) {
			return out, nil
		}
		if err := idle.page(n, func(i int) string { return page.Contacts[i].ID }); err != nil {
			return nil, err
		}
	}
}

// names resolves folded names (not checkpointed: reads only), by a scan of every member or one search per name, whichever is cheaper
// (see the costs above).
func (r *resolver) names(ctx context.Context, names []string, token map[string]string) (map[string]nameMatch, error) {
	out := map[string]nameMatch{}
	if len(names) == 0 {
		return out, nil
	}
	m := newNameMatcher(names)
	scanLeft, scanAt := -1, 0
	if len(names) >= 2 {
		left, at, done, err := r.probeScan(ctx, m, len(names))
		if err != nil {
			return nil, err
		}
		if done {
			return m.out, nil
		}
		scanLeft, scanAt = left, at
	}
	if err := r.searchNames(ctx, m, names, token, scanLeft, scanAt); err != nil {
		return nil, err
	}
	return m.out, nil
}

// nameMatcher counts the members matching each wanted folded name.
type nameMatcher struct {
	want map[string]bool
	seen map[string]map[string]bool
	out  map[string]nameMatch
}

func newNameMatcher(names []string) *nameMatcher {
	m := &nameMatcher{want: make(map[string]bool, len(names)), seen: map[string]map[string]bool{}, out: map[string]nameMatch{}}
	for _, n := range names {
		m.want[n] = true
	}
	return m
}

// match counts member mb for the wanted names its nickname or "first last"
// folds to (only that name when only is set), once per member and name.
func (m *nameMatcher) match(mb wix.Member, only string) {
	keys := []string{foldName(mb.Profile.Nickname), foldName(strings.TrimSpace(mb.Contact.FirstName) + " " + strings.TrimSpace(mb.Contact.LastName))}
	for _, k := range keys {
		if k == "" || !m.want[k] || (only != "" && k != only) {
			continue
		}
		if m.seen[k] == nil {
			m.seen[k] = map[string]bool{}
		}
		if m.seen[k][mb.ID] {
			continue
		}
		m.seen[k][mb.ID] = true
		nm := m.out[k]
		nm.N++
		if len(nm.IDs) < 2 {
			nm.IDs = append(nm.IDs, mb.ID)
		}
		m.out[k] = nm
	}
}

// nameScanQuery is the page at offset of a scan of every member.
func nameScanQuery(offset int) wix.MembersQuery {
	return wix.MembersQuery{
		Sorting:   []wix.Sort{{FieldName: "createdDate", Order: "ASC"}},
		Paging:    &wix.Paging{Limit: wix.MaxPageSize, Offset: offset},
		Fieldsets: []string{wix.FieldsetFull},
	}
}

// scanFrom matches every member from offset on.
func (r *resolver) scanFrom(ctx context.Context, m *nameMatcher, offset int) error {
	idle := newIdlePages("scan members")
	for page, err := range r.site.MemberPages(ctx, nameScanQuery(offset)) {
		if err != nil {
			return err
		}
		for _, mb := range page.Members {
			m.match(mb, "")
		}
		if err := idle.page(len(page.Members), func(i int) string { return page.Members[i].ID }); err != nil {
			return err
		}
	}
	return nil
}

// probeScan reads the first page of a scan, which tells the site's size,
// and finishes the scan (done) when the page was the whole site or the
// remaining pages cost no more than the k searches. Otherwise it returns
// the pages the scan still needs, -1 when the site's size is unknown, and
// the offset the scan goes on from (the first page's length). As in
// offset paging (wix MorePages), a counted total decides whether the first
// page was the whole site: a Wix serving fewer than 100 a page has more
// after a short first page when its total says so; without a total, a
// short page is the whole site.
func (r *resolver) probeScan(ctx context.Context, m *nameMatcher, k int) (left, next int, done bool, _ error) {
	first, err := r.site.QueryMembers(ctx, nameScanQuery(0))
	if err != nil {
		return 0, 0, false, err
	}
	for _, mb := range first.Members {
		m.match(mb, "")
	}
	md, n := first.Metadata, len(first.Members)
	counted := md.Total > 0 && !md.TooManyToCount
	switch {
	case n == 0 || (counted && n >= md.Total) || (!counted && n < wix.MaxPageSize) || (!md.TooManyToCount && md.Total <= 0):
		return 0, 0, true, nil // the first page was the whole site
	case !counted:
		return -1, n, false, nil
	}
	left = (md.Total - n + wix.MaxPageSize - 1) / wix.MaxPageSize
	if left <= k {
		return 0, 0, true, r.scanFrom(ctx, m, n)
	}
	return left, n, false, nil
}

// searchNames runs one search per name; results are matched exactly
// client-side. When a search returns so many members that finishing the
// searches would cost more than the rest of the scan (scanLeft pages; -1:
// no probe), it scans instead, from scanAt (where the probe's first page
// ended).
func (r *resolver) searchNames(ctx context.Context, m *nameMatcher, names []string, token map[string]string, scanLeft, scanAt int) error {
	for i, n := range names {
		q := wix.MembersQuery{
			Search:    &wix.MembersSearch{Expression: token[n], Fields: []string{"profile.nickname", "contact.firstName", "contact.lastName"}},
			Paging:    &wix.Paging{Limit: wix.MaxPageSize},
			Fieldsets: []string{wix.FieldsetFull},
		}
		firstPage := true
		idle := newIdlePages("search members")
		for page, err := range r.site.MemberPages(ctx, q) {
			if err != nil {
				return err
			}
			if err := idle.page(len(page.Members), func(i int) string { return page.Members[i].ID }); err != nil {
				return err
			}
			if firstPage && scanLeft >= 0 {
				firstPage = false
				more := (page.Metadata.Total+wix.MaxPageSize-1)/wix.MaxPageSize - 1
				if page.Metadata.TooManyToCount || more+len(names)-i-1 > scanLeft {
					return r.scanFrom(ctx, m, scanAt)
				}
			}
			for _, mb := range page.Members {
				m.match(mb, n)
			}
		}
	}
	return nil
}

// searchToken is the longest word of a name (at most 100 characters, the
// search limit): every member whose nickname or "first last" equals the name
// contains it.
func searchToken(name string) string {
	best := ""
	for _, w := range strings.Fields(name) {
		if len([]rune(w)) > len([]rune(best)) {
			best = w
		}
	}
	if r := []rune(best); len(r) > 100 {
		best = string(r[:100])
	}
	return best
}

var foldSpecial = strings.NewReplacer("ø", "o", "Ø", "o", "ł", "l", "Ł", "l", "æ", "ae", "Æ", "ae", "đ", "d", "Đ", "d", "ı", "i", "’", "'", "‘", "'")

// foldName makes names comparable case- and accent-insensitively: accents
// removed (NFD, marks stripped), case folded, whitespace collapsed.
// foldName("  José   GARCÍA ") == foldName("jose garcia").
func foldName(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, foldSpecial.Replace(s))
	if err != nil {
		out = s
	}
	out = cases.Fold().String(out)
	return strings.Join(strings.Fields(out), " ")
}

// normalizePhone returns the E.164 form of a phone number, parsed with the
// default region when it has no country code; false when it cannot be
// parsed or is not a possible number.
func normalizePhone(s, region string) (string, bool) {
	if region == "" {
		region = "US"
	}
	n, err := phonenumbers.Parse(strings.TrimSpace(s), strings.ToUpper(region))
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// sortedOutcomes orders row outcomes by row.
func sortedOutcomes(rows []messages.RowOutcome) []messages.RowOutcome {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Row < rows[j].Row })
	return rows
}

// errorDetail shortens an error for an event's reason/detail field.
func errorDetail(err error) string {
	s := err.Error()
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
