package admin_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/admin"
	"groupflow/internal/dlq"
	"groupflow/internal/ledger"
	"groupflow/internal/testenv"
	"groupflow/messages"
)

const consoleToken = "t0ken-of-the-admin"

// hostile is put in every field a dead letter lets a sender choose.
const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

type fakeInFlight []admin.InFlight

func (f fakeInFlight) InFlight(context.Context) []admin.InFlight { return f }

type fakeLimiters []admin.LimiterState

func (f fakeLimiters) Limiters() []admin.LimiterState { return f }

type fakeProgress map[string]map[string]int64

func (f fakeProgress) Progress(_, id string) (map[string]int64, bool) { p, ok := f[id]; return p, ok }

// consoleEnv is an admin server with the console over a real JetStream.
type consoleEnv struct {
	env   *testenv.Env
	store *dlq.Store
	url   string
}

func startConsole(t *testing.T, token string) *consoleEnv {
	t.Helper()
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	srv := admin.New("127.0.0.1:0", func(context.Context) error { return nil }, prometheus.NewRegistry(), zap.NewNop())
	srv.Protect(token, false)
	srv.MountConsole(admin.ConsoleSources{
		DLQ: store, Outcomes: admin.NewEventLog(env.JS, env.Subjects), Commands: env.Ledger,
		InFlight: fakeInFlight{{CommandType: messages.CmdProvisionGroup, CommandID: "roster-autumn", StreamSeq: 7,
			Record: &ledger.Record{Deliveries: 1, StartedAt: time.Now().Add(-time.Minute), LeaseUntil: time.Now().Add(time.Minute)}}},
		Progress: fakeProgress{"roster-autumn": {"rowsResolved": 420, "rowsTotal": 1000, "wixCalls": 37}},
		Limiters: fakeLimiters{{SiteID: "demo-site", PerMinute: 200, Instances: 2, Throttled: 3, Waiting: 1, Calls: 512}},
	})
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return &consoleEnv{env: env, store: store, url: "http://" + addr}
}

