package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/testutil"
	"groupflow/messages"
)

// TestOversizedOutcomeIsOneTruncatedEvent is issue 12 item 4's
// reproduction: against a broker whose payload limit is 1 MiB, a
// 10,000-row provision_group roster whose rows match nobody and carry long
// refs has a notAdded list far bigger than one message. The command must
// still complete with exactly one group_provisioned event that fits, not be
// retried as transient until it is dead-lettered as exhausted.
func TestOversizedOutcomeIsOneTruncatedEvent(t *testing.T) {
	const limit = 1 << 20
	a := startApp(t, "--max-payload-mb", "1", "--max-deliver", "2")
	nc, js := testutil.JetStream(t, a.NATSURL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const rows = messages.MaxPeople
	people := make([]messages.Person, rows)
	for i := range people {
		people[i] = messages.Person{Email: fmt.Sprintf("nobody-%05d@example.com", i), Ref: fmt.Sprintf("crm-%05d-", i) + strings.Repeat("x", 40)}
	}
	body, _ := json.Marshal(map[string]any{"id": "big-outcome", "group": map[string]any{"name": "Big roster"}, "people": people})
	if len(body) > limit-4096 {
		t.Fatalf("test roster is %d bytes: it must fit in one command", len(body))
	}

	sub, err := nc.SubscribeSync("groups.evt.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "groups.cmd.provision_group", body); err != nil {
		t.Fatal(err)
	}
	var got *nats.Msg
	for got == nil {
		m, err := sub.NextMsg(2 * time.Minute)
		if err != nil {
			t.Fatalf("no outcome event: %v", err)
		}
		if m.Header.Get("Groupflow-Command-Id") != "big-outcome" {
			continue
		}
		switch m.Subject {
		case "groups.evt.command_failed":
			t.Fatalf("command failed instead of completing: %s", m.Data)
		case "groups.evt.group_provisioned":
			got = m
		}
	}
	size := len(got.Data)
	for k, vs := range got.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > limit {
		t.Fatalf("event takes %d bytes, over the %d limit", size, limit)
	}
	var ev messages.GroupProvisioned
	if err := json.Unmarshal(got.Data, &ev); err != nil {
		t.Fatal(err)
	}
	t.Logf("event %d bytes (%d with headers), notAdded %d of %d", len(got.Data), size, len(ev.NotAdded), ev.NotAddedTotal)
	if ev.GroupID == "" || ev.Added != 0 || !ev.Truncated || ev.NotAddedTotal != rows || len(ev.NotAdded) == 0 || len(ev.NotAdded) >= rows {
		t.Fatalf("event: group %q added %d truncated %v notAdded %d of %d", ev.GroupID, ev.Added, ev.Truncated, len(ev.NotAdded), ev.NotAddedTotal)
	}
	for i, o := range ev.NotAdded {
		if o.Row != i+1 || o.Ref != people[i].Ref || o.Reason != messages.ReasonNotFound {
			t.Fatalf("notAdded[%d] = %+v: not the roster's row %d", i, o, i)
		}
	}
	if ev.Full == nil || ev.Full.Bucket != messages.OutcomesBucket || ev.Full.Object != "provision_group.big-outcome.json" {
		t.Fatalf("full = %+v", ev.Full)
	}

	// The full outcome is in the object store: every row, in order.
	obs, err := js.ObjectStore(ctx, ev.Full.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obs.GetBytes(ctx, ev.Full.Object)
	if err != nil {
		t.Fatal(err)
	}
	var full messages.GroupProvisioned
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	if full.Truncated || len(full.NotAdded) != rows || full.GroupID != ev.GroupID || full.EventID() != ev.EventID() {
		t.Fatalf("stored outcome: truncated %v, notAdded %d, group %q", full.Truncated, len(full.NotAdded), full.GroupID)
	}
	for i, o := range full.NotAdded {
		if o.Row != i+1 || o.Ref != people[i].Ref {
			t.Fatalf("stored notAdded[%d] = %+v", i, o)
		}
	}

	// Exactly one event for the command in the stream, and no dead letter.
	for _, s := range []struct{ stream, subject string }{{"GROUPS_EVENTS", "groups.evt.>"}, {"GROUPS_DLQ", "groups.dlq.>"}} {
		st, err := js.Stream(ctx, s.stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.subject))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{}
		if s.stream == "GROUPS_EVENTS" {
			want["groups.evt.group_provisioned"] = 1
		}
		if len(info.State.Subjects) != len(want) || info.State.Subjects["groups.evt.group_provisioned"] != want["groups.evt.group_provisioned"] {
			t.Errorf("%s holds %v, want %v", s.stream, info.State.Subjects, want)
		}
	}
}
