package profiling

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartCPUWritesAProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := StartCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile %v, %v", fi, err)
	}
}

func TestStartCPUWithoutPathOrWithABadOneProfilesNothing(t *testing.T) {
	stop, err := StartCPU("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop, err = StartCPU(filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof"))
	if err == nil {
		t.Fatal("no error for an unwritable path")
	}
	stop()
	// A profile can start again: nothing was left running.
	stop, err = StartCPU(filepath.Join(t.TempDir(), "again.prof"))
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
