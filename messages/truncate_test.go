package messages

import (
	"encoding/json"
	"reflect"
	"testing"
)

// boundedEvents are the event types that need no truncation: their lists
// are bounded by Validate's limits (CampaignCompleted.GroupIDs by
// MaxGroupIDs, CommandFailed.Fields by the command's own lists) or hold one
// member (MemberSelected, whose echoed fields are checked before any work:
// Echoer), or they have no list.
var boundedEvents = map[string]bool{
	EvtMemberSelected: true, EvtCampaignCompleted: true, EvtCommandFailed: true, EvtEmailSent: true, EvtEmailFailed: true,
}

// TestEveryUnboundedEventIsTruncatable keeps the list of Truncatable events
// complete: an event type is either truncatable or declared bounded.
func TestEveryUnboundedEventIsTruncatable(t *testing.T) {
	for _, et := range EventTypes() {
		e, _ := NewEvent(et)
		_, ok := e.(Truncatable)
		if ok == boundedEvents[et] {
			t.Errorf("%s: Truncatable %v, declared bounded %v", et, ok, boundedEvents[et])
		}
	}
}

// TestTruncatedEventsMatchTheSpec: a truncated copy of each sample event
// keeps the first entries, carries the totals, truncated and full, is
// accepted by the AsyncAPI schema and round-trips; the original is unchanged.
func TestTruncatedEventsMatchTheSpec(t *testing.T) {
	s := loadSpec(t)
	full := OutcomeRef{Bucket: OutcomesBucket, Object: "x.cmd-1.json"}
	for _, e := range sampleEvents() {
		te, ok := e.(Truncatable)
		if !ok {
			continue
		}
		before, _ := json.Marshal(e)
		lists := te.Lists()
		for _, keep := range [][]int{{0, 0, 0, 0}, {1, 0, 0, 0}, {1, 1, 1, 1}, {5, 5, 5, 5}} {
			got := te.KeepFirst(keep[:len(lists)], full)
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateJSON(t, s.schema(t, "components/schemas/"+camel(e.EventType())), b); err != nil {
				t.Errorf("%s %s rejected: %v", e.EventType(), b, err)
			}
			back, err := DecodeEvent(e.EventType(), b)
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("%s does not round-trip: %v\n%+v\n%+v", e.EventType(), err, back, got)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["truncated"] != true || m["full"] == nil {
				t.Errorf("%s: %s", e.EventType(), b)
			}
			for i, l := range got.Lists() {
				if want := min(keep[i], lists[i].Len); l.Len != want {
					t.Errorf("%s.%s keeps %d, want %d", e.EventType(), l.Field, l.Len, want)
				}
				if lists[i].Len > 0 && m[l.Field+"Total"] != float64(lists[i].Len) {
					t.Errorf("%s.%sTotal = %v, want %d", e.EventType(), l.Field, m[l.Field+"Total"], lists[i].Len)
				}
			}
		}
		if after, _ := json.Marshal(e); string(after) != string(before) {
			t.Errorf("%s: KeepFirst modified the original", e.EventType())
		}
	}
}

// TestSendCampaignEchoSize: the echo counts content, campaign id, group ids
// and keywords as a member_selected encodes them.
func TestSendCampaignEchoSize(t *testing.T) {
	c := &SendCampaign{CampaignID: "spring", GroupIDs: []string{"g1", "g2"}, Audience: Audience{Keywords: []string{"yoga"}},
		Content: json.RawMessage(`{ "templateId" : "t" }`)}
	field, n := c.EchoSize()
	ms, _ := json.Marshal(&MemberSelected{CampaignID: c.CampaignID, GroupIDs: c.GroupIDs, MatchedKeywords: c.Audience.Keywords, Content: c.Content})
	bare, _ := json.Marshal(&MemberSelected{})
	// The member_selected grows by the echo, less the empty campaignId and
	// groupIds it holds anyway.
	if grown := len(ms) - len(bare); field != "content" || n < grown || n > grown+len(`{"campaignId":"","groupIds":null}`) {
		t.Errorf("EchoSize = %s %d; the event grows by %d", field, n, grown)
	}
}
