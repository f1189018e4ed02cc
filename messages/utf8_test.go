package messages

import (
	"errors"
	"testing"
)

// TestDecodeRefusesInvalidUTF8: encoding/json replaces invalid UTF-8 with
// U+FFFD without an error, so a body that is not UTF-8 would reach Wix as a
// mangled name; it is malformed, with the offset of the first bad byte.
func TestDecodeRefusesInvalidUTF8(t *testing.T) {
	body := []byte("{\"group\":{\"name\":\"Bad \xff\xfe name\"}}")
	_, err := Decode(CmdProvisionGroup, body)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode = %v, want a *DecodeError", err)
	}
	if de.Offset != 22 {
		t.Errorf("offset %d, want 22 (the first invalid byte)", de.Offset)
	}
	if !isPermanent(err) {
		t.Errorf("not permanent: %v", err)
	}
	// Valid multi-byte UTF-8 is fine.
	if _, err := Decode(CmdProvisionGroup, []byte(`{"group":{"name":"Café Müller 日本"}}`)); err != nil {
		t.Errorf("valid UTF-8 refused: %v", err)
	}
}
