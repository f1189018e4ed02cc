// Package netsafe holds the small network-safety checks shared by
// groupflow's commands: whether a listener or URL host is loopback, and the
// redaction of credentials carried in URLs (user:password@, token@) before a
// URL or an error quoting it reaches a log or a terminal.
package netsafe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// IsLoopbackHost reports whether host (a name or an IP, without port,
// brackets allowed) surely designates this machine only: "localhost", an
// address of 127.0.0.0/8, or ::1. An empty host, 0.0.0.0 and :: (all
// interfaces) and any other name are not loopback.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	// A zone (fe80::1%eth0) never makes an address loopback.
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// IsLoopbackHostHeader reports whether an HTTP Host header (host or
// host:port) names this machine only (see IsLoopbackHost). A server that
// trusts loopback clients checks it: a web page whose own name resolves to
// 127.0.0.1 (DNS rebinding) sends that name.
func IsLoopbackHostHeader(hostport string) bool {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	return IsLoopbackHost(hostport)
}

// IsLoopbackAddr reports whether a listen address host:port binds loopback
// only (see IsLoopbackHost). ":8080", "0.0.0.0:8080" and "[::]:8080" listen
// on every interface and are not loopback; so is an address without a port.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return IsLoopbackHost(host)
}

// RedactURL returns raw with the password of its user info replaced by
// "xxxxx"; a user info without a password (nats://TOKEN@host) is a token and
// is replaced as a whole. A string that does not parse as a URL gets the
// same treatment textually (scheme://user:xxxxx@...), and so does one
// without a scheme ("user:pw@host:port", which nats.go accepts).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !strings.Contains(raw, "://") {
		prefix, user, rest, ok := splitUserinfo(raw)
		if !ok {
			return raw
		}
		if name, _, ok := strings.Cut(user, ":"); ok {
			return prefix + name + ":xxxxx" + rest
		}
		return prefix + "xxxxx" + rest
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		return u.Redacted()
	}
	u.User = url.User("xxxxx")
	return u.String()
}

// RedactURLs applies RedactURL to each element of a comma-separated list
// (the form of a NATS cluster's seed URLs).
func RedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		t := strings.TrimSpace(p)
		if r := RedactURL(t); r != t {
			parts[i] = r
		}
	}
	return strings.Join(parts, ",")
}

// RedactText replaces in s every user info (password or token) of the URLs
// in lists (each a comma-separated list) and of any URL-like "scheme://user[:pw]@"
// it contains. It is meant for error messages that may quote a URL.
func RedactText(s string, lists ...string) string {
	for _, list := range lists {
		for _, p := range strings.Split(list, ",") {
			// Textually, so that URLs net/url refuses (and its error
			// quoting them) are redacted too.
			_, user, _, ok := splitUserinfo(strings.TrimSpace(p))
			if !ok {
				continue
			}
			if name, pw, ok := strings.Cut(user, ":"); ok && pw != "" {
				s = strings.ReplaceAll(s, pw, "xxxxx")
				if u, err := url.PathUnescape(pw); err == nil && u != pw {
					s = strings.ReplaceAll(s, u, "xxxxx")
				}
			} else if name != "" && !ok {
				s = strings.ReplaceAll(s, name, "xxxxx")
			}
		}
	}
	return redactInline(s)
}

// splitUserinfo splits one URL (parsable or not, with or without a scheme)
// textually into the scheme prefix ("nats://" or ""), the user info before
// its last '@', and the rest from that '@' on; ok is false without an '@'.
func splitUserinfo(raw string) (prefix, user, rest string, ok bool) {
	body := raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, body = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndex(body, "@")
	if at <= 0 {
		return "", "", "", false
	}
	return prefix, body[:at], body[at:], true
}

// redactInline rewrites each "scheme://userinfo@" in s.
func redactInline(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/ \t\r\n,\"'")
		if end < 0 {
			end = len(s)
		}
		at := strings.LastIndex(s[:end], "@")
		if at < 0 {
			continue
		}
		user := s[:at]
		if name, _, ok := strings.Cut(user, ":"); ok {
			b.WriteString(name + ":xxxxx@")
		} else if user != "" {
			b.WriteString("xxxxx@")
		}
		s = s[at+1:]
	}
}

// ErrOpenAdmin is wrapped by CheckAdminExposure's refusal.
var ErrOpenAdmin = errors.New("admin API open beyond loopback")

// CheckAdminExposure enforces the admin-token rule: an admin listener whose
// endpoints can read dead letters or change state may run without a token
// only on loopback (see IsLoopbackAddr), or with the explicit, insecure
// opt-out allowNoToken. The refusal is one line.
func CheckAdminExposure(addr string, hasToken, allowNoToken bool) error {
	if hasToken || allowNoToken || IsLoopbackAddr(addr) {
		return nil
	}
	return fmt.Errorf("%w: admin HTTP on %q is not loopback-only and GROUPFLOW_ADMIN_TOKEN is empty: "+
		"set GROUPFLOW_ADMIN_TOKEN, listen on 127.0.0.1, or pass --admin-insecure-no-token", ErrOpenAdmin, addr)
}
