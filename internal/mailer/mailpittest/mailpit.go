// Package mailpittest runs a real Mailpit SMTP server for tests and reads
// the messages back through its HTTP API.
package mailpittest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"groupflow/internal/testutil"
)

// Bin finds the Mailpit binary: $MAILPIT_BIN, else bin/mailpit at the module
// root (testutil.ModuleRoot; installed by the Makefile), else PATH. Without
// it the test is skipped, or fails when $CI is set.
func Bin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILPIT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MAILPIT_BIN=%s: %v", p, err)
		}
		return p
	}
	if root, err := testutil.ModuleRoot(); err == nil {
		p := filepath.Join(root, "bin", "mailpit")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	msg := "mailpit not found: set MAILPIT_BIN, or install it with `GOBIN=$PWD/bin go install github.com/axllent/mailpit@v1.33.1` (make installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Server is a Mailpit process on loopback ports, with an in-test database.
type Server struct {
	t        testing.TB
	SMTPPort int
	API      string
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
}

// Start starts Mailpit with its SMTP server on smtpPort (0 = a free
// port), accepting any SMTP credentials, chaos enabled, and waits until its
// API and SMTP server answer. It is killed when the test ends.
func Start(t testing.TB, smtpPort int) *Server {
	t.Helper()
	return start(t, smtpPort, "--smtp-auth-allow-insecure")
}

// TLS modes of StartWithTLS.
const (
	StartTLS    = "starttls" // STARTTLS required
	ImplicitTLS = "tls"      // TLS from the first byte (SMTPS)
)

// StartWithTLS starts Mailpit as Start does (but AUTH only over TLS), with a fresh self-signed
// certificate for 127.0.0.1 and TLS required in mode (StartTLS or
// ImplicitTLS).
func StartWithTLS(t testing.TB, mode string) *Server {
	t.Helper()
	cert, key := selfSigned(t)
	args := []string{"--smtp-tls-cert", cert, "--smtp-tls-key", key}
	switch mode {
	case StartTLS:
		args = append(args, "--smtp-require-starttls")
	case ImplicitTLS:
		args = append(args, "--smtp-require-tls")
	default:
		t.Fatalf("mailpittest: TLS mode %q", mode)
	}
	return start(t, 0, args...)
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) to a temporary directory and returns their paths.
func selfSigned(t testing.TB) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpittest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// start runs Mailpit on smtpPort (0: a free one) and a free HTTP port. A
// port picked free can be taken by another process before Mailpit binds
// it: when Mailpit exits at start saying its address is in use, start tries
// again on newly picked ports (the SMTP port too unless the caller chose it),
// up to startAttempts times.
func start(t testing.TB, smtpPort int, extra ...string) *Server {
	t.Helper()
	bin := Bin(t)
	for attempt := 1; ; attempt++ {
		port := smtpPort
		if port == 0 {
			port = FreePort(t)
		}
		mp, log := launch(t, bin, port, FreePort(t), extra)
		if mp != nil {
			return mp
		}
		if !strings.Contains(log, "address already in use") || attempt == startAttempts {
			t.Fatalf("mailpit exited at start (attempt %d):\n%s", attempt, log)
		}
	}
}

// startAttempts bounds start's tries on ports taken meanwhile.
const startAttempts = 5

// launch runs one Mailpit and waits until it serves both ports; when it
// exits first, launch returns nil and its log.
func launch(t testing.TB, bin string, smtpPort, httpPort int, extra []string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mailpit.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--max", "10000",
		"--smtp-auth-accept-any",
		"--smtp-disable-rdns", "--disable-version-check",
		"--enable-chaos",
	)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start mailpit: %v", err)
	}
	mp := &Server{t: t, SMTPPort: smtpPort, API: fmt.Sprintf("http://127.0.0.1:%d", httpPort), cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(mp.done) }()
	t.Cleanup(func() {
		mp.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("mailpit log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-mp.done:
			b, _ := os.ReadFile(logPath)
			return nil, string(b)
		default:
		}
		if resp, err := http.Get(mp.API + "/api/v1/messages?limit=1"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && greetsAsMailpit(smtpPort) {
				return mp, ""
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("mailpit not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond) // readiness polling
	}
}

// greetsAsMailpit reports whether the SMTP server on port is Mailpit (its
// greeting says so): a port taken by another process before Mailpit bound
// it accepts connections too, while Mailpit logs the bind error and exits.
// Implicit TLS (StartWithTLS) greets inside TLS.
func greetsAsMailpit(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	d := &net.Dialer{Timeout: time.Second}
	greets := func(c net.Conn) bool {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, "220 ") && strings.Contains(line, "Mailpit")
	}
	if c, err := d.Dial("tcp", addr); err != nil || greets(c) {
		return err == nil
	}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test's own self-signed server
	return err == nil && greets(c)
}

// Stop kills Mailpit and waits for it to exit.
func (mp *Server) Stop() {
	select {
	case <-mp.done:
		return
	default:
	}
	_ = mp.cmd.Process.Kill()
	<-mp.done
}

// Address is a mail address in Mailpit's API.
type Address struct {
	Name    string
	Address string
}

// Summary is a message in Mailpit's list.
type Summary struct {
	ID        string
	MessageID string
	Subject   string
	To        []Address
	Username  string
}

// Message is one message in Mailpit's API.
type Message struct {
	ID        string
	MessageID string
	From      Address
	To        []Address
	Subject   string
	Text      string
	HTML      string
	Username  string
}

func (mp *Server) getJSON(path string, v any) {
	mp.t.Helper()
	resp, err := http.Get(mp.API + path)
	if err != nil {
		mp.t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		mp.t.Fatalf("mailpit GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		mp.t.Fatalf("mailpit GET %s: %v: %s", path, err, b)
	}
}

// Messages lists every stored message (newest first) and the total.
func (mp *Server) Messages() ([]Summary, int) {
	mp.t.Helper()
	var all []Summary
	total := 0
	for start := 0; ; {
		var page struct {
			Total    int       `json:"total"`
			Messages []Summary `json:"messages"`
		}
		mp.getJSON("/api/v1/messages?limit=500&start="+strconv.Itoa(start), &page)
		total = page.Total
		all = append(all, page.Messages...)
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.Total {
			return all, total
		}
	}
}

// Count returns the number of stored messages.
func (mp *Server) Count() int {
	mp.t.Helper()
	var page struct {
		Total int `json:"total"`
	}
	mp.getJSON("/api/v1/messages?limit=1", &page)
	return page.Total
}

// WaitCount polls until at least n messages are stored, or fails after timeout.
func (mp *Server) WaitCount(n int, timeout time.Duration) int {
	mp.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := mp.Count()
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			mp.t.Fatalf("mailpit has %d messages after %s, want %d", c, timeout, n)
		}
		time.Sleep(25 * time.Millisecond) // polling Mailpit's API
	}
}

// Message returns one message.
func (mp *Server) Message(id string) Message {
	mp.t.Helper()
	var m Message
	mp.getJSON("/api/v1/message/"+id, &m)
	return m
}

// Headers returns a message's headers.
func (mp *Server) Headers(id string) map[string][]string {
	mp.t.Helper()
	h := map[string][]string{}
	mp.getJSON("/api/v1/message/"+id+"/headers", &h)
	return h
}

// Chaos makes Mailpit answer RCPT TO with code, with probability percent.
func (mp *Server) Chaos(code, probability int) {
	mp.t.Helper()
	body, _ := json.Marshal(map[string]any{"Recipient": map[string]int{"ErrorCode": code, "Probability": probability}})
	req, _ := http.NewRequest(http.MethodPut, mp.API+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		mp.t.Fatalf("mailpit chaos: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		mp.t.Fatalf("mailpit chaos: %s: %s", resp.Status, b)
	}
}
