package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0180353a1b2c3d4e5f60718293a4b5c6d7e8f901"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := describe(info), "v1.2.3 (0180353a1b2c, modified, go1.26.0)"; got != want {
		t.Fatalf("describe = %q, want %q", got, want)
	}
	if got := describe(&debug.BuildInfo{GoVersion: "go1.26.0"}); !strings.HasPrefix(got, "(devel) (unknown revision") {
		t.Fatalf("describe without VCS info = %q", got)
	}
}

func TestPrintIfAsked(t *testing.T) {
	var b strings.Builder
	if PrintIfAsked("x", []string{"--a", "--", "--version"}, &b) || b.Len() > 0 {
		t.Fatal("--version after -- is an argument, not the flag")
	}
	if !PrintIfAsked("groupflow", []string{"-log-level", "debug", "--version"}, &b) || !strings.HasPrefix(b.String(), "groupflow ") {
		t.Fatalf("--version not handled: %q", b.String())
	}
}
