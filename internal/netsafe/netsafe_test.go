package netsafe

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080":        true,
		"127.8.9.10:1":          true,
		"localhost:8080":        true,
		"LocalHost.:8080":       true,
		"[::1]:8080":            true,
		"[::ffff:127.0.0.1]:8":  true,
		":8080":                 false,
		"0.0.0.0:8080":          false,
		"[::]:8080":             false,
		"10.0.0.5:8080":         false,
		"[fe80::1%lo]:8080":     false,
		"localhost.evil.com:80": false,
		"127.0.0.1":             false, // no port: not a listen address
		"example.com:8080":      false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := RedactURLs("nats://ops:pw@a:4222, nats://tok123@b:4222,nats://c:4222"); strings.Contains(got, "pw@") || strings.Contains(got, "tok123") || !strings.Contains(got, "nats://c:4222") {
		t.Errorf("RedactURLs = %q", got)
	}
	if got := RedactURL("nats://ops:pw@host:bad"); strings.Contains(got, "pw") {
		t.Errorf("RedactURL of an unparsable URL = %q", got)
	}
	msg := `connect to nats://ops:s3cret@127.0.0.1:1: nats: no servers; parse "nats://tok987@x:1"`
	got := RedactText(msg, "nats://ops:s3cret@127.0.0.1:1")
	for _, secret := range []string{"s3cret", "tok987"} {
		if strings.Contains(got, secret) {
			t.Errorf("RedactText leaks %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "ops:xxxxx@127.0.0.1:1") {
		t.Errorf("RedactText lost the user or host: %s", got)
	}
}

// TestRedactOddURLForms (review of issue 12, item 4): a URL without a scheme
// (nats.go accepts "ops:s3cret@host:port") and an unparsable one (a space in
// the password) used to reach groupctl's output with their password, in our
// message and in net/url's parse error.
func TestRedactOddURLForms(t *testing.T) {
	for _, raw := range []string{"ops:s3cret@127.0.0.1:1", "tls://ops:s3c ret@127.0.0.1:1", "nats://ops:s3c ret@h:1,nats://b:1", "s3cret@127.0.0.1:1"} {
		secret := "s3c"
		if got := RedactURLs(raw); strings.Contains(got, secret) {
			t.Errorf("RedactURLs(%q) = %q", raw, got)
		}
		_, perr := url.Parse(strings.Split(raw, ",")[0])
		msg := fmt.Sprintf("connect to %s: %v", raw, perr)
		if got := RedactText(msg, raw); strings.Contains(got, secret) {
			t.Errorf("RedactText(%q) = %q", msg, got)
		}
	}
	if got := RedactURL("ops:s3cret@127.0.0.1:1"); got != "ops:xxxxx@127.0.0.1:1" {
		t.Errorf("RedactURL without a scheme = %q", got)
	}
}

func TestIsLoopbackHostHeader(t *testing.T) {
	for h, want := range map[string]bool{"localhost": true, "localhost:8080": true, "LOCALHOST.:1": true, "127.0.0.1:8080": true,
		"[::1]:8080": true, "::1": true, "127.8.9.1": true, "": false, "0.0.0.0:8080": false, "evil.example:8080": false,
		"localhost.evil.example": false, "127.0.0.1.nip.io:80": false, "[::ffff:127.0.0.1]:1": true} {
		if got := IsLoopbackHostHeader(h); got != want {
			t.Errorf("IsLoopbackHostHeader(%q) = %v, want %v", h, got, want)
		}
	}
}
