package wixsim

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ---- membership questions ----

func questionsJSON(qs []Question) []any {
	out := make([]any, 0, len(qs))
	for _, q := range qs {
		out = append(out, map[string]any{"id": q.ID, "required": q.Required, "text": q.Text})
	}
	return out
}

func listQuestions(st *Site, r *http.Request) (any, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"questions": questionsJSON(g.questions)}, nil
}

// replaceQuestions: PUT, at most 50 questions, text 1–300 chars. The server
// assigns ids; a sent id that matches an existing question is kept (so are
// its answers); answers to dropped questions are deleted.
func replaceQuestions(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Questions []Question `json:"questions"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.Questions) > 50 {
		return nil, fieldError("questions", "must contain at most 50 elements", "MAX_SIZE")
	}
	for i, q := range req.Questions {
		if n := utf8.RuneCountInString(q.Text); n < 1 || n > 300 {
			return nil, fieldError(fmt.Sprintf("questions[%d].text", i), "must be 1-300 characters", "MAX_LENGTH")
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"questions": questionsJSON(st.setQuestionsLocked(g, req.Questions))}, nil
}

// listAnswers: POST {memberIds? (≤500), paging? (limit ≤ 100, default 100)}.
// Members with no answers are not listed; questions holds only the questions
// answered in the returned page.
func listAnswers(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		MemberIDs []string `json:"memberIds"`
		Paging    paging   `json:"paging"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.MemberIDs) > 500 {
		return nil, fieldError("memberIds", "must contain at most 500 elements", "MAX_SIZE")
	}
	limit, offset, e := req.Paging.resolve("paging.", 100, 100)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	sel := g.answers
	if len(req.MemberIDs) > 0 {
		want := map[string]bool{}
		for _, id := range req.MemberIDs {
			want[id] = true
		}
		sel = nil
		for _, ma := range g.answers {
			if want[ma.MemberID] {
				sel = append(sel, ma)
			}
		}
	}
	qByID := map[string]Question{}
	for _, q := range g.questions {
		qByID[q.ID] = q
	}
	lo, hi := pageBounds(len(sel), limit, offset)
	out := make([]any, 0, hi-lo)
	used := map[string]any{}
	for _, ma := range sel[lo:hi] {
		answers := make([]any, 0, len(ma.Answers))
		for _, a := range ma.Answers {
			answers = append(answers, map[string]any{"id": a.QuestionID, "text": a.Text})
			if q, ok := qByID[a.QuestionID]; ok {
				used[q.ID] = map[string]any{"id": q.ID, "required": q.Required, "text": q.Text}
			}
		}
		out = append(out, map[string]any{"memberId": ma.MemberID, "answers": answers})
	}
	return map[string]any{"memberAnswers": out, "questions": used, "metadata": metadata(len(out), offset, len(sel))}, nil
}

// ---- rules ----

func rulesJSON(rs []Rule) []any {
	out := make([]any, 0, len(rs))
	for _, r := range rs {
		out = append(out, map[string]any{"title": r.Title, "description": r.Description})
	}
	return out
}

func listRules(st *Site, r *http.Request) (any, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"rules": rulesJSON(g.rules)}, nil
}

