// Package oneline folds untrusted text to one printable line, for headers,
// log fields and error messages, and cuts it to a bound.
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

// Cut returns s cut to at most n bytes without splitting a UTF-8 sequence
// (s itself when it is no longer).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