// deadLetter stores e in the DLQ as the runtime does and returns its sequence.
func (c *consoleEnv) deadLetter(t *testing.T, e *dlq.Entry) uint64 {
	t.Helper()
	e.OriginalSubject = c.env.Subjects.Command(e.CommandType)
	e.FirstFailure, e.LastFailure, e.Deliveries = time.Now(), time.Now(), 10
	wm := e.Message()
	m := nats.NewMsg(c.env.Subjects.DLQ(e.CommandType))
	m.Data = e.Body
	for k := range wm.Metadata {
		m.Header.Set(k, wm.Metadata.Get(k))
	}
	m.Header.Set(nats.MsgIdHdr, wm.UUID)
	ack, err := c.env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func hostileLetter() *dlq.Entry {
	return &dlq.Entry{CommandType: messages.CmdProvisionGroup, CommandID: "prov-" + hostile, Kind: messages.FailurePermanent,
		Reason:  "wix: 400 INVALID_ARGUMENT " + hostile,
		Headers: map[string]string{"X-Note": hostile},
		Body:    []byte(`{"id":"prov-1","group":{"name":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `"}}`)}
}

// event publishes an event body on the events stream.
func (c *consoleEnv) event(t *testing.T, eventType, body string) {
	t.Helper()
	if _, err := c.env.JS.Publish(context.Background(), c.env.Subjects.Event(eventType), []byte(body)); err != nil {
		t.Fatal(err)
	}
}

type client struct {
	t    *testing.T
	http *http.Client
	base string
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar}}
}

func (c *client) do(req *http.Request) (int, string, *http.Response) {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func (c *client) get(path string) (int, string) {
	req, _ := http.NewRequest("GET", c.base+path, nil)
	code, body, _ := c.do(req)
	return code, body
}

func (c *client) post(path string, form url.Values) (int, string) {
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, body, _ := c.do(req)
	return code, body
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// TestConsoleAuthCSRFAndEscaping: the console wants the admin token (typed
// into the login form, never in a URL or page), keeps an HttpOnly session,
// refuses a post without the session's CSRF token, asks before replaying,
// and escapes what senders chose.
func TestConsoleAuthCSRFAndEscaping(t *testing.T) {
	ce := startConsole(t, consoleToken)
	seq := ce.deadLetter(t, hostileLetter())
	c := newClient(t, ce.url)

	if code, body := c.get("/console/"); code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("unauthenticated overview: %d, want the login form:\n%s", code, body)
	}
	if code, _ := c.post("/console/login", url.Values{"token": {"wrong"}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	req, _ := http.NewRequest("POST", ce.url+"/console/login", strings.NewReader(url.Values{"token": {consoleToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := tr.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, consoleToken) {
		t.Fatalf("login: %d cookie %q", resp.StatusCode, ck)
	}
	c.post("/console/login", url.Values{"token": {consoleToken}})

	for _, path := range []string{"/console/", "/console/dlq", "/console/dlq/1", "/console/command?id=prov-1"} {
		code, body := c.get(path)
		if code != 200 || strings.Contains(body, consoleToken) || strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Fatalf("%s: %d; want 200, escaped, without the token:\n%s", path, code, body)
		}
	}
	_, page := c.get("/console/dlq/1")
	if !strings.Contains(page, "&lt;script&gt;alert") {
		t.Fatalf("the hostile reason is not shown escaped:\n%s", page)
	}
	csrf := csrfOf(t, page)
	replay := "/console/dlq/1/replay"
	if code, _ := c.post(replay, url.Values{"confirmed": {"1"}}); code != http.StatusForbidden {
		t.Fatalf("replay without CSRF token: %d", code)
	}
	if code, body := c.post(replay, url.Values{"csrf": {csrf}}); code != 200 || !strings.Contains(body, `name="confirmed" value="1"`) {
		t.Fatalf("unconfirmed replay: %d, want the confirmation page:\n%s", code, body)
	}
	if n, _ := ce.store.List(context.Background(), dlq.Filter{}); len(n) != 1 {
		t.Fatalf("the DLQ changed before confirmation: %d entries", len(n))
	}
	if code, body := c.post("/console/dlq/purge", url.Values{"csrf": {csrf}, "confirmed": {"1"}}); code != 400 {
		t.Fatalf("purge without filter nor all: %d %s", code, body)
	}
	if code, body := c.post("/console/dlq/1/purge", url.Values{"csrf": {csrf}, "confirmed": {"1"}}); code != 200 || !strings.Contains(body, "purged") {
		t.Fatalf("purge #%d: %d\n%s", seq, code, body)
	}
	if n, _ := ce.store.List(context.Background(), dlq.Filter{}); len(n) != 0 {
		t.Fatalf("after purge: %d entries", len(n))
	}
	// API clients may use the bearer header instead of a session.
	req, _ = http.NewRequest("GET", ce.url+"/console/dlq", nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	if code, body, _ := newClient(t, ce.url).do(req); code != 200 || !strings.Contains(body, "No dead letter") {
		t.Fatalf("bearer: %d\n%s", code, body)
	}
}

// TestEventLogRecent: the recent outcomes are the last completions and
// failures, newest first, found behind many events that are not outcomes.
func TestEventLogRecent(t *testing.T) {
	ce := startConsole(t, "")
	for i := range 6 {
		ce.event(t, messages.EvtReportGenerated, fmt.Sprintf(`{"commandId":"report-%d"}`, i))
	}
	ce.event(t, messages.EvtCommandFailed, `{"commandId":"bad-1","commandType":"provision_group","kind":"invalid","reason":"people: required"}`)
	for i := range 300 {
		ce.event(t, messages.EvtMemberSelected, fmt.Sprintf(`{"commandId":"camp","memberId":"m%d"}`, i))
	}
	got, err := admin.NewEventLog(ce.env.JS, ce.env.Subjects).Recent(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, o.CommandType+"/"+o.CommandID)
	}
	if strings.Join(ids, ",") != "provision_group/bad-1,generate_report/report-5,generate_report/report-4" || !got[0].Failed || got[0].Reason != "people: required" {
		t.Fatalf("recent = %v %+v", ids, got)
	}
	if all, err := admin.NewEventLog(ce.env.JS, ce.env.Subjects).Recent(context.Background(), 50); err != nil || len(all) != 7 {
		t.Fatalf("recent 50: %d outcomes, %v", len(all), err)
	}
}

// TestConsoleWithoutToken: on loopback without a token the console opens a
// session (for its CSRF token) by itself, refuses other host names (DNS
// rebinding) and still wants the CSRF token on posts.
func TestConsoleWithoutToken(t *testing.T) {
	ce := startConsole(t, "")
	ce.deadLetter(t, hostileLetter())
	c := newClient(t, ce.url)
	code, page := c.get("/console/dlq")
	if code != 200 || !strings.Contains(page, "prov-") {
		t.Fatalf("dlq page: %d\n%s", code, page)
	}
	if code, _ := c.post("/console/dlq/1/purge", url.Values{"confirmed": {"1"}}); code != http.StatusForbidden {
		t.Fatalf("purge without CSRF token: %d", code)
	}
	req, _ := http.NewRequest("GET", ce.url+"/console/", nil)
	req.Host = "attacker.example:8080"
	if code, _, _ := c.do(req); code != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", code)
	}
	if code, body := c.post("/console/dlq/1/purge", url.Values{"csrf": {csrfOf(t, page)}, "confirmed": {"1"}}); code != 200 || !strings.Contains(body, "#1 purged") {
		t.Fatalf("purge: %d\n%s", code, body)
	}
}

// TestConsoleWithoutTokenKeepsNoSessions: without an admin token, page
// loads without a cookie (a hostile web page can make any number of them to
// localhost) open no session the console keeps, so they cannot evict the
// operator's: after 1,100 of them the operator's form still works. A forged
// session id with a CSRF token of another session is refused.
func TestConsoleWithoutTokenKeepsNoSessions(t *testing.T) {
	ce := startConsole(t, "")
	ce.deadLetter(t, hostileLetter())
	op := newClient(t, ce.url)
	_, page := op.get("/console/dlq")
	csrf := csrfOf(t, page)
	for range 1100 {
		resp, err := http.Get(ce.url + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	other := newClient(t, ce.url)
	_, otherPage := other.get("/console/dlq")
	if code, _ := other.post("/console/dlq/1/purge", url.Values{"csrf": {csrf}, "confirmed": {"1"}}); code != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d, want 403", code)
	}
	if csrfOf(t, otherPage) == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	if code, body := op.post("/console/dlq/1/purge", url.Values{"csrf": {csrf}, "confirmed": {"1"}}); code != 200 || !strings.Contains(body, "#1 purged") {
		t.Fatalf("the operator's purge after 1,100 other visits: %d\n%s", code, body)
	}
}

// TestConsoleLoginAttemptsBounded: a token guesser is cut off with 429s.
func TestConsoleLoginAttemptsBounded(t *testing.T) {
	ce := startConsole(t, consoleToken)
	c := newClient(t, ce.url)
	codes := map[int]int{}
	for range 15 {
		code, _ := c.post("/console/login", url.Values{"token": {"guess"}})
		codes[code]++
	}
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 5 {
		t.Fatalf("15 wrong sign-ins: %v, want 10 refused then 5 throttled", codes)
	}
}

// TestConsoleDLQBounded: the overview counts the dead letters from the
// stream's per-subject counts, without reading them (it is fetched again
// every few seconds: reading a DLQ of 100,000 entries each time kept a
// consumer busy for as long); the DLQ page shows at most 200 rows, stops
// reading there, and says how many more there are when it can count them.
func TestConsoleDLQBounded(t *testing.T) {
	ce := startConsole(t, "")
	ctx := context.Background()
	const n = 205
	for i := range n {
		m := nats.NewMsg(ce.env.Subjects.DLQ(messages.CmdProvisionGroup))
		m.Header.Set(dlq.HeaderReason, "wix: 404 not found")
		m.Header.Set(dlq.HeaderCommandID, fmt.Sprintf("prov-%d", i))
		if _, err := ce.env.JS.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	<-ce.env.JS.PublishAsyncComplete()
	c := newClient(t, ce.url)
	code, page := c.get("/console/")
	if code != 200 || !strings.Contains(page, "Dead letters <small>205</small>") || !strings.Contains(page, "provision_group <b>205</b>") {
		t.Fatalf("overview: %d\n%s", code, page)
	}
	st, err := ce.env.JS.Stream(ctx, ce.env.Subjects.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Fatalf("the overview read the DLQ: %d consumer(s), %v", info.State.Consumers, err)
	}
	for path, more := range map[string]string{"/console/dlq": "5 more not shown", "/console/dlq?command=provision_group": "5 more not shown",
		"/console/dlq?reason=not+found": "More match, not shown"} {
		code, page := c.get(path)
		if rows := strings.Count(page, "<tr data-seq="); code != 200 || rows != 200 || !strings.Contains(page, more) {
			t.Errorf("%s: %d, %d rows, want 200 and %q", path, code, rows, more)
		}
	}
}

// TestEventLogBoundsFields: an event's strings are cut when read (500 kept
// outcomes of events up to the payload limit were all held, and the page
// printed a site id whole): ids at 256 bytes, the reason at 2 KiB.
func TestEventLogBoundsFields(t *testing.T) {
	ce := startConsole(t, "")
	long := strings.Repeat("x", 200_000)
	ce.event(t, messages.EvtCommandFailed, `{"commandId":"`+long+`","siteId":"`+long+`","correlationId":"`+long+
		`","commandType":"`+long+`","kind":"`+long+`","reason":"`+long+`"}`)
	got, err := admin.NewEventLog(ce.env.JS, ce.env.Subjects).Recent(context.Background(), 5)
	if err != nil || len(got) != 1 {
		t.Fatalf("recent: %v %v", len(got), err)
	}
	o := got[0]
	for name, v := range map[string]string{"commandId": o.CommandID, "siteId": o.SiteID, "correlationId": o.CorrelationID,
		"commandType": o.CommandType, "kind": o.Kind} {
		if len(v) > 256+len("…") {
			t.Errorf("%s of %d bytes", name, len(v))
		}
	}
	if len(o.Reason) > 2048+len("…") {
		t.Errorf("reason of %d bytes", len(o.Reason))
	}
	c := newClient(t, ce.url)
	if code, page := c.get("/console/"); code != 200 || len(page) > 16<<10 {
		t.Errorf("overview: %d, %d bytes", code, len(page))
	}
}

// TestConsoleLoginThrottlePerClient: a guesser is throttled by its own
// address, so it cannot lock the operator, signing in from another, out of
// the console.
func TestConsoleLoginThrottlePerClient(t *testing.T) {
	ce := startConsole(t, consoleToken)
	guesser := newClient(t, ce.url)
	for range 15 {
		guesser.post("/console/login", url.Values{"token": {"guess"}})
	}
	if code, _ := guesser.post("/console/login", url.Values{"token": {consoleToken}}); code != http.StatusTooManyRequests {
		t.Fatalf("the guesser's 16th attempt: %d, want 429", code)
	}
	op := newClient(t, ce.url)
	op.http.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	if code, body := op.post("/console/login", url.Values{"token": {consoleToken}}); code != 200 || !strings.Contains(body, "Overview") {
		t.Fatalf("the operator from another address: %d\n%.300s", code, body)
	}
}
