// Package version tells which build of a groupflow binary is running: the
// module version and the VCS revision recorded by the Go toolchain
// (debug.ReadBuildInfo). Every binary's --version prints String.
package version

import (
	"fmt"
	"io"
	"runtime/debug"
)

// String returns "<module version> (<revision>[, modified], <go version>)",
// e.g. "(devel) (0180353a1b2c, modified, go1.26.0)"; "unknown" parts when
// the binary carries no build info (go run of a file list, stripped builds).
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build info)"
	}
	return describe(info)
}

func describe(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	rev, modified := "unknown revision", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s (%s, %s)", v, rev, info.GoVersion)
}

// PrintIfAsked prints "<name> <String()>" to w and returns true when args
// (a binary's arguments, up to a "--") hold --version or -version; a main
// calls it before parsing its flags and exits 0 when it returns true.
func PrintIfAsked(name string, args []string, w io.Writer) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--version" || a == "-version" {
			fmt.Fprintln(w, name, String())
			return true
		}
	}
	return false
}
