package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MaxCommandBytes bounds the size of a command body accepted by Decode.
const MaxCommandBytes = 8 << 20

// CommandMeta is embedded in every command; its fields sit at the top level of
// the JSON body.
type CommandMeta struct {
	// ID identifies the command and makes its completion event idempotent. It
	// comes from the body's "id", else the Groupflow-Command-Id or
	// Nats-Msg-Id header, else the runtime generates one. It is not required
	// in the body. At most MaxIDLen characters, no whitespace or control
	// characters (see IDProblem), not starting with InvalidCommandIDPrefix
	// (reserved, see CommandIDProblem), wherever it comes from: a command
	// with an invalid id is dead-lettered as invalid under InvalidCommandID(id).
	ID string `json:"id,omitempty"`
	// SiteID names the Wix site to act on; empty means the service's default
	// site. At most MaxSiteIDLen characters of SiteIDChars (see SiteIDProblem).
	SiteID string `json:"siteId,omitempty"`
	// CorrelationID is an opaque producer value echoed on every resulting
	// event; it comes from the body, else the correlation header, else it is
	// the command id. At most MaxCorrelationIDLen characters, no control
	// characters (see CorrelationIDProblem); an invalid one is replaced by
	// the command id on the command_failed event that reports it.
	CorrelationID string `json:"correlationId,omitempty"`
}

// UnknownCommandType names, in dead letters (their DLQ subject is
// Subjects.DLQ(UnknownCommandType)), command_failed events, the ledger and
// metrics, every command whose type is not one of the contract: the raw
// type, which can be as long as a subject, is only quoted (clipped) in the
// reason. It is not a command type, so its dead letters are never replayed.
const UnknownCommandType = "unknown"

// InvalidCommandIDPrefix starts the ids InvalidCommandID derives.
const InvalidCommandIDPrefix = "invalid-"

// InvalidCommandID derives the id under which a command whose own id is
// invalid (see IDProblem) is dead-lettered and announced: "invalid-" and 24
// hex digits of the SHA-256 of id. The same id always gives the same
// derived id, so redeliveries and copies of the command share one ledger
// record. An id that already has the derived form is returned unchanged,
// so a replayed dead letter keeps the id it was stored under.
func InvalidCommandID(id string) string {
	if isDerivedID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return InvalidCommandIDPrefix + hex.EncodeToString(sum[:12])
}

