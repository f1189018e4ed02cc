package handlers

import (
	"math/bits"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"groupflow/internal/wix"
	"groupflow/messages"
)

// campaignBits is a set of up to 128 small indexes (group indexes, keyword
// indexes: both lists are capped at 100 by the contract).
type campaignBits [2]uint64

func (b *campaignBits) set(i int)     { b[i/64] |= 1 << (uint(i) % 64) }
func (b campaignBits) has(i int) bool { return b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b campaignBits) or(o campaignBits) campaignBits {
	return campaignBits{b[0] | o[0], b[1] | o[1]}
}
func (b campaignBits) count() int  { return bits.OnesCount64(b[0]) + bits.OnesCount64(b[1]) }
func (b campaignBits) empty() bool { return b[0] == 0 && b[1] == 0 }

// campaignPick returns the elements of list whose index is in b, in order.
func campaignPick(list []string, b campaignBits) []string {
	var out []string
	for i, s := range list {
		if i < 128 && b.has(i) {
			out = append(out, s)
		}
	}
	return out
}

// campaignMatcher matches membership answers against an interest
// audience's keywords: case- and accent-insensitive, whole words; a keyword
// in double quotes (or of several words) must appear as that sequence of
// words within one answer.
type campaignMatcher struct {
	keywords  []string   // as given in the command
	phrases   [][]string // normalized words of each keyword
	all       bool
	questions map[string]bool // nil: every answer counts
}

func newCampaignMatcher(a messages.Audience) *campaignMatcher {
	m := &campaignMatcher{all: a.Match == messages.MatchAll}
	for _, k := range a.Keywords {
		m.keywords = append(m.keywords, k)
		inner := strings.TrimSpace(k)
		if len(inner) >= 2 && strings.HasPrefix(inner, `"`) && strings.HasSuffix(inner, `"`) {
			inner = inner[1 : len(inner)-1]
		}
		m.phrases = append(m.phrases, campaignWords(inner))
	}
	if len(a.QuestionIDs) > 0 {
		m.questions = make(map[string]bool, len(a.QuestionIDs))
		for _, q := range a.QuestionIDs {
			m.questions[q] = true
		}
	}
	return m
}

// match returns the keywords matched by a member's answers.
func (m *campaignMatcher) match(answers []wix.Answer) campaignBits {
	var got campaignBits
	for _, a := range answers {
		if m.questions != nil && !m.questions[a.ID] {
			continue
		}
		words := campaignWords(a.Text)
		for i, p := range m.phrases {
			if i < 128 && !got.has(i) && campaignContains(words, p) {
				got.set(i)
			}
		}
	}
	return got
}

// selected reports whether matched keywords qualify a member (any or all).
func (m *campaignMatcher) selected(got campaignBits) bool {
	if m.all {
		return len(m.phrases) > 0 && got.count() == min(len(m.phrases), 128)
	}
	return !got.empty()
}

// campaignWords folds s (accents removed, case folded) and splits it into
// words of letters and digits.
func campaignWords(s string) []string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC, cases.Fold())
	folded, _, err := transform.String(t, s)
	if err != nil {
		folded = strings.ToLower(s)
	}
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// campaignContains reports whether phrase occurs as consecutive words.
func campaignContains(words, phrase []string) bool {
	if len(phrase) == 0 {
		return false
	}
outer:
	for i := 0; i+len(phrase) <= len(words); i++ {
		for j, p := range phrase {
			if words[i+j] != p {
				continue outer
			}
		}
		return true
	}
	return false
}
