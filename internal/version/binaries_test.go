package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"groupflow/internal/testutil"
)

// Every binary under cmd/ answers --version with its name and version and
// exits 0 (the README says so; mailview's flag set refused it).
func TestEveryBinaryPrintsItsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	for _, c := range cmds {
		if !c.IsDir() {
			continue
		}
		out, err := exec.Command(filepath.Join(bin, c.Name()), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c.Name()+" ") {
			t.Errorf("%s --version: %v, %q; want exit 0 and %q first", c.Name(), err, out, c.Name()+" ")
		}
	}
}
