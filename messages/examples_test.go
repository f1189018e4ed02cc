package messages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// example is one command from testdata/commands.
type example struct {
	name, commandType string
	body              []byte
}

// loadExamples reads testdata/commands/<type>.<name>.json.
func loadExamples(tb testing.TB) []example {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "commands", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no examples: %v", err)
	}
	var out []example
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		base := filepath.Base(f)
		t, _, _ := strings.Cut(base, ".")
		out = append(out, example{name: base, commandType: t, body: body})
	}
	return out
}
