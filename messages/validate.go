package messages

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// fieldErrs collects field errors while validating.
type fieldErrs []FieldError

func (f *fieldErrs) add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrs) err(commandType string) error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{CommandType: commandType, Fields: f}
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func runes(s string) int { return utf8.RuneCountInString(s) }

// Messages of the character checks (FieldError.Message).
const (
	msgInvalidUTF8    = "not valid UTF-8"
	msgControlChars   = "must not contain control characters"
	msgIDChars        = "must not contain whitespace or control characters"
	msgSiteIDChars    = "only letters, digits, '.', '_' and '-' (" + SiteIDChars + ")"
	msgAtMostChars    = "at most %d characters"
	msgAtMostSiteChar = "at most %d characters of " + SiteIDChars
)

// SiteIDChars describes the characters a site id may hold, as a regular
// expression character class.
const SiteIDChars = "[A-Za-z0-9._-]"

// hasControl reports whether s holds a control character (Unicode Cc: C0,
// DEL, C1). When multiline, line feed, carriage return and tab are allowed.
func hasControl(s string, multiline bool) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			return false
		}
		return unicode.IsControl(r)
	}) >= 0
}

// textProblem returns what is wrong with the characters of a free-text
// value, or "".
func textProblem(s string, multiline bool) string {
	switch {
	case !utf8.ValidString(s):
		return msgInvalidUTF8
	case hasControl(s, multiline):
		return msgControlChars
	}
	return ""
}

// IDProblem returns "" when id may be used as an id (CommandMeta.ID, a
// campaign id, a group id), else what is wrong with it: invalid UTF-8, more
// than MaxIDLen characters, whitespace or control characters. Whether an id
// is required is the caller's business: "" has no problem here.
func IDProblem(id string) string {
	switch {
	case !utf8.ValidString(id):
		return msgInvalidUTF8
	case runes(id) > MaxIDLen:
		return fmt.Sprintf(msgAtMostChars, MaxIDLen)
	case hasSpace(id) || hasControl(id, false):
		return msgIDChars
	}
	return ""
}

// msgDotSegment is GroupIDProblem's message for "." and "..".
const msgDotSegment = "must not be \".\" or \"..\" (a group id is a URL path segment of Wix calls, and those would name another path)"

// GroupIDProblem is IDProblem for a Wix group id given in a command, which
// may in addition not be "." or "..": a group id is one segment of the path
// of Wix calls (escaped, but dot segments escape to themselves), and a dot
// segment would make "/groups/../members" a call on another resource.
func GroupIDProblem(id string) string {
	if p := IDProblem(id); p != "" {
		return p
	}
	if id == "." || id == ".." {
		return msgDotSegment
	}
	return ""
}

// CorrelationIDProblem returns "" when s may be used as
// CommandMeta.CorrelationID, else what is wrong with it: invalid UTF-8,
// more than MaxCorrelationIDLen characters, or control characters.
func CorrelationIDProblem(s string) string {
	if p := textProblem(s, false); p != "" {
		return p
	}
	if runes(s) > MaxCorrelationIDLen {
		return fmt.Sprintf(msgAtMostChars, MaxCorrelationIDLen)
	}
	return ""
}

// SiteIDProblem returns "" when s may be used as CommandMeta.SiteID ("" is
// the default site), else what is wrong with it: more than MaxSiteIDLen
// characters, or a character outside SiteIDChars.
func SiteIDProblem(s string) string {
	if len(s) > MaxSiteIDLen {
		return fmt.Sprintf(msgAtMostSiteChar, MaxSiteIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return msgSiteIDChars
		}
	}
	return ""
}

// Problems lists what is wrong with the metadata: the field paths are
// "id", "siteId" and "correlationId", the messages name the limit broken.
// Empty fields are valid (the runtime fills them in).
func (m CommandMeta) Problems() []FieldError {
	var f fieldErrs
	f.meta(m)
	return f
}

// ValidateMeta checks the metadata of a command of type commandType as
// Validate does, and returns nil or a *ValidationError. The runtime calls it
// on the id, site and correlation id it resolved (from the body or the
// headers) before anything else touches them.
func ValidateMeta(commandType string, m CommandMeta) error {
	return fieldErrs(m.Problems()).err(commandType)
}

// meta checks the CommandMeta fields every command carries.
func (f *fieldErrs) meta(m CommandMeta) {
	if p := CommandIDProblem(m.ID); p != "" {
		f.add("id", "%s", p)
	}
	if p := SiteIDProblem(m.SiteID); p != "" {
		f.add("siteId", "%s", p)
	}
	if p := CorrelationIDProblem(m.CorrelationID); p != "" {
		f.add("correlationId", "%s", p)
	}
}

