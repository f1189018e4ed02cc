package messages

import (
	"encoding/json"
	"errors"
)

// PeekMeta reads a command body's top-level "id", "siteId" and
// "correlationId" in one pass, without decoding or validating the command:
// for the consumer runtime, which needs them (for the command id, the
// admission ticket, logs and the ledger) before Decode, or when Decode
// fails. A field that is absent or not a JSON string, or every field of a
// body that is not a JSON object, reads "". Keys match as Decode matches
// them (encoding/json's struct rules: case-insensitive, the last duplicate
// wins), so the values peeked are the ones Decode sees.
//
// Cost: one scan of body, one allocation per field found (a per-field peek
// into a map[string]json.RawMessage costs a full parse and an allocation per
// top-level key for every field asked).
func PeekMeta(body []byte) CommandMeta {
	var m struct {
		ID            string `json:"id"`
		SiteID        string `json:"siteId"`
		CorrelationID string `json:"correlationId"`
	}
	// A field of the wrong type is left "" and the others are still read
	// (encoding/json's contract); any other error means no object.
	if err := json.Unmarshal(body, &m); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return CommandMeta{}
		}
	}
	return CommandMeta{ID: m.ID, SiteID: m.SiteID, CorrelationID: m.CorrelationID}
}
