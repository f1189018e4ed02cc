package wixsim

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStateFileNotARegularFile: a --wix-sim-state that is a FIFO (or a
// device) is not loaded, and New does not wait on it: os.ReadFile of a FIFO
// blocked the processor's startup until a writer came.
func TestStateFileNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "wixsim.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- (&Server{}).load(fifo) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO state file was loaded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a FIFO state file hangs")
	}
}
