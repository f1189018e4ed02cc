package wix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"groupflow/internal/oneline"
)

// permanentSentinel is a sentinel error that declares itself permanent to
// groupflow/internal/failure.
type permanentSentinel string

func (e permanentSentinel) Error() string   { return string(e) }
func (e permanentSentinel) Permanent() bool { return true }

// ErrUnknownSite is returned (wrapped) by Client.Site for a site that was never
// added. It is permanent: retrying cannot make the site appear.
var ErrUnknownSite error = permanentSentinel("wix: unknown site")

// ErrInvalidInput is wrapped by every error the client returns for input it
// rejects before calling Wix (too many IDs, an empty group ID, a page size over
// the limit...). It is permanent.
var ErrInvalidInput error = permanentSentinel("wix: invalid input")

// invalid returns a permanent error wrapping ErrInvalidInput.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidInput)
}

// FieldViolation is one entry of a Wix validationError.
type FieldViolation struct {
	// Field is the path of the offending field, e.g. "group.name".
	Field string `json:"field,omitempty"`
	// Description is Wix's human-readable explanation.
	Description string `json:"description,omitempty"`
	// ViolatedRule is the rule kind, e.g. "MAX", "FORMAT", "CUSTOM".
	ViolatedRule string `json:"violatedRule,omitempty"`
	// RuleName names a CUSTOM rule.
	RuleName string `json:"ruleName,omitempty"`
}

// APIError is a non-2xx answer from Wix. It implements Permanent() so that
// groupflow/internal/failure classifies it: client errors (400, 401, 403,
// 404, 409, 422, ...) are permanent; 408, 429 and 5xx are transient.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the top-level "message" of the body (often empty on 5xx).
	Message string
	// Code is details.applicationError.code, if any.
	Code string
	// Description is details.applicationError.description, if any.
	Description string
	// Data is details.applicationError.data, raw, if any.
	Data json.RawMessage
	// FieldViolations is details.validationError.fieldViolations, if any:
	// the first MaxFieldViolations of them.
	FieldViolations []FieldViolation
	// MoreFieldViolations counts the field violations left out.
	MoreFieldViolations int
	// Op is the stable operation name, e.g. "groups.create".
	Op string
	// Method and Path name the endpoint called (path without query string).
	Method, Path string
	// RetryAfter is the parsed Retry-After header, zero if absent.
	RetryAfter time.Duration
}

// Error describes the failed call: operation, endpoint, status, Wix's code and
// message, and the violated fields. It never contains credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wix")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	if e.Method != "" || e.Path != "" {
		fmt.Fprintf(&b, " (%s %s)", e.Method, e.Path)
	}
	fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Description != "" && e.Description != e.Message {
		b.WriteString(" (" + e.Description + ")")
	}
	if len(e.FieldViolations) > 0 {
		b.WriteString("; invalid fields:")
		for i, v := range e.FieldViolations {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" " + v.Field)
			rule := v.ViolatedRule
			if v.RuleName != "" {
				rule += "/" + v.RuleName
			}
			if rule != "" {
				b.WriteString(" [" + rule + "]")
			}
			if v.Description != "" {
				b.WriteString(" " + v.Description)
			}
		}
		if e.MoreFieldViolations > 0 {
			fmt.Fprintf(&b, " and %d more", e.MoreFieldViolations)
		}
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Permanent reports whether retrying the same request cannot succeed: true for
// 4xx statuses except 408 (timeout), 425 (too early) and 429 (throttled).
func (e *APIError) Permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooEarly,
		e.Status == http.StatusTooManyRequests:
		return false
	case e.Status >= 400 && e.Status < 500:
		return true
	default:
		return false
	}
}

// Throttled reports whether Wix rejected the request for exceeding the rate
// limit (HTTP 429).
func (e *APIError) Throttled() bool { return e.Status == http.StatusTooManyRequests }

// IsNotFound reports whether err wraps a Wix 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// StatusOf returns the HTTP status of the APIError wrapped in err, or 0 if
// err does not wrap one.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// wixErrorBody is the documented error body shape.
type wixErrorBody struct {
	Message string `json:"message"`
	Details struct {
		ApplicationError *struct {
			Code        string          `json:"code"`
			Description string          `json:"description"`
			Data        json.RawMessage `json:"data"`
		} `json:"applicationError"`
		ValidationError *struct {
			FieldViolations []FieldViolation `json:"fieldViolations"`
		} `json:"validationError"`
	} `json:"details"`
}

