package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// fuzzTypes maps the fuzzer's type byte to a command type; the last entry is unknown.
var fuzzTypes = append(CommandTypes(), "not_a_command")

// FuzzDecode checks that Decode never panics, returns only the documented
// permanent errors, and that an accepted command re-encodes to a body that
// decodes to an equal command.
func FuzzDecode(f *testing.F) {
	for _, ex := range loadExamples(f) {
		for i, ct := range fuzzTypes {
			if ct == ex.commandType {
				f.Add(uint8(i), ex.body)
			}
		}
	}
	for _, tc := range validationCases() {
		if len(tc.body) < 2000 {
			for i, ct := range fuzzTypes {
				if ct == tc.typ {
					f.Add(uint8(i), []byte(tc.body))
				}
			}
		}
	}
	f.Add(uint8(len(fuzzTypes)-1), []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		ct := fuzzTypes[int(typ)%len(fuzzTypes)]
		cmd, err := Decode(ct, body)
		if err != nil {
			var ve *ValidationError
			var de *DecodeError
			var ue *UnknownCommandError
			if !errors.As(err, &ve) && !errors.As(err, &de) && !errors.As(err, &ue) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			if !isPermanent(err) {
				t.Fatalf("error is not permanent: %v", err)
			}
			_ = err.Error()
			return
		}
		if cmd.CommandType() != ct {
			t.Fatalf("type %q, want %q", cmd.CommandType(), ct)
		}
		again, err := json.Marshal(cmd)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		cmd2, err := Decode(ct, again)
		if err != nil {
			t.Fatalf("re-encoded command rejected: %v\nbody: %q\nre-encoded: %s", err, body, again)
		}
		if !equalCommands(t, cmd, cmd2) {
			t.Fatalf("round trip changed the command\nfirst:  %#v\nsecond: %#v", cmd, cmd2)
		}
	})
}

// equalCommands compares commands, SendCampaign.Content by JSON value (the
// encoder compacts and HTML-escapes raw JSON).
func equalCommands(t *testing.T, a, b Command) bool {
	sa, ok1 := a.(*SendCampaign)
	sb, ok2 := b.(*SendCampaign)
	if ok1 && ok2 {
		ca, cb := *sa, *sb
		if !jsonEqual(t, ca.Content, cb.Content) {
			return false
		}
		ca.Content, cb.Content = nil, nil
		return reflect.DeepEqual(ca, cb)
	}
	return reflect.DeepEqual(a, b)
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		t.Fatalf("content is not JSON: %s / %s", a, b)
	}
	return reflect.DeepEqual(va, vb)
}
