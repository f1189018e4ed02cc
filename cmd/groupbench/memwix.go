package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// wixStub is Wix answered in memory for scenario 2: an http.RoundTripper,
// no socket and no simulator, that answers exactly the four calls of a
// one-person provision_group for a new group, shaped like Wix's answers:
//
//	POST /social-groups-proxy/groups/v2/groups/query     → no group of that name
//	POST /social-groups-proxy/groups/v2/groups           → a new group (a distinct id per call)
//	POST /members/v1/members/query                       → one member per asked login email
//	POST /social-groups-proxy/members/v2/groups/{id}/members → the added members
//
// Anything else is answered 501 with a Wix-shaped error, so a change in the
// handler's call sequence fails the bench instead of being measured wrongly.
// It lets scenario 2 tell groupflow's own cost from the simulator's.
type wixStub struct {
	calls  atomic.Int64 // requests answered, unknown ones included
	groups atomic.Int64 // groups created, for their ids
}

const (
	stubOwnerID  = "00000000-0000-4000-8000-00000000000a"
	stubMemberID = "00000000-0000-4000-8000-0000000000b"
	// stubMaxBody bounds the request bodies the stub reads.
	stubMaxBody = 64 << 10
)

var stubJSONHeader = http.Header{"Content-Type": {"application/json"}}

// RoundTrip answers req. It closes req.Body, as a RoundTripper must.
func (s *wixStub) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, stubMaxBody))
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	s.calls.Add(1)
	if req.Header.Get("Wix-Site-Id") == "" || req.Header.Get("Authorization") == "" {
		return stubAnswer(req, http.StatusUnauthorized, stubError("missing site id or authorization")), nil
	}
	p := req.URL.Path
	switch {
	case req.Method != http.MethodPost:
	case p == "/social-groups-proxy/groups/v2/groups/query":
		return stubAnswer(req, http.StatusOK, []byte(`{"groups":[],"metadata":{"count":0,"offset":0,"total":0}}`)), nil
	case p == "/social-groups-proxy/groups/v2/groups":
		return s.createGroup(req, body), nil
	case p == "/members/v1/members/query":
		return queryMembers(req, body), nil
	case strings.HasPrefix(p, "/social-groups-proxy/members/v2/groups/") && strings.HasSuffix(p, "/members"):
		return addMembers(req, body), nil
	}
	return stubAnswer(req, http.StatusNotImplemented, stubError("not stubbed: "+req.Method+" "+p)), nil
}

// createGroup answers Create Group with a new public group holding its
// creator, named as asked.
func (s *wixStub) createGroup(req *http.Request, body []byte) *http.Response {
	var in struct {
		Group struct {
			Name string `json:"name"`
		} `json:"group"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Group.Name == "" {
		return stubAnswer(req, http.StatusBadRequest, stubError("group.name is required"))
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	b := make([]byte, 0, 512)
	b = append(b, `{"group":{"createdDate":"`...)
	b = append(b, now...)
	n := s.groups.Add(1)
	b = append(b, `","id":"`...)
	b = stubID(b, n)
	b = append(b, `","lastActivityDate":"`...)
	b = append(b, now...)
	b = append(b, `","memberTitle":"Members","membersCount":1,"name":`...)
	b = strconv.AppendQuote(b, in.Group.Name)
	b = append(b, `,"ownerId":"`+stubOwnerID+`","privacyStatus":"PUBLIC","slug":"group-`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","updatedDate":"`...)
	b = append(b, now...)
	b = append(b, `"}}`...)
	return stubAnswer(req, http.StatusOK, b)
}

// queryMembers answers Query Members by login email: one approved public
// member per address asked, with an id derived from its position.
func queryMembers(req *http.Request, body []byte) *http.Response {
	emails, ok := askedEmails(body)
	if !ok {
		return stubAnswer(req, http.StatusBadRequest, stubError("bad query"))
	}
	b := make([]byte, 0, 96+160*len(emails))
	b = append(b, `{"members":[`...)
	for i, e := range emails {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"activityStatus":"ACTIVE","id":"`+stubMemberID...)
		b = strconv.AppendInt(b, int64(i), 16)
		b = append(b, `","loginEmail":`...)
		b = strconv.AppendQuote(b, e)
		b = append(b, `,"privacyStatus":"PUBLIC","status":"APPROVED"}`...)
	}
	b = append(b, `],"metadata":{"count":`...)
	b = strconv.AppendInt(b, int64(len(emails)), 10)
	b = append(b, `,"offset":0,"total":`...)
	b = strconv.AppendInt(b, int64(len(emails)), 10)
	b = append(b, `}}`...)
	return stubAnswer(req, http.StatusOK, b)
}

// askedEmails returns the addresses of a {"loginEmail": {"$in": [...]}}
// query. It slices the array out of the body rather than decoding the whole
// query; an array holding escapes is decoded by encoding/json.
func askedEmails(body []byte) ([]string, bool) {
	const key = `"loginEmail":{"$in":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return nil, false
	}
	arr := body[i+len(key):]
	end := bytes.IndexByte(arr, ']')
	if len(arr) == 0 || arr[0] != '[' || end < 0 {
		return nil, false
	}
	arr = arr[:end+1]
	if bytes.IndexByte(arr, '\\') >= 0 {
		var out []string
		return out, json.Unmarshal(arr, &out) == nil
	}
	var out []string
	if end == 1 {
		return out, true
	}
	for _, f := range bytes.Split(arr[1:end], []byte(",")) {
		if len(f) < 2 || f[0] != '"' || f[len(f)-1] != '"' {
			return nil, false
		}
		out = append(out, string(f[1:len(f)-1]))
	}
	return out, true
}

// addMembers answers Add Group Members: every id asked joins as a member.
func addMembers(req *http.Request, body []byte) *http.Response {
	var in struct {
		MemberIDs []string `json:"memberIds"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.MemberIDs) == 0 {
		return stubAnswer(req, http.StatusBadRequest, stubError("memberIds is required"))
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	b := make([]byte, 0, 16+96*len(in.MemberIDs))
	b = append(b, `{"members":[`...)
	for i, id := range in.MemberIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"joinedDate":"`...)
		b = append(b, now...)
		b = append(b, `","memberId":`...)
		b = strconv.AppendQuote(b, id)
		b = append(b, `,"role":{"value":"MEMBER"}}`...)
	}
	b = append(b, `]}`...)
	return stubAnswer(req, http.StatusOK, b)
}

// stubID appends a UUID-shaped id made of n.
func stubID(b []byte, n int64) []byte {
	const hex = "000000000000"
	s := strconv.FormatInt(n, 16)
	if len(s) > len(hex) {
		s = s[len(s)-len(hex):]
	}
	b = append(b, "00000000-0000-4000-8000-"...)
	b = append(b, hex[len(s):]...)
	return append(b, s...)
}

func stubError(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"message": msg, "details": map[string]any{"applicationError": map[string]string{"code": "STUB"}}})
	return b
}

func stubAnswer(req *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: stubJSONHeader.Clone(), Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}
