package mailpittest

import (
	"net"
	"strings"
	"testing"
)

// TestLaunchOnATakenPortSaysSo: Mailpit on an SMTP port another process
// holds exits at start with the words start retries on ("address already
// in use"), and start then serves on other ports.
func TestLaunchOnATakenPortSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	mp, log := launch(t, Bin(t), taken, FreePort(t), []string{"--smtp-auth-allow-insecure"})
	if mp != nil || !strings.Contains(log, "address already in use") {
		t.Fatalf("mailpit on a taken port: server %v, log:\n%s", mp != nil, log)
	}
	if mp := Start(t, 0); mp.SMTPPort == taken || mp.Count() != 0 {
		t.Fatalf("Start after that: SMTP port %d (taken %d), %d messages", mp.SMTPPort, taken, mp.Count())
	}
}
