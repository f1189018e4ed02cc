// Package oneline folds untrusted text to one printable line, for headers,
// log fields and error messages.
package oneline

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Fold returns s as one line: control characters (C0, DEL, C1) and invalid
// UTF-8 become spaces, runs of white space one space, and the ends are
// trimmed.
func Fold(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}
