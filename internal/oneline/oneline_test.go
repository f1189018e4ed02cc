package oneline

import "testing"

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                 "plain",
		"  two\r\n\tlines  ":    "two lines",
		"Custom\r\nBcc: evil@x": "Custom Bcc: evil@x",
		"nul\x00esc\x1b[31mdel\x7fc1\u0085\u009bend": "nul esc [31mdel c1 end",
		"bad\xffutf8": "bad utf8",
		"":            "",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCut: at most n bytes, never half a character.
func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: not split
		{"aé", 3, "aé"},
		{"€€", 4, "€"},
		{"€", 0, ""},
	} {
		if got := Cut(c.s, c.n); got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
