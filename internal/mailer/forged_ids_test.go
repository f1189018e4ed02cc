package mailer_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"groupflow/internal/mailer"
	"groupflow/internal/mailer/mailpittest"
	"groupflow/messages"
)

// TestEventWithOversizeIDsIsRefusedAtOnce: a member_selected event's
// campaign and member ids name its send record; an event (forged, or from
// a buggy producer) whose id is oversize or holds control characters would
// make a record key no KV accepts, failing as a broker error on every
// delivery and logging the id in full each time. It is malformed: dead-
// lettered on its first delivery with a reason naming the field, no mail.
func TestEventWithOversizeIDsIsRefusedAtOnce(t *testing.T) {
	h := newHarness(t)
	mp := mailpittest.Start(t, 0)
	h.start(mailer.SMTPConfig{Port: mp.SMTPPort}, nil, nil)
	cases := map[string]*messages.MemberSelected{
		"memberId":   member("c-forged", 1, offerJSON),
		"campaignId": member("c-forged", 2, offerJSON),
	}
	cases["memberId"].MemberID = strings.Repeat("m", 300_000)
	cases["campaignId"].CampaignID = "c\nforged"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ev := range cases {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.env.JS.Publish(ctx, h.env.Subjects.Event(messages.EvtMemberSelected), b); err != nil {
			t.Fatal(err)
		}
	}
	h.waitDrained(waitNormal)
	dead := h.env.DeadLetters()
	if len(dead) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(cases))
	}
	for _, d := range dead {
		field := "memberId"
		if !strings.Contains(d.Reason, field) {
			field = "campaignId"
		}
		if d.Deliveries != 1 || !strings.Contains(d.Reason, field) || len(d.Reason) > 1000 || len(d.CommandID) > messages.MaxIDLen {
			t.Errorf("dead letter: deliveries %d, reason %.200q (%d bytes), id %d bytes; want one delivery, a short reason naming the field",
				d.Deliveries, d.Reason, len(d.Reason), len(d.CommandID))
		}
	}
	if n := mp.Count(); n != 0 {
		t.Fatalf("%d messages sent, want none", n)
	}
}
