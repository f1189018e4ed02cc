package regularfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"groupflow/internal/regularfile"
)

// TestReadRefusesWhatIsNoSmallRegularFile: a FIFO (not waited on), a
// device (not read), a directory and a file over the bound are refused; a
// missing file is os.ErrNotExist; a regular file within the bound is read.
func TestReadRefusesWhatIsNoSmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big, ok := filepath.Join(dir, "big"), filepath.Join(dir, "ok")
	if err := os.WriteFile(big, make([]byte, 11), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ok, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	var notRegular *regularfile.NotRegularError
	var tooLarge *regularfile.TooLargeError
	for path, want := range map[string]any{fifo: &notRegular, "/dev/zero": &notRegular, dir: &notRegular, big: &tooLarge} {
		_, err := regularfile.Read(path, 10)
		if !errors.As(err, want) || !regularfile.IsRefused(err) {
			t.Errorf("Read(%s) = %v, want %T", path, err, want)
		}
		if err := regularfile.Check(path, 10); !errors.As(err, want) {
			t.Errorf("Check(%s) = %v, want %T", path, err, want)
		}
	}
	if _, err := regularfile.Read(filepath.Join(dir, "none"), 10); !errors.Is(err, os.ErrNotExist) || regularfile.IsRefused(err) {
		t.Errorf("Read of a missing file = %v, want os.ErrNotExist", err)
	}
	if b, err := regularfile.Read(ok, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("Read(ok) = %q, %v", b, err)
	}
}
