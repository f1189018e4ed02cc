package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/testenv"
)

func TestScheduleReportCampaignLsRm(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	mustGroupctl(t, env, "schedule", "report", "weekly", "--cron", "0 0 8 * * MON", "--tz", "Europe/Berlin", "--site-id", "school")
	at := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	mustGroupctl(t, env, "schedule", "campaign", "spring", "--at", at,
		"--body", `{"campaignId":"spring","groupIds":["g1"],"content":{"templateId":"spring-offer"}}`)

	out := mustGroupctl(t, env, "schedule", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "campaign.spring\t@at "+at+"\tUTC\tgroups.fired.send_campaign.campaign.spring\t") ||
		!strings.HasPrefix(lines[1], "report.weekly\t0 0 8 * * MON\tEurope/Berlin\tgroups.fired.generate_report.report.weekly\t") ||
		!strings.Contains(lines[1], `"siteId":"school"`) || !strings.Contains(lines[1], `"allGroups":true`) {
		t.Fatalf("ls:\n%s", out)
	}

	for _, bad := range [][]string{
		{"schedule", "report", "x", "--at", at, "--tz", "Europe/Berlin"},               // @at takes no time zone
		{"schedule", "report", "x", "--cron", "0 8 * * MON"},                           // 5 fields
		{"schedule", "report", "x", "--every", "1h", "--body", `{"id":"fixed"}`},       // an id would make every fire a duplicate
		{"schedule", "report", "x", "--cron", "0 0 8 * * MON", "--tz", "Mars/Olympus"}, // unknown zone
		{"schedule", "campaign", "x", "--at", "2020-01-01T00:00:00Z", "--body", `{}`},  // past
		{"schedule", "rm", "report.nope"},
	} {
		if _, _, err := groupctl(t, env, "", bad...); err == nil {
			t.Errorf("groupctl %v succeeded", bad)
		}
	}

	mustGroupctl(t, env, "schedule", "rm", "report.weekly")
	if out := mustGroupctl(t, env, "schedule", "ls"); strings.Contains(out, "report.weekly") || !strings.Contains(out, "campaign.spring") {
		t.Fatalf("after rm:\n%s", out)
	}
}

// TestSendReportForPeople: send report carries --all-groups, --tz and the
// flag thresholds into the command; a bad zone is refused before sending.
func TestSendReportForPeople(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	mustGroupctl(t, env, "send", "report", "--id", "rep-p", "--all-groups", "--tz", "Europe/Berlin", "--large", "50", "--small", "2")
	msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command("generate_report"))
	if len(msgs) != 1 {
		t.Fatalf("%d commands", len(msgs))
	}
	for _, want := range []string{`"allGroups":true`, `"timeZone":"Europe/Berlin"`, `"largeGroup":50`, `"smallGroup":2`} {
		if !strings.Contains(string(msgs[0].Data), want) {
			t.Errorf("command %s lacks %s", msgs[0].Data, want)
		}
	}
	if _, _, err := groupctl(t, env, "", "send", "report", "--tz", "Mars/Olympus"); err == nil {
		t.Error("an unknown zone was sent")
	}
}

// TestScheduleLsEscapesControlBytes: schedule ls prints what the schedules
// stream holds (its body may be anything whoever may publish there stored)
// escaped, one line a schedule, never raw to the operator's terminal.
func TestScheduleLsEscapesControlBytes(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	mustGroupctl(t, env, "schedule", "report", "weekly", "--every", "1h")
	st, err := env.JS.Stream(t.Context(), env.Subjects.ScheduleStream())
	if err != nil {
		t.Fatal(err)
	}
	subject := env.Subjects.Schedule("report.weekly")
	orig, err := st.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	for k, vs := range orig.Header {
		m.Header[k] = vs
	}
	m.Data = []byte("{\"allGroups\":true}\x1b]0;pwned\x07\r\n\x1b[2J\u009b31m")
	if _, err := env.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := groupctl(t, env, "", "schedule", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if hasControl(strings.ReplaceAll(out, "\t", " ")) || hasControl(errOut) {
		t.Fatalf("schedule ls printed raw control bytes:\n%q\n%q", out, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `\x1b]0;pwned\a`) {
		t.Fatalf("ls:\n%q", out)
	}
}
