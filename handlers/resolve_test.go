package handlers

import "testing"

func TestFoldName(t *testing.T) {
	tests := []struct{ a, b string }{
		{"  José   GARCÍA ", "jose garcia"},
		{"Zoë B", "zoe b"},
		{"Straße", "STRASSE"},
		{"Søren Łukasz", "soren lukasz"},
		{"O’Connor", "o'connor"},
	}
	for _, tt := range tests {
		if fa, fb := foldName(tt.a), foldName(tt.b); fa != fb {
			t.Errorf("foldName(%q) = %q, foldName(%q) = %q", tt.a, fa, tt.b, fb)
		}
	}
	if foldName("Ann Lee") == foldName("Anne Lee") {
		t.Error("different names fold together")
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, region, want string
		ok               bool
	}{
		{"(212) 555-0142", "US", "+12125550142", true},
		{"212.555.0142", "", "+12125550142", true},
		{"+44 20 7946 0001", "US", "+442079460001", true},
		{"020 7946 0001", "GB", "+442079460001", true},
		{"12345", "US", "", false},
		{"call me", "US", "", false},
	}
	for _, tt := range tests {
		got, ok := normalizePhone(tt.in, tt.region)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizePhone(%q, %q) = %q %v, want %q %v", tt.in, tt.region, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSearchToken(t *testing.T) {
	if got := searchToken("Mary Ann  Lee-Smith"); got != "Lee-Smith" {
		t.Errorf("got %q", got)
	}
}
