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
