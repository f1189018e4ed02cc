package wix

import (
	"encoding/json"
	"fmt"
	"io"

	"go.uber.org/zap/zapcore"
)

const redacted = "[REDACTED]"

// Credentials authenticate calls for one site. Set exactly one mode:
//
//   - API key: APIKey. Requests carry "Authorization: <key>" and
//     "wix-site-id: <site id>".
//   - App OAuth (client credentials): AppID, AppSecret and InstanceID. The
//     client exchanges them for an access token at POST /oauth2/token, caches
//     it per instance and sends it raw in Authorization, without wix-site-id.
//
// Either mode may add a member credential (MemberRefreshToken and
// MemberClientID) of a site member who is a group admin: the endpoints that
// "require visitor or member authentication" (membership questions, rules,
// answers) then use it, and every other endpoint keeps the API key or app
// token. See memberauth.go and AUTH.md.
//
// Credentials never print their secrets: String, GoString, Format,
// MarshalJSON and MarshalLogObject all redact APIKey, AppSecret and
// MemberRefreshToken.
type Credentials struct {
	// APIKey is a Wix API key (API-key mode).
	APIKey string
	// AppID is the app's client ID (OAuth mode).
	AppID string
	// AppSecret is the app's client secret (OAuth mode).
	AppSecret string
	// InstanceID is the app instance installed on the site (OAuth mode).
	InstanceID string
	// MemberRefreshToken is a Wix OAuth refresh token of a site member who
	// is an admin of the groups groupflow manages (optional).
	MemberRefreshToken string
	// MemberClientID is the client ID of the Wix OAuth app that issued
	// MemberRefreshToken (required with it).
	MemberClientID string
}

// hasMember reports whether c carries a member credential.
func (c Credentials) hasMember() bool { return c.MemberRefreshToken != "" }

// oauth reports whether c uses the app OAuth mode.
func (c Credentials) oauth() bool { return c.APIKey == "" && c.AppID != "" }

// validate checks that exactly one complete mode is set.
func (c Credentials) validate() error {
	if (c.MemberRefreshToken == "") != (c.MemberClientID == "") {
		return invalid("credentials: a member credential needs both MemberRefreshToken and MemberClientID")
	}
	hasApp := c.AppID != "" || c.AppSecret != "" || c.InstanceID != ""
	switch {
	case c.APIKey != "" && hasApp:
		return invalid("credentials: set either APIKey or AppID/AppSecret/InstanceID, not both")
	case c.APIKey != "":
		return nil
	case c.AppID == "" || c.AppSecret == "" || c.InstanceID == "":
		return invalid("credentials: need APIKey, or all of AppID, AppSecret and InstanceID")
	}
	return nil
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns a description with secrets redacted.
func (c Credentials) String() string {
	member := ""
	if c.MemberRefreshToken != "" || c.MemberClientID != "" {
		member = fmt.Sprintf(", MemberRefreshToken:%q, MemberClientID:%q", mask(c.MemberRefreshToken), c.MemberClientID)
	}
	if c.APIKey != "" || !c.oauth() {
		return fmt.Sprintf("wix.Credentials{APIKey:%q%s}", mask(c.APIKey), member)
	}
	return fmt.Sprintf("wix.Credentials{AppID:%q, AppSecret:%q, InstanceID:%q%s}", c.AppID, mask(c.AppSecret), c.InstanceID, member)
}

// GoString is used by %#v; it redacts secrets like String.
func (c Credentials) GoString() string { return c.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %d, %x...) print the redacted
// form, never the raw fields.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// MarshalJSON writes the redacted form, so that zap.Reflect or a config dump
// cannot leak secrets.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"apiKey": mask(c.APIKey), "appId": c.AppID, "appSecret": mask(c.AppSecret), "instanceId": c.InstanceID,
		"memberRefreshToken": mask(c.MemberRefreshToken), "memberClientId": c.MemberClientID,
	})
}

// MarshalLogObject makes zap.Any / zap.Object log the redacted form.
func (c Credentials) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if c.APIKey != "" {
		enc.AddString("apiKey", redacted)
	}
	if c.AppID != "" {
		enc.AddString("appId", c.AppID)
	}
	if c.AppSecret != "" {
		enc.AddString("appSecret", redacted)
	}
	if c.InstanceID != "" {
		enc.AddString("instanceId", c.InstanceID)
	}
	if c.MemberRefreshToken != "" {
		enc.AddString("memberRefreshToken", redacted)
	}
	if c.MemberClientID != "" {
		enc.AddString("memberClientId", c.MemberClientID)
	}
	return nil
}
