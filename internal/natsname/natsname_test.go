package natsname

import (
	"regexp"
	"strings"
	"testing"
)

// TestTokenKeepsLedgerKeys: the ledger's keys were made with this very
// algorithm before it moved here; existing ledgers must stay readable.
func TestTokenKeepsLedgerKeys(t *testing.T) {
	golden := map[string]string{
		"":                      "he3b0c44298fc1c149afbf4c8",
		"abc-XYZ_09":            "abc-XYZ_09",
		"a.b":                   "h2e7336dc8eba87ef472df568",
		"é":                     "h4a99557e4033c3539de2eb65",
		strings.Repeat("x", 64): strings.Repeat("x", 64),
		strings.Repeat("x", 65): "h9537c5fdf120482f7d58d25e",
	}
	for in, want := range golden {
		if got := Token(in); got != want {
			t.Errorf("Token(%.20q) = %q, want %q", in, got, want)
		}
	}
	if got := Key("cmd", "provision_group", "a.b", "record"); got != "cmd.provision_group.h2e7336dc8eba87ef472df568.record" {
		t.Errorf("Key = %q", got)
	}
}

// TestNoInputExceedsLimits: hostile inputs (huge, separators, wildcards,
// control characters, invalid UTF-8) always give a short token of the KV
// key alphabet.
func TestNoInputExceedsLimits(t *testing.T) {
	token := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	for _, in := range []string{strings.Repeat("i", 3100), strings.Repeat("s", 5000), strings.Repeat("é", 70000),
		"a.b", "a b", "*", ">", "a.>", "x\x00y", "\r\nPUB x 1", "\xff\xfe", "$O.reports"} {
		got := Token(in)
		if !token.MatchString(got) {
			t.Errorf("Token(%.20q) = %q", in, got)
		}
		if n := ObjectName(in, "html"); len(n) > MaxToken+5 || !strings.HasSuffix(n, ".html") {
			t.Errorf("ObjectName(%.20q) = %q", in, n)
		}
		if d := Digest(in); len(d) != 64 || !token.MatchString(d) {
			t.Errorf("Digest(%.20q) = %q", in, d)
		}
	}
	if Token("a.b") == Token("a_b") || Token("a") == Token("b") {
		t.Error("distinct inputs collide")
	}
	if ObjectName("r-e2e", "csv") != "r-e2e.csv" {
		t.Error("safe ids must keep readable object names")
	}
}

// TestDigestKeepsMailerKeys: the mailer's claim keys were the SHA-256 hex
// of the event id before they moved here; in-flight claims must match.
func TestDigestKeepsMailerKeys(t *testing.T) {
	const want = "1e94121cb5f337f07967409439e66ea07b005d9a7ecbf1a490eaffc602a3ae3c"
	if got := Digest("member_selected:spring:m1"); got != want {
		t.Fatalf("Digest = %q, want %q", got, want)
	}
}

// TestHashedTokenNeverVerbatim (review of issue 12): Token("class.yoga.2026")
// is "h63016d6136e56cd4fe3ede80", which used to be kept verbatim as the token
// of the id "h63016d6136e56cd4fe3ede80" itself: two commands shared one
// ledger record. An input that looks like a hashed token is hashed too.
func TestHashedTokenNeverVerbatim(t *testing.T) {
	for _, in := range []string{"class.yoga.2026", "a.b", "", strings.Repeat("x", 65)} {
		h := Token(in)
		if Token(h) == h {
			t.Errorf("Token(%q) = %q, and Token(%q) is the same token", in, h, h)
		}
		if Token(h) == Token(in) {
			t.Errorf("Token(%q) == Token(%q)", h, in)
		}
	}
	// Near misses stay verbatim (readable keys for every other id).
	for _, in := range []string{"h63016d6136e56cd4fe3ede8", "h63016d6136e56cd4fe3ede800", "H63016d6136e56cd4fe3ede80", "h63016d6136e56cd4fe3ede8g", "hello"} {
		if Token(in) != in {
			t.Errorf("Token(%q) = %q, want it verbatim", in, Token(in))
		}
	}
}

// Every component names this process the same way; two calls differ (the
// random suffix).
func TestInstanceID(t *testing.T) {
	a, b := InstanceID(), InstanceID()
	if a == "" || a == b {
		t.Fatalf("instance ids %q and %q", a, b)
	}
}
