// Package natsname is the one place where values that come from outside
// (command ids, site ids, event ids, instance names) are turned into tokens
// of NATS subjects, JetStream KV keys and object names. Whatever the input,
// a token is at most MaxToken bytes of [A-Za-z0-9_-], so no input can make
// a subject, key or object name exceed a NATS limit (the server's control
// line, the KV key alphabet) or inject a token separator or wildcard.
package natsname

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
)

// MaxToken bounds the length of a token made by Token, in bytes.
const MaxToken = 64

// hashPrefix starts a hashed token; hashLen is how many bytes of the SHA-256
// it keeps (96 bits: collisions are out of reach for any real data set).
const (
	hashPrefix = "h"
	hashLen    = 12
)

// Safe reports whether s may be used as one token as it is: 1..MaxToken
// bytes of [A-Za-z0-9_-].
func Safe(s string) bool {
	if s == "" || len(s) > MaxToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// Token makes s safe as one token of a subject, KV key or object name.
// Tokens that are Safe are kept as they are, so names stay readable in
// `nats kv ls` and `nats obj ls`; anything else (empty, too long, other
// characters) becomes "h" + 24 hex digits of its SHA-256. So does a Safe s
// that has that very form ("h" + 24 lower-case hex digits): a hashed token
// never equals a verbatim one, so two inputs never share a token (a ledger
// key). The ledger's keys have always been made this way for every other
// input, so they keep their bytes.
func Token(s string) string {
	if Safe(s) && !looksHashed(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hashPrefix + hex.EncodeToString(sum[:hashLen])
}

// looksHashed reports whether s has the form of a hashed token: hashPrefix
// and 2*hashLen lower-case hex digits.
func looksHashed(s string) bool {
	h, ok := strings.CutPrefix(s, hashPrefix)
	if !ok || len(h) != 2*hashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
			return false
		}
	}
	return true
}

// Key joins parts into a dotted KV key or subject, each made a token by
// Token. Its length is bounded by (MaxToken+1) times the number of parts.
func Key(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = Token(p)
	}
	return strings.Join(out, ".")
}

// Digest is the full SHA-256 of s in hex (64 characters): a fixed-length,
// always-valid token for values that are never read back from their key
// (the mailer's claims keyed by event id).
func Digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ObjectName is the object name of a file derived from base (an id) with
// the given extension (a constant such as "html"): Token(base) + "." + ext.
func ObjectName(base, ext string) string { return Token(base) + "." + ext }

// InstanceID names this process, the same way for every component (command
// leases, rate-limit shares, mail claims): host name, pid and a random
// suffix, e.g. "web-1-4242-9f3a01c2". It is not a token: pass it through
// Token before putting it in a key or subject.
func InstanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "groupflow"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
}
