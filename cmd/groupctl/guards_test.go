package main

import (
	"errors"
	"strings"
	"testing"

	"groupflow/internal/testenv"
	"groupflow/messages"
)

// TestSendGuardFlags: --allow-empty and --allow-mass-removal reach the
// command; an empty sync roster without --allow-mass-removal, or the flag
// without --sync, is refused before anything is sent.
func TestSendGuardFlags(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	csv := writeFile(t, "roster.csv", "email\nann@example.com\n")
	empty := writeFile(t, "empty.csv", "email\nnot-an-email\n")

	out := mustGroupctl(t, env, "send", "rules", "--source", "g0", "--all", "--allow-empty")
	msgs := env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdPropagateRules))
	if len(msgs) != 1 {
		t.Fatalf("%d rules commands", len(msgs))
	}
	cmd, err := messages.Decode(messages.CmdPropagateRules, msgs[0].Data)
	if err != nil || cmd.Meta().ID != strings.TrimSpace(out) || !cmd.(*messages.PropagateRules).AllowEmpty {
		t.Fatalf("rules: %v %s", err, msgs[0].Data)
	}

	mustGroupctl(t, env, "send", "provision", "--name", "G", "--roster", csv, "--sync", "--allow-mass-removal")
	msgs = env.Read(env.Subjects.CommandStream(), env.Subjects.Command(messages.CmdProvisionGroup))
	if len(msgs) != 1 {
		t.Fatalf("%d provision commands", len(msgs))
	}
	cmd, err = messages.Decode(messages.CmdProvisionGroup, msgs[0].Data)
	if p, ok := cmd.(*messages.ProvisionGroup); err != nil || !ok || !p.AllowMassRemoval || p.Membership != messages.MembershipSync {
		t.Fatalf("provision: %v %s", err, msgs[0].Data)
	}

	for _, args := range [][]string{
		{"send", "provision", "--name", "G", "--roster", empty, "--sync"},             // no usable row
		{"send", "provision", "--name", "G", "--roster", csv, "--allow-mass-removal"}, // without --sync
	} {
		_, errOut, err := groupctl(t, env, "", args...)
		if !errors.Is(err, errSilent) || !strings.Contains(errOut, "allowMassRemoval") {
			t.Fatalf("%v: %v\n%s", args, err, errOut)
		}
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 2 {
		t.Fatalf("%d commands published, want 2", n)
	}
}
