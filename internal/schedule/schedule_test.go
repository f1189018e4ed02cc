package schedule

import (
	"groupflow/messages"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestSpecCheck(t *testing.T) {
	at := time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		spec    Spec
		pattern string
		err     string
	}{
		{"weekly cron in Berlin", Spec{Kind: "report", Name: "weekly", Cron: "0 0 8 * * MON", TimeZone: "Europe/Berlin", Body: []byte(`{"allGroups":true}`)}, "0 0 8 * * MON", ""},
		{"every", Spec{Kind: "report", Name: "e", Every: 90 * time.Second, Body: []byte(`{}`)}, "@every 1m30s", ""},
		{"at", Spec{Kind: "campaign", Name: "spring", At: at, Body: []byte(`{"campaignId":"spring","groupIds":["g"],"content":{"templateId":"t"}}`)}, "@at 2027-01-10T09:00:00Z", ""},
		{"at with tz", Spec{Kind: "report", Name: "x", At: at, TimeZone: "Europe/Berlin", Body: []byte(`{}`)}, "", "@at takes no time zone"},
		{"every with tz", Spec{Kind: "report", Name: "x", Every: time.Minute, TimeZone: "UTC", Body: []byte(`{}`)}, "", "@every takes no time zone"},
		{"every too short", Spec{Kind: "report", Name: "x", Every: time.Millisecond, Body: []byte(`{}`)}, "", "at least 1s"},
		{"5-field cron", Spec{Kind: "report", Name: "x", Cron: "0 8 * * MON", Body: []byte(`{}`)}, "", "6 fields"},
		{"bad tz", Spec{Kind: "report", Name: "x", Cron: "0 0 8 * * MON", TimeZone: "Mars/Base", Body: []byte(`{}`)}, "", "IANA"},
		{"two patterns", Spec{Kind: "report", Name: "x", Cron: "0 0 8 * * MON", Every: time.Hour, Body: []byte(`{}`)}, "", "exactly one"},
		{"body with id", Spec{Kind: "report", Name: "x", Every: time.Hour, Body: []byte(`{"id":"r-1"}`)}, "", `no "id"`},
		{"invalid body", Spec{Kind: "report", Name: "x", Every: time.Hour, Body: []byte(`{"top":-1}`)}, "", "top"},
		{"bad name", Spec{Kind: "report", Name: "a.b", Every: time.Hour, Body: []byte(`{}`)}, "", "name"},
		{"bad kind", Spec{Kind: "provision", Name: "a", Every: time.Hour, Body: []byte(`{}`)}, "", "unknown kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p, err := tc.spec.Check()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || p != tc.pattern {
				t.Fatalf("pattern %q err %v, want %q", p, err, tc.pattern)
			}
		})
	}
}

func TestFiredID(t *testing.T) {
	h := func(scheduler, nonce, next string) nats.Header {
		return nats.Header{HeaderScheduler: {scheduler}, HeaderNonce: {nonce}, HeaderNext: {next}}
	}
	a := messages.FiredCommandID(h("groups.schedule.report.weekly", "n1", "2026-12-14T07:00:00Z"))
	if !strings.HasPrefix(a, "sched-weekly-") || len(a) != len("sched-weekly-")+24 {
		t.Fatalf("id %q", a)
	}
	if a != messages.FiredCommandID(h("groups.schedule.report.weekly", "n1", "2026-12-14T07:00:00Z")) {
		t.Error("the same fire gives another id")
	}
	for _, other := range []nats.Header{
		h("groups.schedule.report.weekly", "n1", "2026-12-21T07:00:00Z"), // next fire
		h("groups.schedule.report.weekly", "n2", "2026-12-14T07:00:00Z"), // schedule re-created
		h("groups.schedule.campaign.weekly", "n1", "2026-12-14T07:00:00Z"),
	} {
		if messages.FiredCommandID(other) == a {
			t.Errorf("%v gives the same id", other)
		}
	}
	if messages.FiredCommandID(nats.Header{}) != "" || messages.FiredCommandID(nats.Header(nil)) != "" {
		t.Error("a message not fired by a schedule got a fired id")
	}
}
