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

// text checks a required free-text field of 1..max characters (not only whitespace).
func (f *fieldErrs) text(field, s string, max int) {
	switch {
	case blank(s):
		f.add(field, "required")
	case runes(s) > max:
		f.add(field, "at most %d characters", max)
	}
}

// optText checks an optional free-text field of at most max characters.
func (f *fieldErrs) optText(field, s string, max int) {
	if runes(s) > max {
		f.add(field, "at most %d characters", max)
	}
}

// oneOf checks an enum field; "" is accepted when allowEmpty (it means the default).
func (f *fieldErrs) oneOf(field, s string, allowEmpty bool, values ...string) {
	if (s == "" && allowEmpty) || contains(values, s) {
		return
	}
	f.add(field, "must be one of %s", strings.Join(values, ", "))
}

// ids checks a list of 1..max ids, each non-blank, unique and at most
// MaxIDLen characters.
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
		case runes(id) > MaxIDLen:
			f.add(p, "at most %d characters", MaxIDLen)
		case hasSpace(id):
			f.add(p, "must not contain whitespace")
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
		f.optText(p+".description", r.Description, MaxRuleDescriptionLen)
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
