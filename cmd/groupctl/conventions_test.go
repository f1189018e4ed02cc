package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runNoNATS(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestEveryCommandHasExamples(t *testing.T) {
	root := newApp(nil, nil, nil).rootCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.IsAvailableCommand() || c == root {
			if strings.TrimSpace(c.Example) == "" {
				t.Errorf("%s has no examples in its help", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

func TestUnknownSubcommandSuggestsAndExits2(t *testing.T) {
	_, _, err := runNoNATS(t, "dlq", "lst")
	if err == nil || !strings.Contains(err.Error(), "did you mean ls?") {
		t.Fatalf("dlq lst: %v", err)
	}
	if exitCode(err) != 2 {
		t.Fatalf("exit code %d, want 2", exitCode(err))
	}
	if _, _, err := runNoNATS(t, "dlq"); err == nil || exitCode(err) != 2 {
		t.Fatalf("dlq without a subcommand: %v", err)
	}
	if _, _, err := runNoNATS(t, "statsu", "x"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "status") {
		t.Fatalf("unknown top-level command: %v", err)
	}
	if _, _, err := runNoNATS(t, "dlq", "ls", "--no-such-flag"); err == nil || exitCode(err) != 2 {
		t.Fatalf("bad flag: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	out, _, err := runNoNATS(t, "--version")
	if err != nil || !strings.HasPrefix(out, "groupctl ") {
		t.Fatalf("--version: %q %v", out, err)
	}
}

func TestRequiredQuestionFlagTakesText(t *testing.T) {
	// The README's example, as fixed: --required-question takes the text.
	_, errOut, err := runNoNATS(t, "--nats-url", "nats://127.0.0.1:1", "send", "questions", "--group", "g1",
		"--question", "Why do you join?", "--required-question", "Which classes interest you?")
	if err != nil && strings.Contains(err.Error(), "flag needs an argument") {
		t.Fatalf("flag refused: %v %s", err, errOut)
	}
}

// resolved returns the connection settings groupctl would use for args.
func resolved(t *testing.T, args ...string) *app {
	t.Helper()
	a := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	root := a.rootCmd()
	root.SetArgs(append(args, "groups", "ls", "--help"))
	root.SetOut(&bytes.Buffer{})
	if err := root.PersistentPreRunE(root, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConnectionPrecedence(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("GROUPFLOW_NATS_URL", "nats://groupflow-only:4222")
	t.Setenv("GROUPCTL_CONTEXT", "")
	t.Setenv("GROUPCTL_NATS_URL", "")
	t.Setenv("NATS_URL", "")
	if a := resolved(t); a.natsURL != defaultNATSURL {
		t.Fatalf("default: %q (GROUPFLOW_NATS_URL must not be read)", a.natsURL)
	}
	t.Setenv("NATS_URL", "nats://from-nats-url:4222")
	if a := resolved(t); a.natsURL != "nats://from-nats-url:4222" {
		t.Fatalf("NATS_URL: %q", a.natsURL)
	}
	dir := filepath.Join(cfg, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctxJSON := `{"url":"nats://from-context:4222","creds":"/x/ops.creds","inbox_prefix":"_INBOX_ops"}`
	if err := os.WriteFile(filepath.Join(dir, "ops.json"), []byte(ctxJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	a := resolved(t)
	a.context, a.natsURL = "ops", ""
	if err := a.resolveConnection(); err != nil {
		t.Fatal(err)
	}
	if a.natsURL != "nats://from-context:4222" || a.creds != "/x/ops.creds" || a.inboxPrefix != "_INBOX_ops" {
		t.Fatalf("context: url %q creds %q inbox %q", a.natsURL, a.creds, a.inboxPrefix)
	}
	t.Setenv("GROUPCTL_NATS_URL", "nats://from-groupctl-env:4222")
	a = resolved(t)
	a.context, a.natsURL = "ops", ""
	if err := a.resolveConnection(); err != nil || a.natsURL != "nats://from-groupctl-env:4222" {
		t.Fatalf("GROUPCTL_NATS_URL over the context: %q %v", a.natsURL, err)
	}
	a.context, a.natsURL = "../etc/passwd", ""
	if err := a.resolveConnection(); err == nil {
		t.Fatal("a context name with a path was accepted")
	}
	a.context = "missing"
	if err := a.resolveConnection(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing context: %v", err)
	}
}
