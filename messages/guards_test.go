package messages

import (
	"errors"
	"strings"
	"testing"
)

// TestGuardFlags: the explicit flags that allow destructive commands
// (allowMassRemoval, allowEmpty) are accepted only where they mean
// something, an empty sync roster needs allowMassRemoval, and Validate and
// the schema agree on each case.
func TestGuardFlags(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		name, typ, body string
		field, msg      string // "" when valid
	}{
		{"sync with an empty roster", CmdProvisionGroup,
			`{"group":{"name":"G"},"membership":"sync"}`, "people", "allowMassRemoval:true"},
		{"sync with people []", CmdProvisionGroup,
			`{"group":{"name":"G"},"membership":"sync","people":[]}`, "people", "allowMassRemoval:true"},
		{"sync with an empty roster, allowed", CmdProvisionGroup,
			`{"group":{"name":"G"},"membership":"sync","allowMassRemoval":true}`, "", ""},
		{"sync with a roster", CmdProvisionGroup,
			`{"group":{"name":"G"},"membership":"sync","people":[{"email":"a@example.com"}]}`, "", ""},
		{"allowMassRemoval without sync", CmdProvisionGroup,
			`{"group":{"name":"G"},"people":[{"email":"a@example.com"}],"allowMassRemoval":true}`, "allowMassRemoval", "only allowed with membership sync"},
		{"add with an empty roster", CmdProvisionGroup,
			`{"group":{"name":"G"}}`, "", ""},
		{"allowEmpty from a source", CmdPropagateRules,
			`{"sourceGroupId":"s","targets":{"all":true},"allowEmpty":true}`, "", ""},
		{"allowEmpty with rules given", CmdPropagateRules,
			`{"rules":[{"title":"R"}],"targets":{"all":true},"allowEmpty":true}`, "allowEmpty", "only allowed when the rules come from sourceGroupId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.typ, []byte(tt.body))
			schemaErr := validateJSON(t, s.schema(t, "components/schemas/"+camel(tt.typ)), []byte(tt.body))
			if tt.field == "" {
				if err != nil || schemaErr != nil {
					t.Fatalf("rejected: Validate %v, schema %v", err, schemaErr)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: %v, want a ValidationError", err)
			}
			found := false
			for _, f := range ve.Fields {
				found = found || (f.Field == tt.field && strings.Contains(f.Message, tt.msg))
			}
			if !found {
				t.Fatalf("Validate: %v, want %s: …%s…", err, tt.field, tt.msg)
			}
			if schemaErr == nil {
				t.Fatal("the schema accepts a body Validate rejects")
			}
		})
	}
}
