// Package sitematch is the operator's allowlist of Wix site ids: a
// comma-separated list of globs, each anchored (it must match the whole id).
// In a glob, '*' matches any run of characters (including none), '?' one
// character, and every other character itself; there are no classes or
// escapes, so a site id (a GUID, or letters, digits, '-' and '_') never
// needs quoting. "*" alone allows every site (the account-key mode then
// relies on its maximum number of sites).
//
//	5f1c3a52-*                  every site whose id starts with 5f1c3a52-
//	site-a,site-b,school-??     two sites, and school-00 … school-zz
package sitematch

import (
	"fmt"
	"strings"
)

// Bounds of a pattern (it comes from configuration, but is still checked).
const (
	MaxPatternLen = 4096
	MaxGlobs      = 256
	// MaxIDLen is the longest site id Match accepts; longer ids never match.
	MaxIDLen = 256
)

// Pattern is a parsed allowlist. The zero value and nil match nothing.
type Pattern struct {
	src   string
	globs []string
}

// Parse reads a comma-separated list of globs (spaces around commas
// ignored). An empty list, an empty glob or a pattern over the bounds is an
// error naming the problem (the pattern is configuration, not a secret).
func Parse(s string) (*Pattern, error) {
	if len(s) > MaxPatternLen {
		return nil, fmt.Errorf("site pattern: %d bytes, at most %d", len(s), MaxPatternLen)
	}
	p := &Pattern{src: s}
	for _, g := range strings.Split(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			return nil, fmt.Errorf("site pattern %q: empty glob", s)
		}
		for _, r := range g {
			if r < 0x20 || r == 0x7f {
				return nil, fmt.Errorf("site pattern %q: control character", s)
			}
		}
		p.globs = append(p.globs, g)
	}
	if len(p.globs) > MaxGlobs {
		return nil, fmt.Errorf("site pattern: %d globs, at most %d", len(p.globs), MaxGlobs)
	}
	return p, nil
}

// MustParse is Parse for constants; it panics on an error.
func MustParse(s string) *Pattern {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as given.
func (p *Pattern) String() string {
	if p == nil {
		return ""
	}
	return p.src
}

// Match reports whether id matches one of the globs, as a whole.
func (p *Pattern) Match(id string) bool {
	if p == nil || id == "" || len(id) > MaxIDLen {
		return false
	}
	for _, g := range p.globs {
		if glob(g, id) {
			return true
		}
	}
	return false
}

// glob matches s against g ('*' and '?' wildcards, byte-wise) in
// O(len(g)×len(s)) at worst: the classic backtracking over the last star.
func glob(g, s string) bool {
	gi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case gi < len(g) && (g[gi] == '?' || g[gi] == s[si]):
			gi++
			si++
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, si
			gi++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}
