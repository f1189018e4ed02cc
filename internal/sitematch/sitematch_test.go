package sitematch

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	p := MustParse("5f1c3a52-*, site-a,school-??,*-eu-*")
	for id, want := range map[string]bool{
		"5f1c3a52-7d1e-4c1b-9a0e-000000000001": true,
		"5f1c3a52-":                            true,
		"x5f1c3a52-1":                          false, // anchored at the start
		"site-a":                               true,
		"site-ab":                              false, // anchored at the end
		"site-":                                false,
		"school-01":                            true,
		"school-1":                             false, // '?' is exactly one character
		"school-001":                           false,
		"shop-eu-1":                            true,
		"shop-us-1":                            false,
		"":                                     false,
		"5f1c3a52-" + strings.Repeat("x", 300): false, // over MaxIDLen
	} {
		if got := p.Match(id); got != want {
			t.Errorf("Match(%.40q) = %v, want %v", id, got, want)
		}
	}
	if !MustParse("*").Match("anything") {
		t.Error("* does not match everything")
	}
	var none *Pattern
	if none.Match("site-a") || (&Pattern{}).Match("site-a") {
		t.Error("nil or zero pattern matches")
	}
	// '.' and regexp metacharacters are literal.
	if MustParse("a.b").Match("axb") || !MustParse("a.b").Match("a.b") || MustParse("a+").Match("aa") {
		t.Error("metacharacters are not literal")
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", "a,,b", " , ", strings.Repeat("a,", MaxGlobs) + "a", strings.Repeat("x", MaxPatternLen+1), "a\nb"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%.30q) accepted", s)
		}
	}
}

// A hostile id cannot make matching slow: many stars against a long id.
func TestGlobBounded(t *testing.T) {
	p := MustParse(strings.Repeat("*a", 100) + "b")
	if p.Match(strings.Repeat("a", MaxIDLen)) {
		t.Error("matched")
	}
}

// TestMatchRefusesOtherCharacters: an id with a character a site id never
// has does not match, even "*": no look-alike letters (Cyrillic "а" for
// "a"), no multi-byte character counted as two '?', no subject wildcards,
// no white space, path or header line breaks.
func TestMatchRefusesOtherCharacters(t *testing.T) {
	any, two := MustParse("*"), MustParse("school-??,site-a")
	for _, id := range []string{"site-\u0430", "school-é", "a*", "a>", "a b", "a\r\nX-Evil: 1", "a/../b", "a%2e", "\u200bsite-a"} {
		if any.Match(id) || two.Match(id) {
			t.Errorf("Match(%q) = true", id)
		}
	}
	for _, id := range []string{"5f1c3a52-7d1e-4c1b-9a0e-000000000001", "School_01", "site-a"} {
		if !any.Match(id) {
			t.Errorf("* does not match %q", id)
		}
	}
}

// TestAllowsAny: a glob without a literal character and with a star lets
// any site of the account through (config asks for an explicit flag).
func TestAllowsAny(t *testing.T) {
	for s, want := range map[string]bool{"*": true, "**": true, "site-a, *": true, "?*": true, "*?*": true,
		"??": false, "5f1c3a52-*": false, "*-eu-*": false, "site-a": false} {
		if got := MustParse(s).AllowsAny(); got != want {
			t.Errorf("AllowsAny(%q) = %v, want %v", s, got, want)
		}
	}
}