// text checks a required one-line free-text field of 1..max characters
// (not only whitespace, no control characters, valid UTF-8).
func (f *fieldErrs) text(field, s string, max int) {
	switch {
	case blank(s):
		f.add(field, "required")
	default:
		f.optText(field, s, max)
	}
}

// optText checks an optional one-line free-text field of at most max
// characters (no control characters, valid UTF-8).
func (f *fieldErrs) optText(field, s string, max int) { f.checkText(field, s, max, false) }

// optLongText checks an optional multi-line free-text field of at most max
// characters: as optText, but line feeds, carriage returns and tabs are allowed.
func (f *fieldErrs) optLongText(field, s string, max int) { f.checkText(field, s, max, true) }

func (f *fieldErrs) checkText(field, s string, max int, multiline bool) {
	if p := textProblem(s, multiline); p != "" {
		f.add(field, "%s", p)
		return
	}
	if runes(s) > max {
		f.add(field, msgAtMostChars, max)
	}
}

// oneOf checks an enum field; "" is accepted when allowEmpty (it means the default).
func (f *fieldErrs) oneOf(field, s string, allowEmpty bool, values ...string) {
	if (s == "" && allowEmpty) || contains(values, s) {
		return
	}
	f.add(field, "must be one of %s", strings.Join(values, ", "))
}

// groupID checks an optional group id (GroupIDProblem).
func (f *fieldErrs) groupID(field, id string) {
	if p := GroupIDProblem(id); p != "" {
		f.add(field, "%s", p)
	}
}

// ids checks a list of 1..max group ids, each non-blank, unique and valid
// (GroupIDProblem).
func (f *fieldErrs) ids(field string, ids []string, max int) {
	if len(ids) == 0 {
		f.add(field, "required (at least one id)")
		return
	}
	if len(ids) > max {
		f.add(field, "at most %d entries", max)
		return
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		p := fmt.Sprintf("%s[%d]", field, i)
		switch j, dup := seen[id]; {
		case blank(id):
			f.add(p, "empty")
		case GroupIDProblem(id) != "":
			f.add(p, "%s", GroupIDProblem(id))
		case dup:
			f.add(p, "duplicate of %s[%d]", field, j)
		default:
			seen[id] = i
		}
	}
}

func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// questions checks a list of membership questions.
func (f *fieldErrs) questions(field string, qs []Question) {
	if len(qs) > MaxQuestions {
		f.add(field, "at most %d entries", MaxQuestions)
		return
	}
	for i, q := range qs {
		f.text(fmt.Sprintf("%s[%d].text", field, i), q.Text, MaxQuestionLen)
	}
}

// RulesProblems lists what is wrong with a list of rules by the limits of a
// command's rules (at most MaxRules; titles required, unique, at most
// MaxRuleTitleLen characters, descriptions at most MaxRuleDescriptionLen,
// no control characters), with field paths "rules[i].title" and the like;
// nil when nothing is. For rules that come from elsewhere than a command
// (a Wix group's), before they are copied.
func RulesProblems(rs []Rule) []FieldError {
	var f fieldErrs
	f.rules("rules", rs)
	return f
}

// rules checks a list of group rules; titles must be unique (DiffRules pairs rules by title).
func (f *fieldErrs) rules(field string, rs []Rule) {
	if len(rs) > MaxRules {
		f.add(field, "at most %d entries", MaxRules)
		return
	}
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", field, i)
		f.text(p+".title", r.Title, MaxRuleTitleLen)
		f.optLongText(p+".description", r.Description, MaxRuleDescriptionLen)
		key := strings.TrimSpace(r.Title)
		if key == "" {
			continue
		}
		if j, dup := seen[key]; dup {
			f.add(p+".title", "duplicate of %s[%d].title", field, j)
		} else {
			seen[key] = i
		}
	}
}

// CommandIDProblem is IDProblem for a command's own id (CommandMeta.ID),
// which may in addition not start with InvalidCommandIDPrefix: that prefix
// is reserved for the ids derived from invalid ones (InvalidCommandID), so
// that no producer's command shares the id, the ledger record or the
// command_failed event of another command's dead letter.
func CommandIDProblem(id string) string {
	if p := IDProblem(id); p != "" {
		return p
	}
	if strings.HasPrefix(id, InvalidCommandIDPrefix) {
		return fmt.Sprintf(msgReservedPrefix, InvalidCommandIDPrefix)
	}
	return ""
}

// msgReservedPrefix is CommandIDProblem's message for a reserved prefix.
const msgReservedPrefix = "must not start with %q (reserved for ids derived from invalid ones)"
