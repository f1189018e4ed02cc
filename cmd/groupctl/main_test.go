package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/dlq"
	"groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// groupctl runs the CLI in-process against env and returns stdout, stderr.
func groupctl(t *testing.T, env *testenv.Env, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"--nats-url", env.Server.URL}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustGroupctl(t *testing.T, env *testenv.Env, args ...string) string {
	t.Helper()
	out, errOut, err := groupctl(t, env, "", args...)
	if err != nil {
		t.Fatalf("groupctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// createGroup is a test handler for provision_group: it creates the group in
// Wix (the side effect) unless the ledger says it did already.
type createGroup struct {
	w   *testenv.WixEnv
	env *testenv.Env
}

func (h *createGroup) CommandType() string { return messages.CmdProvisionGroup }

func (h *createGroup) Handle(ctx context.Context, cmd *runtime.Command, p *messages.ProvisionGroup) (messages.Event, error) {
	steps := cmd.Checkpoints()
	var g wix.Group
	if ok, err := steps.Load(ctx, "group", &g); err != nil {
		return nil, err
	} else if !ok {
		site, err := h.w.Client.Site(h.w.SiteID)
		if err != nil {
			return nil, err
		}
		created, err := site.CreateGroup(ctx, wix.Group{Name: p.Group.Name, PrivacyStatus: p.Group.PrivacyStatus}, "")
		if err != nil {
			return nil, err
		}
		g = *created
		if err := steps.Checkpoint(ctx, "group", g); err != nil {
			return nil, err
		}
	}
	return &messages.GroupProvisioned{EventMeta: cmd.EventMeta(), GroupID: g.ID, Name: g.Name, Added: len(p.People)}, nil
}

// TestDeadLetterToReplay is the ops story end to end: a command fails
// permanently while Wix answers 400 → it is in `dlq ls` with the Wix error as
// reason → Wix recovers → `dlq replay` → the completion event arrives, the
// DLQ is empty, and the group was created once.
func TestDeadLetterToReplay(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	w := testenv.StartWix(t, wixsim.Options{Members: -1, Groups: -1})
	env.StartRuntime(runtime.Config{Retries: -1}, runtime.Adapt(&createGroup{w: w, env: env}))
	w.Sim.SetFaults(wixsim.Faults{ErrorRates: map[int]float64{400: 1}})

	// A raw command without a body id: its id is the Nats-Msg-Id, and the
	// replay (within the 2-minute duplicate window) must keep it.
	file := writeFile(t, "cmd.json", `{"group":{"name":"Yoga Monday","privacyStatus":"PRIVATE"}}`)
	out, errOut, err := groupctl(t, env, "", "send", "--subject", "groups.cmd.provision_group", file, "--id", "prov-e2e", "--wait", "--timeout", "30s")
	if err == nil || !strings.HasPrefix(out, "prov-e2e\n") || !strings.Contains(out, "command_failed") {
		t.Fatalf("send: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}

	ls := mustGroupctl(t, env, "dlq", "ls")
	t.Logf("dlq ls:\n%s", ls)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "provision_group") ||
		!strings.Contains(lines[1], "prov-e2e") || !strings.Contains(lines[1], "400") {
		t.Fatalf("dlq ls:\n%s", ls)
	}
	seq := strings.Fields(lines[1])[0]
	show := mustGroupctl(t, env, "dlq", "show", seq)
	t.Logf("dlq show:\n%s", show)
	if !strings.Contains(show, `"name": "Yoga Monday"`) || !strings.Contains(show, "permanent") {
		t.Fatalf("dlq show:\n%s", show)
	}
	if st := mustGroupctl(t, env, "status", "prov-e2e"); !strings.Contains(st, "status:   dead_lettered") || !strings.Contains(st, "dlq replay "+seq) {
		t.Fatalf("status:\n%s", st)
	}
	if n := len(w.Site().GroupsByName("Yoga Monday")); n != 0 {
		t.Fatalf("%d groups created while failing", n)
	}

	w.Sim.SetFaults(wixsim.Faults{})
	done := env.Watch(env.Subjects.Event(messages.EvtGroupProvisioned))
	if out := mustGroupctl(t, env, "dlq", "replay", "--all", "--dry-run"); !strings.HasPrefix(out, "would replay 1, skipped 0") {
		t.Fatalf("dry run: %s", out)
	}
	if out := mustGroupctl(t, env, "dlq", "replay", seq); !strings.HasPrefix(out, "replayed 1, skipped 0, failed 0") {
		t.Logf("dlq replay: %s", out)
		t.Fatalf("replay: %s", out)
	}
	ev := testenv.Decode[messages.GroupProvisioned](t, done.Next(30*time.Second, testenv.ForCommand("prov-e2e")))
	if ev.CommandID != "prov-e2e" || ev.Name != "Yoga Monday" {
		t.Fatalf("event: %+v", ev)
	}
	if left := env.DeadLetters(); len(left) != 0 {
		t.Fatalf("DLQ not empty: %+v", left)
	}
	if gs := w.Site().GroupsByName("Yoga Monday"); len(gs) != 1 {
		t.Fatalf("%d groups named Yoga Monday, want 1", len(gs))
	}
	st := mustGroupctl(t, env, "status", "prov-e2e", "--type", "provision_group")
	t.Logf("status:\n%s", st)
	if !strings.Contains(st, "status:   completed") || !strings.Contains(st, "events:   command_failed ×1, group_provisioned ×1") || !strings.Contains(st, `"groupId"`) {
		t.Fatalf("status:\n%s", st)
	}
	// --events lists them one by one.
	if st := mustGroupctl(t, env, "status", "prov-e2e", "--events"); !strings.Contains(st, "event:    group_provisioned") || !strings.Contains(st, "event:    command_failed") {
		t.Fatalf("status --events:\n%s", st)
	}
	if out, _, _ := groupctl(t, env, "", "dlq", "ls"); out != "" {
		t.Fatalf("dlq ls after replay: %q", out)
	}
}

func TestSendProvisionRoster(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	csv := writeFile(t, "roster.csv", "\ufeffFirst Name,Last Name,E-mail,notes\nAnn,Lee,ann@example.com,x\nBob,,not-an-email,\n,,,only notes\n\"Ng, Zoe\",,zoe@example.com,\n")
	out, errOut, err := groupctl(t, env, "", "send", "provision", "--name", "Yoga Monday", "--roster", csv, "--privacy", "private", "--sync", "--id", "prov-1", "--site", "site-2")
	if err != nil || out != "prov-1\n" {
		t.Fatalf("send: %v %q %s", err, out, errOut)
	}
	for _, want := range []string{`line 3: malformed email "not-an-email"`, "line 4: no email, phone, contactId or name", "2 usable rows, 2 rows left out", "ignored columns: notes"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdProvisionGroup))
	if len(msgs) != 1 || msgs[0].Header.Get(nats.MsgIdHdr) != "prov-1" {
		t.Fatalf("published: %v", msgs)
	}
	var cmd messages.ProvisionGroup
	if err := json.Unmarshal(msgs[0].Data, &cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.ID != "prov-1" || cmd.SiteID != "site-2" || cmd.Group.PrivacyStatus != "PRIVATE" || cmd.Membership != "sync" || len(cmd.People) != 2 ||
		cmd.People[0] != (messages.Person{FirstName: "Ann", LastName: "Lee", Email: "ann@example.com", Ref: "2"}) || cmd.People[1].FirstName != "Ng, Zoe" {
		t.Fatalf("command: %+v", cmd)
	}

	// --strict refuses; an invalid command is not sent and its fields are listed.
	if _, _, err := groupctl(t, env, "", "send", "provision", "--name", "X", "--roster", csv, "--strict"); err == nil {
		t.Fatal("--strict sent a roster with bad rows")
	}
	_, errOut, err = groupctl(t, env, "", "send", "provision", "--name", strings.Repeat("n", 101), "--privacy", "hidden")
	if !errors.Is(err, errSilent) || !strings.Contains(errOut, "group.name:") || !strings.Contains(errOut, "group.privacyStatus:") {
		t.Fatalf("invalid: %v\n%s", err, errOut)
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 1 {
		t.Fatalf("%d commands published", n)
	}
}

func TestSendVerbs(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	content := writeFile(t, "content.json", `{"templateId":"spring"}`)
	for _, tc := range []struct {
		args []string
		typ  string
		want func(messages.Command) bool
	}{
		{[]string{"campaign", "--campaign-id", "spring", "--group", "g1,g2", "--keywords", "yoga,pilates", "--match", "all", "--content", "@" + content}, messages.CmdSendCampaign,
			func(c messages.Command) bool {
				s := c.(*messages.SendCampaign)
				return len(s.GroupIDs) == 2 && s.Audience.Type == "interest" && s.Audience.Match == "all" && string(s.Content) == `{"templateId":"spring"}`
			}},
		{[]string{"questions", "--group", "g1", "--question", "Why, really?", "--question", "Level?"}, messages.CmdSetMembershipQuestions,
			func(c messages.Command) bool {
				q := c.(*messages.SetMembershipQuestions)
				return len(q.Questions) == 2 && q.Questions[0].Text == "Why, really?"
			}},
		{[]string{"rules", "--source", "g0", "--prefix", "Yoga", "--dry-run"}, messages.CmdPropagateRules,
			func(c messages.Command) bool {
				r := c.(*messages.PropagateRules)
				return r.SourceGroupID == "g0" && r.Targets.NamePrefix == "Yoga" && r.DryRun
			}},
		{[]string{"report", "--top", "3", "--idle-days", "30"}, messages.CmdGenerateReport,
			func(c messages.Command) bool {
				r := c.(*messages.GenerateReport)
				return r.Top == 3 && r.IdleDays == 30
			}},
	} {
		out := mustGroupctl(t, env, append([]string{"send"}, tc.args...)...)
		id := strings.TrimSpace(out)
		if !strings.HasPrefix(id, strings.ReplaceAll(tc.typ, "_", "-")+"-") {
			t.Fatalf("%s: id %q", tc.typ, id)
		}
		msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(tc.typ))
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages", tc.typ, len(msgs))
		}
		cmd, err := messages.Decode(tc.typ, msgs[0].Data)
		if err != nil || cmd.Meta().ID != id || !tc.want(cmd) {
			t.Fatalf("%s: %v %s", tc.typ, err, msgs[0].Data)
		}
	}
	if _, _, err := groupctl(t, env, "", "send", "rules", "--source", "g0"); err == nil {
		t.Fatal("rules without targets accepted")
	}
	if _, _, err := groupctl(t, env, "", "send", "questions", "--group", "g1"); err == nil {
		t.Fatal("questions without --question accepted")
	}
	// Raw command from stdin, body id kept.
	out, _, err := groupctl(t, env, `{"id":"rep-7","top":2}`, "send", "--subject", "generate_report", "-")
	if err != nil || out != "rep-7\n" {
		t.Fatalf("raw: %v %q", err, out)
	}
	if _, errOut, err := groupctl(t, env, `{"top":-1}`, "send", "--subject", "groups.cmd.generate_report", "-"); err == nil || !strings.Contains(errOut, "top:") {
		t.Fatalf("raw invalid: %v %s", err, errOut)
	}
}

func TestEventsTailAndWait(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	evts, _ := env.EventPublisher()
	ctx := context.Background()
	publish := func(e messages.Event) {
		t.Helper()
		if err := evts.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish(&messages.GroupProvisioned{EventMeta: messages.EventMeta{CommandID: "prov-1", OccurredAt: time.Now()}, GroupID: "g1", Name: "Yoga", Added: 3})
	publish(&messages.MemberSelected{EventMeta: messages.EventMeta{CommandID: "camp-1", OccurredAt: time.Now()}, CampaignID: "spring", MemberID: "m1", Email: "ann@example.com", GroupIDs: []string{"g1"}})

	out := mustGroupctl(t, env, "events", "tail", "--since", "1h", "--count", "2")
	if !strings.Contains(out, "group_provisioned") || !strings.Contains(out, `cmd=prov-1 group=g1 name="Yoga"`) || !strings.Contains(out, "member=m1") {
		t.Fatalf("tail:\n%s", out)
	}
	out = mustGroupctl(t, env, "events", "tail", "--since", "1h", "--type", "member_selected", "--json", "--count", "1")
	var ms messages.MemberSelected
	if err := json.Unmarshal([]byte(out), &ms); err != nil || ms.MemberID != "m1" || strings.Count(out, "\n") != 1 {
		t.Fatalf("tail --json: %v %q", err, out)
	}

	// --wait: a processor stand-in answers the command.
	nc := env.Conn()
	sub, err := nc.Subscribe(env.Subjects.Command(messages.CmdGenerateReport), func(m *nats.Msg) {
		publish(&messages.ReportGenerated{EventMeta: messages.EventMeta{CommandID: m.Header.Get(nats.MsgIdHdr), OccurredAt: time.Now()}, TotalGroups: 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// The stand-in's subscription must reach the server before groupctl
	// publishes on its own connection.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	out = mustGroupctl(t, env, "send", "report", "--id", "rep-1", "--wait", "--timeout", "20s")
	if !strings.HasPrefix(out, "rep-1\n") || !strings.Contains(out, "report_generated") || !strings.Contains(out, `"totalGroups": 7`) {
		t.Fatalf("wait:\n%s", out)
	}
	// Sent again within the duplicate window: answered from the stream.
	out = mustGroupctl(t, env, "send", "report", "--id", "rep-1", "--wait", "--timeout", "5s")
	if !strings.Contains(out, "report_generated") {
		t.Fatalf("duplicate wait:\n%s", out)
	}
}

func TestDLQVerbs(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx := context.Background()
	for i, reason := range []string{"wix: 404 NOT_FOUND group g1", "wix: 400 INVALID_ARGUMENT", "boom"} {
		e := &dlq.Entry{CommandType: messages.CmdGenerateReport, CommandID: "rep-" + string(rune('a'+i)), Kind: messages.FailurePermanent,
			Reason: reason, OriginalSubject: env.Subjects.Command(messages.CmdGenerateReport), Deliveries: i + 1,
			FirstFailure: time.Now(), LastFailure: time.Now(), Body: []byte(`{"top":1}`)}
		wm := e.Message()
		m := nats.NewMsg(env.Subjects.DLQ(e.CommandType))
		m.Data = e.Body
		for k := range wm.Metadata {
			m.Header.Set(k, wm.Metadata.Get(k))
		}
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	out := mustGroupctl(t, env, "dlq", "ls", "--reason-contains", "wix:", "--since", "1h")
	if strings.Count(out, "\n") != 3 || strings.Contains(out, "boom") {
		t.Fatalf("ls:\n%s", out)
	}
	var list []dlq.Entry
	if err := json.Unmarshal([]byte(mustGroupctl(t, env, "dlq", "ls", "--json", "--command", "generate_report")), &list); err != nil || len(list) != 3 {
		t.Fatalf("ls --json: %v %v", err, list)
	}
	if _, _, err := groupctl(t, env, "", "dlq", "replay"); err == nil {
		t.Fatal("replay without selector")
	}
	if _, _, err := groupctl(t, env, "", "dlq", "ls", "--command", "nope"); err == nil {
		t.Fatal("unknown command type accepted")
	}
	// Purge: not a terminal → needs --yes.
	if _, _, err := groupctl(t, env, "", "dlq", "purge", "--reason-contains", "boom"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("purge without --yes: %v", err)
	}
	if out := mustGroupctl(t, env, "dlq", "purge", "--reason-contains", "boom", "--yes"); out != "purged 1\n" {
		t.Fatalf("purge: %q", out)
	}
	// On a terminal it asks.
	var stdout, stderr bytes.Buffer
	a := newApp(strings.NewReader("n\n"), &stdout, &stderr)
	a.terminal = func(any) bool { return true }
	root := a.rootCmd()
	root.SetArgs([]string{"--nats-url", env.Server.URL, "dlq", "purge", "--all"})
	if err := root.ExecuteContext(ctx); err != nil || !strings.Contains(stderr.String(), "Delete 2 dead letter(s) for good? [y/N]") || !strings.Contains(stdout.String(), "cancelled") {
		t.Fatalf("confirm: %v %s %s", err, stdout.String(), stderr.String())
	}
	a.close()
	if n := len(env.DeadLetters()); n != 2 {
		t.Fatalf("%d left", n)
	}
	// Replay with a progress bar on a "terminal".
	stdout.Reset()
	stderr.Reset()
	a = newApp(strings.NewReader(""), &stdout, &stderr)
	a.terminal = func(any) bool { return true }
	root = a.rootCmd()
	root.SetArgs([]string{"--nats-url", env.Server.URL, "dlq", "replay", "--all"})
	if err := root.ExecuteContext(ctx); err != nil || !strings.HasPrefix(stdout.String(), "replayed 2, skipped 0, failed 0") {
		t.Fatalf("replay: %v %s %s", err, stdout.String(), stderr.String())
	}
	a.close()
	if _, _, err := groupctl(t, env, "", "dlq", "show", "1"); err == nil || !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("show purged: %v", err)
	}
}

func TestStatusUnknownAndReport(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	if _, _, err := groupctl(t, env, "", "status", "nope"); err == nil {
		t.Fatal("unknown command found")
	}
	obj, err := env.JS.ObjectStore(context.Background(), "GROUPFLOW_REPORTS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(context.Background(), "rep-1.csv", []byte("group,members\nYoga,3\n")); err != nil {
		t.Fatal(err)
	}
	if out := mustGroupctl(t, env, "report", "get", "rep-1", "--format", "csv"); out != "group,members\nYoga,3\n" {
		t.Fatalf("report: %q", out)
	}
	path := filepath.Join(t.TempDir(), "r.csv")
	mustGroupctl(t, env, "report", "get", "rep-1", "--format", "csv", "-o", path)
	if b, _ := os.ReadFile(path); string(b) != "group,members\nYoga,3\n" {
		t.Fatalf("file: %q", b)
	}
	if _, _, err := groupctl(t, env, "", "report", "get", "rep-2", "--format", "html"); err == nil {
		t.Fatal("missing report found")
	}
}

// TestInboxPrefix: with --inbox-prefix (or GROUPCTL_INBOX_PREFIX) every
// reply groupctl gets, here the chunks of a report, travels on that prefix
// and none on the default _INBOX, so per-user inbox permissions
// (deploy/nats/accounts.conf) can keep other users from reading them.
func TestInboxPrefix(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	const marker = "inbox-prefix-marker"
	obj, err := env.JS.ObjectStore(context.Background(), "GROUPFLOW_REPORTS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(context.Background(), "rep-1.csv", []byte("group,members\n"+marker+",3\n")); err != nil {
		t.Fatal(err)
	}
	spyNC, err := nats.Connect(env.Server.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer spyNC.Close()
	spy := func(subject string) *nats.Subscription {
		s, err := spyNC.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// sawMarker drains sub and reports whether a message carried the report.
	sawMarker := func(sub *nats.Subscription) bool {
		seen := false
		for {
			m, err := sub.NextMsg(300 * time.Millisecond)
			if err != nil {
				return seen
			}
			if bytes.Contains(m.Data, []byte(marker)) {
				seen = true
			}
		}
	}
	defaultInbox, flagInbox, envInbox := spy("_INBOX.>"), spy("_INBOX_ops.>"), spy("_INBOX_ops_env.>")
	if err := spyNC.Flush(); err != nil {
		t.Fatal(err)
	}

	if out := mustGroupctl(t, env, "--inbox-prefix", "_INBOX_ops", "report", "get", "rep-1", "--format", "csv"); !strings.Contains(out, marker) {
		t.Fatalf("report: %q", out)
	}
	if !sawMarker(flagInbox) {
		t.Error("--inbox-prefix _INBOX_ops: the report did not arrive on _INBOX_ops.>")
	}
	t.Setenv("GROUPCTL_INBOX_PREFIX", "_INBOX_ops_env")
	if out := mustGroupctl(t, env, "report", "get", "rep-1", "--format", "csv"); !strings.Contains(out, marker) {
		t.Fatalf("report: %q", out)
	}
	if !sawMarker(envInbox) {
		t.Error("GROUPCTL_INBOX_PREFIX=_INBOX_ops_env: the report did not arrive on _INBOX_ops_env.>")
	}
	if sawMarker(defaultInbox) {
		t.Error("with an inbox prefix, the report still travelled on _INBOX.>")
	}
	if _, _, err := groupctl(t, env, "", "--inbox-prefix", "bad.>", "dlq", "ls"); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("invalid inbox prefix: %v", err)
	}
}
