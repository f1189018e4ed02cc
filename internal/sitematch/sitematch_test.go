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
