package broker

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConnectFilesBounded: the credential and TLS files Connect is given
// are read only if they are regular files of at most MaxConnFileBytes: a
// FIFO blocked Connect (nats.go reads the nkey seed and the CA bundle with
// os.ReadFile before it dials) and an oversized file was read whole; both
// are refused at once, naming the file's role and path.
func TestConnectFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxConnFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cfg  ConnConfig
		want string
	}{
		{ConnConfig{NKeyFile: fifo}, "nkey seed file " + fifo + ": not a regular file"},
		{ConnConfig{TLSCA: fifo}, "TLS CA file " + fifo + ": not a regular file"},
		{ConnConfig{CredsFile: fifo}, "credentials file " + fifo + ": not a regular file"},
		{ConnConfig{TLSCert: big, TLSKey: big}, "TLS certificate file " + big + ": larger than"},
		{ConnConfig{NKeyFile: filepath.Join(dir, "missing")}, "nkey seed file"},
	} {
		tt.cfg.URL = "nats://127.0.0.1:1"
		done := make(chan error, 1)
		go func() {
			nc, err := Connect(tt.cfg, nil)
			if nc != nil {
				nc.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%+v: err = %v, want %q", tt.cfg, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%+v: Connect hangs on the file", tt.cfg)
		}
	}
}
