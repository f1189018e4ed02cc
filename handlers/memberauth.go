package handlers

import (
	"errors"

	"groupflow/internal/wix"
)

// needsMemberCredential reports whether err is Wix refusing a membership
// questions, rules or answers endpoint because the site has no member
// credential: every group of the command would be refused the same way, so
// the command fails as a whole, with the reason naming what to configure.
func needsMemberCredential(err error) bool {
	var ae *wix.AuthRefusedError
	return errors.As(err, &ae) && ae.NeedsMemberCredential()
}

// authRefusal returns the reason of an auth refusal in err, unshortened.
func authRefusal(err error) (string, bool) {
	var ae *wix.AuthRefusedError
	if errors.As(err, &ae) {
		return ae.Error(), true
	}
	return "", false
}
