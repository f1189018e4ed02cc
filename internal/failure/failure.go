// Package failure classifies errors as transient (worth retrying) or
// permanent (retrying cannot help: the command goes to the dead-letter stream
// at once).
//
// Errors are transient unless something marks them permanent: a broker hiccup,
// a timeout or a Wix 5xx must never lose a command, so doubt favours retrying.
// An error marks itself permanent by implementing
//
//	interface{ Permanent() bool }
//
// anywhere in its wrap chain (the Wix client's APIError does), or by being
// wrapped with Permanent.
package failure

// permanentError wraps an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// Permanent marks err as permanent. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether any error in err's chain declares itself
// permanent. A nil error is not permanent.
func IsPermanent(err error) bool {
	for e := err; e != nil; {
		if p, ok := e.(interface{ Permanent() bool }); ok && p.Permanent() {
			return true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if IsPermanent(inner) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// IsTransient reports whether err is worth retrying: any non-nil error that
// is not permanent.
func IsTransient(err error) bool { return err != nil && !IsPermanent(err) }
