package broker

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"groupflow/internal/netsafe"
	"groupflow/internal/regularfile"
)

// ConnConfig says how to reach NATS. Secrets (creds, nkey seed) are read
// from files and never logged.
type ConnConfig struct {
	// URL of the server or a comma-separated list of cluster seeds.
	URL string
	// Name identifies the connection in server monitoring.
	Name string
	// CredsFile is a NATS .creds file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is a file holding an nkey seed.
	NKeyFile string
	// TLSCert, TLSKey and TLSCA configure mutual TLS; TLSCA alone verifies
	// the server.
	TLSCert, TLSKey, TLSCA string
	// InboxPrefix replaces "_INBOX" as the prefix of reply subjects, so a
	// server can give each user its own inbox space (see
	// deploy/nats/accounts.conf): no user can read another's replies.
	InboxPrefix string
	// InProcess, when set, connects to the embedded server without TCP.
	InProcess *server.Server
}

// Connect opens a connection that reconnects forever: a broker restart or a
// cluster node loss must pause groupflow, never stop it. A server that
// refuses the credentials at the first attempt ends Connect at once with a
// ConnectError naming the refusal and the user; a server that cannot be
// reached yet is retried in the background. Errors never repeat a password
// or token of cfg.URL.
func Connect(cfg ConnConfig, log *zap.Logger) (*nats.Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := CheckFiles(cfg); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", zap.String("server", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", zap.String("subject", subj), zap.Error(DescribeConnectError(cfg, err)))
		}),
		nats.ClosedHandler(func(c *nats.Conn) {
			if err := c.LastError(); err != nil {
				log.Error("nats connection closed for good", zap.Error(DescribeConnectError(cfg, err)))
			}
		}),
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	url := cfg.URL
	if cfg.InProcess != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess))
		if url == "" {
			url = cfg.InProcess.ClientURL()
		}
	}
	if url == "" {
		url = nats.DefaultURL
	}
	cfg.URL = url
	// One attempt first, so that refused credentials or a malformed URL
	// are reported now rather than retried in silence.
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		return nc, nil
	}
	if _, refused := authRefusal(err); refused || cfg.InProcess != nil {
		return nil, DescribeConnectError(cfg, err)
	}
	log.Warn("nats not reachable yet, retrying in the background", zap.Error(DescribeConnectError(cfg, err)))
	nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, DescribeConnectError(cfg, err)
	}
	return nc, nil
}

// ConnectError is a failed or refused connection, described in one line
// without the secrets of the URL; Unwrap gives the nats.go error (errors.Is
// nats.ErrAuthorization works).
type ConnectError struct {
	msg string
	err error
}

// Error is the description without secrets.
func (e *ConnectError) Error() string { return e.msg }

// Unwrap returns the underlying error (whose text may quote the URL).
func (e *ConnectError) Unwrap() error { return e.err }

// DescribeConnectError turns err, met while connecting with cfg, into a
// ConnectError: "NATS refused the credentials (authorization violation) for
// user ops" for a refusal, else "connect to nats <urls>: <reason>", with
// every password or token of cfg.URL redacted. groupctl, groupflow and
// groupmail all report connection errors through it.
func DescribeConnectError(cfg ConnConfig, err error) error {
	if err == nil {
		return nil
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return err
	}
	if reason, ok := authRefusal(err); ok {
		return &ConnectError{msg: fmt.Sprintf("NATS refused the credentials (%s) for %s", reason, identity(cfg)), err: err}
	}
	return &ConnectError{err: err, msg: fmt.Sprintf("connect to nats %s: %s",
		netsafe.RedactURLs(cfg.URL), netsafe.RedactText(err.Error(), cfg.URL))}
}

// authRefusal reports whether err is the server refusing the credentials,
// and the server's reason.
func authRefusal(err error) (string, bool) {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), "nats: "), true
		}
	}
	return "", false
}

// identity names the credentials cfg presents, without their secret part.
func identity(cfg ConnConfig) string {
	for _, p := range strings.Split(cfg.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return "user " + u.User.Username()
		}
		return "the token in the URL"
	}
	switch {
	case cfg.CredsFile != "":
		return "credentials file " + cfg.CredsFile
	case cfg.NKeyFile != "":
		return "nkey seed file " + cfg.NKeyFile
	case cfg.TLSCert != "":
		return "TLS certificate " + cfg.TLSCert
	}
	return "no credentials (none were given)"
}

// MaxConnFileBytes bounds each credential or TLS file of a ConnConfig.
const MaxConnFileBytes = 1 << 20

// CheckFiles checks the credential and TLS files cfg names, before nats.go
// reads them whole: each must be a regular file (a FIFO or a device is
// refused without waiting on it) of at most MaxConnFileBytes. The error
// names the file's role and path, never its content.
func CheckFiles(cfg ConnConfig) error {
	for _, f := range []struct{ role, path string }{{"credentials file", cfg.CredsFile}, {"nkey seed file", cfg.NKeyFile},
		{"TLS certificate file", cfg.TLSCert}, {"TLS key file", cfg.TLSKey}, {"TLS CA file", cfg.TLSCA}} {
		if f.path == "" {
			continue
		}
		if err := checkFile(f.path); err != nil {
			return fmt.Errorf("nats %s %s: %w", f.role, f.path, err)
		}
	}
	return nil
}

func checkFile(path string) error { return regularfile.Check(path, MaxConnFileBytes) }