// parseAPIError builds an APIError from a non-2xx response. The body may be
// empty or not JSON at all (5xx from a proxy); then only Status and, for short
// plain-text bodies, Message are set. Every occurrence of a non-empty secret
// (the credential the request carried: an answer may echo the headers or
// the body it was sent), as is or JSON-escaped (see redactionForms), is
// replaced by [REDACTED], in the body before it is read and in the strings
// decoded from it.
func parseAPIError(status int, header http.Header, body []byte, op, method, path string, now time.Time, secrets ...string) *APIError {
	e := &APIError{Status: status, Op: op, Method: method, Path: path}
	e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	secrets = redactionForms(secrets)
	body = redactBytes(body, secrets)
	var wb wixErrorBody
	if len(body) > 0 && json.Unmarshal(body, &wb) == nil {
		// Every text is cleaned and bounded: it goes into logs, the
		// ledger, dead letters and events.
		txt := func(v string, n int) string { return cleanText(redactString(v, secrets), n) }
		e.Message = txt(wb.Message, maxErrorText)
		if ae := wb.Details.ApplicationError; ae != nil {
			e.Code, e.Description = txt(ae.Code, maxErrorToken), txt(ae.Description, maxErrorText)
			if len(ae.Data) > 0 && len(ae.Data) <= maxErrorData && string(ae.Data) != "null" && string(ae.Data) != "{}" {
				e.Data = redactBytes(ae.Data, secrets)
			}
		}
		if ve := wb.Details.ValidationError; ve != nil {
			vs := ve.FieldViolations
			if len(vs) > MaxFieldViolations {
				e.MoreFieldViolations = len(vs) - MaxFieldViolations
				vs = vs[:MaxFieldViolations]
			}
			for _, v := range vs {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{Field: txt(v.Field, maxErrorToken),
					Description: txt(v.Description, maxViolationText), ViolatedRule: txt(v.ViolatedRule, maxErrorToken),
					RuleName: txt(v.RuleName, maxErrorToken)})
			}
		}
		return e
	}
	// Non-JSON body: keep a short single-line excerpt, it is usually a proxy
	// error page title or "upstream connect error".
	if s := strings.TrimSpace(string(body)); s != "" && !strings.HasPrefix(s, "<") {
		e.Message = cleanText(s, 200)
	}
	return e
}

// Bounds of the texts an APIError keeps from an error body, in bytes (a
// longer one is cut, with "..."), and of its raw Data (a longer one is
// dropped).
const (
	maxErrorText     = 500 // message, description
	maxViolationText = 200 // a field violation's description
	maxErrorToken    = 100 // code, field, rule
	maxErrorData     = 4 << 10
	// MaxFieldViolations bounds the field violations an APIError keeps.
	MaxFieldViolations = 10
)

// cleanText makes s one line of at most n bytes (plus "..." when cut):
// control characters (C0, DEL, C1) and invalid UTF-8 become spaces, and
// runs of white space one space.
func cleanText(s string, n int) string {
	s = oneline.Fold(s)
	if len(s) <= n {
		return s
	}
	return oneline.Cut(s, n) + "..."
}

// redactionForms returns the non-empty secrets together with the forms an
// answer may echo them in when it quotes them inside a JSON string (the app
// secret and refresh token travel in a JSON body): escaped as encoding/json
// writes them (`\"`, `\\`, `\u003c`, `\u003e`, `\u0026`, control
// characters, U+2028/U+2029), without the HTML escapes (JavaScript's
// JSON.stringify), with every non-ASCII rune as \uxxxx or \uXXXX as well
// (Python's and Java's defaults), and each of those with `/` as `\/` (PHP's).
// A decoded JSON string turns an escaped echo back into the secret, but the
// raw Data, a plain-text excerpt and a JSON document quoted in a message keep
// it escaped. Longest first, so that a form containing another is replaced
// whole. A secret that needs no escaping gives only itself.
func redactionForms(secrets []string) []string {
	var forms []string
	add := func(f string) {
		if f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	for _, sec := range secrets {
		add(sec)
		if !mayBeEscaped(sec) {
			continue
		}
		for _, html := range []bool{true, false} {
			q := jsonStringBody(sec, html)
			for _, f := range []string{q, asciiEscaped(q, "\\u%04x"), asciiEscaped(q, "\\u%04X")} {
				add(f)
				add(strings.ReplaceAll(f, "/", `\/`))
			}
		}
	}
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// mayBeEscaped reports whether a JSON encoder may write s otherwise than
// as is: s has a control character, a non-ASCII byte or one of " \ / < > &.
func mayBeEscaped(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || strings.IndexByte(`"\/<>&`, c) >= 0 {
			return true
		}
	}
	return false
}

// jsonStringBody is s JSON-encoded, without the quotes.
func jsonStringBody(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s) // a string always encodes
	q := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(q[1 : len(q)-1])
}