// isDerivedID reports whether id has the form InvalidCommandID gives:
// InvalidCommandIDPrefix and 24 lower-case hex digits.
func isDerivedID(id string) bool {
	h, ok := strings.CutPrefix(id, InvalidCommandIDPrefix)
	if !ok || len(h) != 24 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// Meta returns m itself, so that every command exposes its metadata for the
// runtime to fill in (e.g. the ID).
func (m *CommandMeta) Meta() *CommandMeta { return m }

// Command is implemented by every command struct (as a pointer).
type Command interface {
	// CommandType returns the command's type, e.g. CmdProvisionGroup.
	CommandType() string
	// Meta returns the command's metadata, which the caller may modify.
	Meta() *CommandMeta
	// Validate checks the command; empty fields that have a default are
	// valid. It returns nil or a *ValidationError.
	Validate() error
}

// NewCommand returns a new zero command of type t (e.g. &ProvisionGroup{}),
// or nil and false for an unknown type.
func NewCommand(t string) (Command, bool) {
	switch t {
	case CmdProvisionGroup:
		return &ProvisionGroup{}, true
	case CmdSendCampaign:
		return &SendCampaign{}, true
	case CmdSetMembershipQuestions:
		return &SetMembershipQuestions{}, true
	case CmdPropagateRules:
		return &PropagateRules{}, true
	case CmdGenerateReport:
		return &GenerateReport{}, true
	}
	return nil, false
}

// defaulter is implemented by commands with default values.
type defaulter interface{ applyDefaults() }

// Decode parses body as a command of type commandType (the last token of its
// subject), applies the defaults and validates it.
//
// Errors, all permanent (Permanent() == true, retrying cannot help):
//   - *UnknownCommandError when commandType is not a known command type;
//   - *DecodeError when body is not valid UTF-8, or not a JSON object of the
//     right shape;
//   - *ValidationError when a field is invalid (see FieldError paths).
//
// Unknown JSON fields are ignored, so producers may send newer fields to an
// older service. The body's "id" is optional.
func Decode(commandType string, body []byte) (Command, error) {
	cmd, ok := NewCommand(commandType)
	if !ok {
		return nil, &UnknownCommandError{CommandType: commandType}
	}
	if len(body) > MaxCommandBytes {
		return nil, &DecodeError{CommandType: commandType, Offset: -1,
			Err: fmt.Errorf("body is %d bytes, more than %d", len(body), MaxCommandBytes)}
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &DecodeError{CommandType: commandType, Offset: -1, Err: errors.New("body is empty, want a JSON object")}
	}
	if trimmed[0] != '{' {
		return nil, &DecodeError{CommandType: commandType, Offset: int64(len(body) - len(trimmed)), Expected: "object",
			Got: jsonKind(trimmed[0]), Err: errors.New("body is not a JSON object")}
	}
	if bad := invalidUTF8At(body); bad >= 0 {
		// encoding/json would silently turn the bytes into U+FFFD.
		return nil, &DecodeError{CommandType: commandType, Offset: int64(bad), Err: errors.New("body is not valid UTF-8")}
	}
	if err := json.Unmarshal(body, cmd); err != nil {
		return nil, newDecodeError(commandType, err)
	}
	if d, ok := cmd.(defaulter); ok {
		d.applyDefaults()
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// invalidUTF8At returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

func jsonKind(b byte) string {
	switch {
	case b == '"':
		return "string"
	case b == '[':
		return "array"
	case b == 't' || b == 'f':
		return "boolean"
	case b == 'n':
		return "null"
	case b == '-' || (b >= '0' && b <= '9'):
		return "number"
	}
	return "invalid JSON"
}

// UnknownCommandError reports a command type that this version of the
// contract does not know.
type UnknownCommandError struct {
	// CommandType is the unknown type.
	CommandType string
}

// Error implements error.
// The type is quoted clipped to 200 characters: it comes from a subject
// token of any length.
func (e *UnknownCommandError) Error() string {
	return fmt.Sprintf("unknown command type %.200q (known: %s)", e.CommandType, strings.Join(commandTypes, ", "))
}

// Permanent reports true: an unknown command is dead-lettered at once.
func (e *UnknownCommandError) Permanent() bool { return true }

// DecodeError reports a body that is not JSON, or JSON of the wrong shape
// (e.g. a string where an array is expected).
type DecodeError struct {
	// CommandType is the type the body was decoded as.
	CommandType string
	// Offset is the byte offset in the body where the problem was found, or
	// -1 when unknown.
	Offset int64
	// Field is the dotted JSON path of a value of the wrong type (array
	// indexes are not included, e.g. "people.email"), or "".
	Field string
	// Expected is the JSON type wanted ("string", "number", "boolean",
	// "array", "object"), or "".
	Expected string
	// Got is the JSON type found, or "".
	Got string
	// Err is the underlying error (often a *json.SyntaxError or *json.UnmarshalTypeError).
	Err error
}

func newDecodeError(commandType string, err error) *DecodeError {
	de := &DecodeError{CommandType: commandType, Offset: -1, Err: err}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		de.Offset = se.Offset
	case errors.As(err, &te):
		de.Offset = te.Offset
		de.Field = te.Field
		de.Got = te.Value
		if de.Got == "bool" {
			de.Got = "boolean"
		}
		de.Expected = goKindToJSON(te.Type)
	}
	return de
}

func goKindToJSON(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return "any JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Pointer:
		return goKindToJSON(t.Elem())
	}
	return t.String()
}

// Error implements error, e.g. "malformed send_campaign: groupIds: want
// array, got string (byte 42)".
func (e *DecodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "malformed %s: ", e.CommandType)
	switch {
	case e.Field != "" && e.Expected != "":
		fmt.Fprintf(&b, "%s: want %s, got %s", e.Field, e.Expected, e.Got)
	case e.Expected != "":
		fmt.Fprintf(&b, "want %s, got %s", e.Expected, e.Got)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("invalid JSON")
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " (byte %d)", e.Offset)
	}
	return b.String()
}

// Unwrap returns the underlying JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Permanent reports true: a malformed command is dead-lettered at once.
func (e *DecodeError) Permanent() bool { return true }

// FieldError is one invalid field of a command.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "group.name", "people[3]",
	// "audience.keywords", "targets.groupIds[1]".
	Field string `json:"field"`
	// Message says what is wrong, e.g. "required", "at most 100 characters".
	Message string `json:"message"`
}

// String returns "field: message".
func (f FieldError) String() string { return f.Field + ": " + f.Message }

// ValidationError lists the invalid fields of a command.
type ValidationError struct {
	// CommandType is the type of the invalid command.
	CommandType string
	// Fields lists every problem found, in field order.
	Fields []FieldError
}

// maxErrorFields bounds how many fields ValidationError.Error lists.
const maxErrorFields = 10

// Error implements error, e.g. "invalid provision_group: group.name:
// required; people: at most 10000 entries".
func (e *ValidationError) Error() string {
	parts := make([]string, 0, min(len(e.Fields), maxErrorFields)+1)
	for i, f := range e.Fields {
		if i == maxErrorFields {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Fields)-maxErrorFields))
			break
		}
		parts = append(parts, f.String())
	}
	return "invalid " + e.CommandType + ": " + strings.Join(parts, "; ")
}

// Permanent reports true: an invalid command is dead-lettered at once.
func (e *ValidationError) Permanent() bool { return true }

// Field returns the message for the given field path and whether there is one.
func (e *ValidationError) Field(path string) (string, bool) {
	for _, f := range e.Fields {
		if f.Field == path {
			return f.Message, true
		}
	}
	return "", false
}
