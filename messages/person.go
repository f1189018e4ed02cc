package messages

import (
	"fmt"
	"strings"
	"unicode"
)

// Person kinds, the identifier a row is matched by (see Person.Kind).
const (
	KindContactID = "contactId"
	KindEmail     = "email"
	KindPhone     = "phone"
	KindName      = "name"
)

// Person is one row of ProvisionGroup.People. At least one identifier must be
// set; when several are, the strongest is used (see Kind).
type Person struct {
	// Email is matched against the site's contacts (case-insensitive).
	Email string `json:"email,omitempty"`
	// Phone is matched against the site's contacts after normalization.
	Phone string `json:"phone,omitempty"`
	// ContactID is a Wix contact id, used as is.
	ContactID string `json:"contactId,omitempty"`
	// Name is a full name ("Ann Lee"), matched against contacts' names;
	// a name matching several contacts is reported as "ambiguous".
	Name string `json:"name,omitempty"`
	// FirstName and LastName may be given instead of (or besides) Name.
	FirstName string `json:"firstName,omitempty"`
	// LastName: see FirstName.
	LastName string `json:"lastName,omitempty"`
	// Ref is an optional upstream row id, echoed in RowOutcome.Ref.
	Ref string `json:"ref,omitempty"`
}

// Kind returns the identifier the row is matched by: KindContactID, else
// KindEmail, else KindPhone, else KindName (Name or FirstName/LastName), or
// "" when the row has none.
func (p Person) Kind() string {
	switch {
	case !blank(p.ContactID):
		return KindContactID
	case !blank(p.Email):
		return KindEmail
	case !blank(p.Phone):
		return KindPhone
	case p.FullName() != "":
		return KindName
	}
	return ""
}

// FullName returns Name, else "FirstName LastName", trimmed.
func (p Person) FullName() string {
	if n := strings.TrimSpace(p.Name); n != "" {
		return n
	}
	return strings.TrimSpace(strings.TrimSpace(p.FirstName) + " " + strings.TrimSpace(p.LastName))
}

// Person problems returned by Problem.
const (
	ProblemNoIdentifier   = "no email, phone, contactId or name"
	ProblemMalformedEmail = "malformed email"
	ProblemMalformedPhone = "malformed phone"
	// ProblemMalformedName: a row matched by name whose name, first name
	// or last name holds control characters or invalid UTF-8.
	ProblemMalformedName = "malformed name (control characters or invalid UTF-8)"
	// ProblemMalformedContactID: a contactId that is not a valid id (see IDProblem).
	ProblemMalformedContactID = "malformed contactId"
)

// Problem returns "" when the row can be used, else why not
// (ProblemNoIdentifier, ProblemMalformedContactID, ProblemMalformedEmail,
// ProblemMalformedPhone, ProblemMalformedName). Only the identifier chosen
// by Kind is checked. A row with a problem does not
// fail the command: it is reported with ReasonInvalid and the problem as
// RowOutcome.Detail.
func (p Person) Problem() string {
	switch p.Kind() {
	case "":
		return ProblemNoIdentifier
	case KindContactID:
		if IDProblem(strings.TrimSpace(p.ContactID)) != "" {
			return ProblemMalformedContactID
		}
	case KindName:
		for _, n := range []string{p.Name, p.FirstName, p.LastName} {
			if textProblem(n, false) != "" {
				return ProblemMalformedName
			}
		}
	case KindEmail:
		if !ValidEmail(p.Email) {
			return ProblemMalformedEmail
		}
	case KindPhone:
		if !plausiblePhone(p.Phone) {
			return ProblemMalformedPhone
		}
	}
	return ""
}

// Display describes the row for logs without revealing its email, phone or
// name, e.g. `ref "crm-17" (email)` or "(phone)".
func (p Person) Display() string {
	kind := p.Kind()
	if kind == "" {
		kind = "no identifier"
	}
	if ref := strings.TrimSpace(p.Ref); ref != "" {
		if r := []rune(ref); len(r) > 64 {
			ref = string(r[:64]) + "…"
		}
		return fmt.Sprintf("ref %q (%s)", ref, kind)
	}
	return "(" + kind + ")"
}

// DisplayRow is Display prefixed by the 0-based row index, e.g. "row 3 (email)".
func (p Person) DisplayRow(row int) string { return fmt.Sprintf("row %d %s", row, p.Display()) }

// ValidEmail reports whether s looks like a deliverable address: one '@',
// a non-empty local part, a dotted domain, no whitespace or control
// characters, valid UTF-8, at most 254 bytes.
// It is deliberately loose; the mail server has the last word.
func ValidEmail(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) > 254 || strings.IndexFunc(s, unicode.IsSpace) >= 0 || strings.ContainsAny(s, "<>,;\"") || textProblem(s, false) != "" {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return false
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return false
	}
	return true
}

// plausiblePhone accepts digits with the usual separators (+ - . ( ) and
// spaces) and 5 to 15 digits; the handler normalizes further.
func plausiblePhone(s string) bool {
	digits := 0
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-.() ", r):
		default:
			return false
		}
	}
	return digits >= 5 && digits <= 15
}