// replaceRules: PUT {rules} (≤100) → {groupId, rules}.
func replaceRules(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Rules []Rule `json:"rules"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if len(req.Rules) > 100 {
		return nil, fieldError("rules", "must contain at most 100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	g, e := st.lookupGroup(r.PathValue("groupId"))
	if e != nil {
		return nil, e
	}
	g.rules = append([]Rule{}, req.Rules...)
	return map[string]any{"groupId": g.ID, "rules": rulesJSON(g.rules)}, nil
}

// ---- email subscriptions ----

func subscriptionJSON(s *Subscription) map[string]any {
	return map[string]any{
		"id": s.ID, "email": s.Email, "subscriptionStatus": s.SubscriptionStatus,
		"deliverabilityStatus": s.DeliverabilityStatus,
		"createdDate":          wixTime(s.CreatedDate), "updatedDate": wixTime(s.UpdatedDate),
	}
}

// querySubscriptions: POST {filter (required): {"email": {"$in": [...]}},
// paging? (limit ≤ 100, default 100)}. Emails with no record are left out.
// Results follow the order of the $in list.
func querySubscriptions(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Filter map[string]any `json:"filter"`
		Paging paging         `json:"paging"`
		Query  map[string]any `json:"query"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if req.Filter == nil {
		return nil, fieldError("filter", "filter is required (top level, no query wrapper)", "REQUIRED_FIELD")
	}
	limit, offset, e := req.Paging.resolve("paging.", 100, 100)
	if e != nil {
		return nil, e
	}
	var emails []string
	for k, v := range req.Filter {
		if k != "email" {
			return nil, fieldError("filter."+k, "only email with $in is supported", "CUSTOM")
		}
		ops, ok := v.(map[string]any)
		if !ok || len(ops) != 1 {
			return nil, fieldError("filter.email", "only $in is supported", "CUSTOM")
		}
		in, ok := ops["$in"].([]any)
		if !ok {
			return nil, fieldError("filter.email", "only $in with an array is supported", "CUSTOM")
		}
		for _, x := range in {
			s, ok := x.(string)
			if !ok {
				return nil, fieldError("filter.email", "$in expects strings", "FORMAT")
			}
			emails = append(emails, s)
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var found []*Subscription
	seen := map[string]bool{}
	for _, em := range emails {
		k := strings.ToLower(strings.TrimSpace(em))
		if s, ok := st.subs[k]; ok && !seen[k] {
			seen[k] = true
			found = append(found, s)
		}
	}
	lo, hi := pageBounds(len(found), limit, offset)
	out := make([]any, 0, hi-lo)
	for _, s := range found[lo:hi] {
		out = append(out, subscriptionJSON(s))
	}
	return map[string]any{"subscriptions": out, "metadata": metadata(len(out), offset, len(found))}, nil
}

type subInput struct {
	Email                string `json:"email"`
	SubscriptionStatus   string `json:"subscriptionStatus"`
	DeliverabilityStatus string `json:"deliverabilityStatus"`
}

func validateSub(in *subInput, field string) *apiError {
	at := strings.LastIndex(in.Email, "@")
	if at < 1 || !strings.Contains(in.Email[at:], ".") || strings.ContainsAny(in.Email, " \t") {
		return fieldError(field+".email", "must be a valid email", "FORMAT")
	}
	switch in.SubscriptionStatus {
	case "", "UNKNOWN", "NOT_SET", "PENDING", "SUBSCRIBED", "UNSUBSCRIBED":
	default:
		return fieldError(field+".subscriptionStatus", "unknown status "+in.SubscriptionStatus, "FORMAT")
	}
	switch in.DeliverabilityStatus {
	case "", "NOT_SET", "VALID", "BOUNCED", "SPAM_COMPLAINT", "INACTIVE":
	default:
		return fieldError(field+".deliverabilityStatus", "unknown status "+in.DeliverabilityStatus, "FORMAT")
	}
	return nil
}

func upsertSubscription(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Subscription *subInput `json:"subscription"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if req.Subscription == nil {
		return nil, fieldError("subscription", "must not be empty", "REQUIRED_FIELD")
	}
	if e := validateSub(req.Subscription, "subscription"); e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	in := req.Subscription
	s := st.upsertSubLocked(in.Email, in.SubscriptionStatus, in.DeliverabilityStatus, st.now())
	return map[string]any{"subscription": subscriptionJSON(s)}, nil
}

// bulkUpsertSubscriptions: {subscriptions: [1..100]} → {results, metadata
// {totalSuccess, totalFailure}}; invalid items fail individually.
func bulkUpsertSubscriptions(st *Site, r *http.Request) (any, *apiError) {
	var req struct {
		Subscriptions []subInput `json:"subscriptions"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	if n := len(req.Subscriptions); n < 1 || n > 100 {
		return nil, fieldError("subscriptions", "must contain 1-100 elements", "MAX_SIZE")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	results := make([]any, 0, len(req.Subscriptions))
	ok, failed := 0, 0
	for i := range req.Subscriptions {
		in := &req.Subscriptions[i]
		if e := validateSub(in, fmt.Sprintf("subscriptions[%d]", i)); e != nil {
			failed++
			results = append(results, map[string]any{"originalIndex": i,
				"error": map[string]any{"errorCode": "INVALID_ARGUMENT", "message": e.body["message"]}})
			continue
		}
		ok++
		s := st.upsertSubLocked(in.Email, in.SubscriptionStatus, in.DeliverabilityStatus, now)
		results = append(results, map[string]any{"originalIndex": i, "emailSubscription": subscriptionJSON(s)})
	}
	return map[string]any{"results": results, "metadata": map[string]any{"totalSuccess": ok, "totalFailure": failed}}, nil
}

func getSubscription(st *Site, r *http.Request) (any, *apiError) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.subByID[r.PathValue("id")]
	if !ok {
		return nil, appError(http.StatusNotFound, "NOT_FOUND", "email subscription not found")
	}
	return map[string]any{"emailSubscription": subscriptionJSON(s)}, nil
}

// ---- contacts v4 ----

// contactOps are the operators of the Contacts v4 phone and email fields,
// and id's are "$eq, $ne, $in, $exists"
// (https://dev.wix.com/docs/rest/api-reference/contacts/contacts/contact-v4/sort-filter-and-search).
var contactOps = []string{"$eq", "$ne", "$in", "$exists", "$startsWith"}

var contactFilterSpec = fieldSpec{
	ops: map[string][]string{
		"id": {"$eq", "$ne", "$in", "$exists"}, "info.phones.phone": contactOps, "info.phones.e164Phone": contactOps,
		"primaryInfo.phone": contactOps,
		"info.emails.email": contactOps, "primaryInfo.email": contactOps,
	},
	fold:   map[string]bool{"info.emails.email": true, "primaryInfo.email": true},
	prefix: "query.filter.",
}

// contactGetter: like Wix, info.phones.phone and primaryInfo.phone hold the
// phone as entered (e.g. "(212) 555-0142") and match only that text; the
// E.164 form is the separate field info.phones.e164Phone (Contacts v4
// "Supported Filters, Sorting, and Search"; see internal/wix/README.md).
func contactGetter(c *Contact) getter {
	return func(f string) []string {
		switch f {
		case "id":
			return one(c.ID)
		case "info.emails.email":
			out := make([]string, len(c.Emails))
			for i, e := range c.Emails {
				out[i] = e.Email
			}
			return out
		case "primaryInfo.email":
			if len(c.Emails) > 0 {
				return one(c.Emails[0].Email)
			}
		case "info.phones.phone":
			var out []string
			for _, p := range c.Phones {
				out = append(out, p.Phone)
			}
			return out
		case "info.phones.e164Phone":
			var out []string
			for _, p := range c.Phones {
				if p.E164Phone != "" {
					out = append(out, p.E164Phone)
				}
			}
			return out
		case "primaryInfo.phone":
			if len(c.Phones) > 0 {
				return one(c.Phones[0].Phone)
			}
		}
		return nil
	}
}

func contactJSON(c *Contact) map[string]any {
	emails := make([]any, 0, len(c.Emails))
	for _, e := range c.Emails {
		emails = append(emails, map[string]any{"email": e.Email, "tag": e.Tag})
	}
	phones := make([]any, 0, len(c.Phones))
	for _, p := range c.Phones {
		ph := map[string]any{"phone": p.Phone, "e164Phone": p.E164Phone, "tag": "MOBILE"}
		if p.CountryCode != "" {
			ph["countryCode"] = p.CountryCode
		}
		phones = append(phones, ph)
	}
	name := map[string]any{}
	if c.FirstName != "" {
		name["first"] = c.FirstName
	}
	if c.LastName != "" {
		name["last"] = c.LastName
	}
	primary := map[string]any{}
	if len(c.Emails) > 0 {
		primary["email"] = c.Emails[0].Email
	}
	if len(c.Phones) > 0 {
		primary["phone"] = c.Phones[0].Phone
	}
	out := map[string]any{
		"id":          c.ID,
		"createdDate": wixTime(c.Created),
		"info":        map[string]any{"name": name, "emails": map[string]any{"items": emails}, "phones": map[string]any{"items": phones}},
		"primaryInfo": primary,
	}
	return out
}

// queryContacts: POST /contacts/v4/contacts/query {query{filter, paging}};
// limit ≤ 1000, default 50 (Contacts' own limits); creation order.
func queryContacts(st *Site, r *http.Request) (any, *apiError) {
	_, limit, offset, p, e := parseQuery(r, contactFilterSpec, 50, 1000)
	if e != nil {
		return nil, e
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var sel []*Contact
	for _, c := range st.contacts {
		if p(contactGetter(c)) {
			sel = append(sel, c)
		}
	}
	lo, hi := pageBounds(len(sel), limit, offset)
	out := make([]any, 0, hi-lo)
	for _, c := range sel[lo:hi] {
		out = append(out, contactJSON(c))
	}
	return map[string]any{"contacts": out, "pagingMetadata": map[string]any{"count": len(out), "offset": offset, "total": len(sel)}}, nil
}

// ---- OAuth ----

// oauthToken: POST /oauth2/token {client_id, client_secret, instance_id,
// grant_type: client_credentials} → {access_token, token_type, expires_in}.
// Any client id/secret is accepted; the instance id is the site id.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		InstanceID   string `json:"instance_id"`
		GrantType    string `json:"grant_type"`
		// Refresh-token grant of member OAuth (auth.go), camelCase as documented.
		GrantType2   string `json:"grantType"`
		ClientID2    string `json:"clientId"`
		RefreshToken string `json:"refreshToken"`
		RefreshSnake string `json:"refresh_token"`
	}
	if e := decodeBody(r, &req); e != nil {
		writeJSON(w, e.status, e.body)
		return
	}
	if req.GrantType == "refresh_token" || req.GrantType2 == "refresh_token" {
		s.refreshGrant(w, firstNonEmpty(req.ClientID2, req.ClientID), firstNonEmpty(req.RefreshToken, req.RefreshSnake))
		return
	}
	var e *apiError
	switch {
	case req.GrantType != "client_credentials":
		e = fieldError("grant_type", "must be client_credentials", "FORMAT")
	case req.InstanceID == "":
		e = fieldError("instance_id", "must not be empty", "REQUIRED_FIELD")
	case req.ClientID == "" || req.ClientSecret == "":
		e = appError(http.StatusUnauthorized, "UNAUTHENTICATED", "invalid client credentials")
	}
	if e != nil {
		writeJSON(w, e.status, e.body)
		return
	}
	tok, ttl := s.issueToken(req.InstanceID)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl.Seconds())})
}
