package messages

import "encoding/json"

// EchoReserve is the room, in bytes, that an event echoing a command's fields
// (Echoer) keeps for everything else it carries: its meta and CloudEvents
// headers, and the fields read from Wix (a member's ids, email and names).
const EchoReserve = 16 << 10

// Echoer is implemented by commands whose fields are copied as they are into
// events that cannot be truncated: SendCampaign's content, campaign id, group
// ids and keywords go into every MemberSelected. Such a command is refused,
// before any Wix call, when the copies could never fit in one message (the
// broker's max payload less EchoReserve). Lists that only completion events
// echo need no such check: completion events are truncated to fit (see
// Truncation).
type Echoer interface {
	Command
	// EchoSize returns the field to blame and the bytes the echoed fields
	// take in the JSON body of one event.
	EchoSize() (field string, size int)
	// EchoEvent names the event type that carries the copies.
	EchoEvent() string
}

// EchoSize implements Echoer: the encoding of content, campaignId, groupIds
// and keywords (a member_selected holds a subset of the last two).
func (c *SendCampaign) EchoSize() (string, int) {
	b, err := json.Marshal(struct {
		CampaignID string          `json:"campaignId"`
		GroupIDs   []string        `json:"groupIds"`
		Keywords   []string        `json:"matchedKeywords,omitempty"`
		Content    json.RawMessage `json:"content,omitempty"`
	}{c.CampaignID, c.GroupIDs, c.Audience.Keywords, c.Content})
	if err != nil {
		// Content that does not encode was refused by Validate.
		return "content", len(c.Content)
	}
	return "content", len(b)
}

// EchoEvent implements Echoer.
func (*SendCampaign) EchoEvent() string { return EvtMemberSelected }
