package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// zeros is an endless stdin.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestCommandInputsAreBounded: a command body read from stdin or a file
// (send --subject, send campaign --content @file, schedule --file) is
// refused past messages.MaxCommandBytes with a clear error, before any
// connection, instead of being read until memory runs out.
func TestCommandInputsAreBounded(t *testing.T) {
	for name, args := range map[string][]string{
		"send stdin":       {"send", "--subject", "provision_group", "-"},
		"send file":        {"send", "--subject", "provision_group", "/dev/zero"},
		"campaign content": {"send", "campaign", "--campaign-id", "c-1", "--group", "g-1", "--content", "@/dev/zero"},
		"schedule file":    {"schedule", "report", "weekly", "--every", "1h", "--file", "/dev/zero"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, append([]string{"--nats-url", "nats://127.0.0.1:1"}, args...), zeros{}, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), "more than 8388608 bytes") {
				t.Fatalf("err %v\nstderr: %s", err, errOut.String())
			}
		})
	}
}
