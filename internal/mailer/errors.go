package mailer

import (
	"errors"
	"fmt"
)

// Failure reasons: the reason label of groupmail_failed_total.
const (
	// ReasonTemplate: no content.templateId, a missing or broken template,
	// or a missing variable.
	ReasonTemplate = "template"
	// ReasonMalformed: the event body is not a member_selected event.
	ReasonMalformed = "malformed"
	// ReasonRecipient: the member's address is not deliverable.
	ReasonRecipient = "recipient"
	// ReasonSMTPPermanent: the SMTP server answered 5xx.
	ReasonSMTPPermanent = "smtp_permanent"
	// ReasonExhausted: transient failures persisted through every delivery.
	ReasonExhausted = "exhausted"
	// ReasonClaimHeld: the last delivery found another instance's fresh
	// claim; dead-lettered so nothing is dropped (a replay is acknowledged
	// without sending if that instance did send).
	ReasonClaimHeld = "claim_held"
)

// PermanentError is a failure retrying cannot fix: the event is
// dead-lettered at once with an email_failed event (Permanent true). It is
// permanent for failure.IsPermanent too, like every permanent error of
// groupflow.
type PermanentError struct {
	// Reason is one of the Reason constants.
	Reason string
	Err    error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks the error permanent for failure.IsPermanent.
func (e *PermanentError) Permanent() bool { return true }

func permanentf(reason, format string, args ...any) error {
	return &PermanentError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// reasonOf returns the failure reason label of a permanent error.
func reasonOf(err error) string {
	var p *PermanentError
	if errors.As(err, &p) {
		return p.Reason
	}
	return ReasonExhausted
}
