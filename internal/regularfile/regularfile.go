// Package regularfile opens files named by configuration, which is not
// trusted to name regular files: a FIFO, a device or a directory in their
// place is refused without waiting on it (opening a FIFO for reading would
// wait for a writer) and without reading it (a device never ends), and a
// file over its bound is refused rather than read into memory.
package regularfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// NotRegularError is the error for a path that opens something other than
// a regular file (symlinks are followed).
type NotRegularError struct {
	Mode os.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("not a regular file (%v)", e.Mode.Type())
}

// TooLargeError is the error for a file over its bound of Max bytes.
type TooLargeError struct {
	Max int64
}

func (e *TooLargeError) Error() string { return fmt.Sprintf("larger than %d bytes", e.Max) }

// Check opens path without blocking and returns nil when it is a regular
// file of at most max bytes, else a *NotRegularError, a *TooLargeError or
// the open's or stat's error (os.ErrNotExist among them).
func Check(path string, max int64) error {
	f, err := open(path, max)
	if err == nil {
		f.Close()
	}
	return err
}

// Read returns the content of the regular file at path, of at most max
// bytes; its errors are Check's, and a file that grows past max while it
// is read is a *TooLargeError too.
func Read(path string, max int64) ([]byte, error) {
	f, err := open(path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{Max: max}
	}
	return b, nil
}

// open opens path without blocking and checks that it is a regular file
// of at most max bytes (its size as stat tells it).
func open(path string, max int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	switch {
	case err != nil:
	case !st.Mode().IsRegular():
		err = &NotRegularError{Mode: st.Mode()}
	case st.Size() > max:
		err = &TooLargeError{Max: max}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// IsRefused reports whether err is Check's or Read's refusal of what path
// names (not a regular file, or too large), not a failure to open or read.
func IsRefused(err error) bool {
	var nr *NotRegularError
	var tl *TooLargeError
	return errors.As(err, &nr) || errors.As(err, &tl)
}