// asciiEscaped is the JSON string body q with every non-ASCII rune written
// as format (\uxxxx or \uXXXX), as UTF-16 surrogates past U+FFFF.
func asciiEscaped(q, format string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, format+format, r1, r2)
		default:
			fmt.Fprintf(&b, format, r)
		}
	}
	return b.String()
}

// redactBytes returns b with every occurrence of each non-empty secret
// replaced by [REDACTED] (b itself when none occurs).
func redactBytes(b []byte, secrets []string) []byte {
	for _, sec := range secrets {
		if sec != "" && bytes.Contains(b, []byte(sec)) {
			b = bytes.ReplaceAll(b, []byte(sec), []byte(redacted))
		}
	}
	return b
}

// redactString is redactBytes for a string.
func redactString(v string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			v = strings.ReplaceAll(v, sec, redacted)
		}
	}
	return v
}

// MaxRetryAfter bounds the Retry-After a response may impose (a minute):
// Wix's limit is per minute, so within one a site's whole allowance is
// back and no honest Retry-After is longer; a longer one (a proxy's, a
// buggy or hostile answer: "Retry-After: 31536000") would pause every
// command of the site for that long.
const MaxRetryAfter = time.Minute

// parseRetryAfter parses a Retry-After header (delta-seconds or HTTP-date),
// at most MaxRetryAfter; zero when absent, past or unreadable (NaN, Inf).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if math.IsNaN(secs) || (math.IsInf(secs, 0) && !errors.Is(err, strconv.ErrRange)) || secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, MaxRetryAfter.Seconds()) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// notSent reports whether err proves the request never reached Wix's
// application logic, so that even a non-idempotent call may be retried: a
// 429 (rejected by the rate limiter) or a failure to connect.
func notSent(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de)
}

// RedirectError is a 3xx answer. The client never follows a redirect: it
// would re-send the API key, the OAuth token or the app secret to whatever
// host the answer names. It is permanent (the base URL is wrong) and names
// the status and the Location host only, never a path, query or credential.
type RedirectError struct {
	// Op, Method and Path name the endpoint called (path without query).
	Op, Method, Path string
	// Status is the HTTP status (301, 302, 303, 307, 308, ...).
	Status int
	// LocationHost is the host (and port) the answer redirects to, "" if
	// the answer had no usable Location.
	LocationHost string
}

// Error explains the refused redirect.
func (e *RedirectError) Error() string {
	to := "without a usable Location"
	if e.LocationHost != "" {
		to = fmt.Sprintf("to host %q", e.LocationHost)
	}
	return fmt.Sprintf("wix %s (%s %s): answered %d %s, a redirect %s; redirects are not followed "+
		"(they would re-send the credentials): check the Wix base URL", e.Op, e.Method, e.Path,
		e.Status, http.StatusText(e.Status), to)
}

// Permanent reports true: the same request gets the same redirect.
func (e *RedirectError) Permanent() bool { return true }

// maxLocationHost bounds the host quoted from a Location header.
const maxLocationHost = 100

// redirectError builds the RedirectError of a 3xx response to req.
func redirectError(resp *http.Response, op, method, path string) *RedirectError {
	e := &RedirectError{Op: op, Method: method, Path: path, Status: resp.StatusCode}
	if loc, err := resp.Location(); err == nil {
		e.LocationHost = loc.Host
		if len(e.LocationHost) > maxLocationHost {
			e.LocationHost = e.LocationHost[:maxLocationHost] + "..."
		}
	}
	return e
}

// isRedirect reports whether status is a 3xx answer, none of which the
// client accepts.
func isRedirect(status int) bool { return status >= 300 && status <= 399 }
