package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain SMTP (local relays, Mailpit)
	TLSStartTLS = "starttls" // STARTTLS required (submission, port 587)
	TLSImplicit = "tls"      // implicit TLS (SMTPS, port 465)
)

// Auth mechanisms.
const (
	AuthNone       = "none"
	AuthPlain      = "plain"       // AUTH PLAIN, only over TLS
	AuthLogin      = "login"       // AUTH LOGIN, only over TLS
	AuthPlainNoEnc = "plain-noenc" // AUTH PLAIN over an unencrypted connection (local test servers only)
	AuthLoginNoEnc = "login-noenc" // AUTH LOGIN over an unencrypted connection (local test servers only)
)

// SMTPConfig says how to reach the SMTP server. Password is never logged
// (String redacts it).
type SMTPConfig struct {
	Host string
	Port int
	// TLS is TLSNone, TLSStartTLS or TLSImplicit.
	TLS string
	// TLSSkipVerify disables certificate verification (test servers only).
	TLSSkipVerify bool
	// Auth is one of the Auth constants; "" means AuthPlain when Username
	// is set, else AuthNone.
	Auth     string
	Username string
	Password string
	// Timeout bounds connecting and each SMTP command (default 30s).
	Timeout time.Duration
	// HELO is the name given in EHLO/HELO (default: go-mail's, the host name).
	HELO string
}

// String describes the configuration without the password.
func (c SMTPConfig) String() string {
	return fmt.Sprintf("smtp://%s:%d tls=%s auth=%s user=%q", c.Host, c.Port, c.TLS, c.authMode(), c.Username)
}

func (c SMTPConfig) authMode() string {
	if c.Auth != "" {
		return c.Auth
	}
	if c.Username != "" {
		return AuthPlain
	}
	return AuthNone
}

// Validate checks the configuration.
func (c SMTPConfig) Validate() error {
	if c.Host == "" {
		return errors.New("smtp: host is required")
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("smtp: invalid port %d", c.Port)
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("smtp: tls must be none, starttls or tls, not %q", c.TLS)
	}
	switch c.authMode() {
	case AuthNone:
	case AuthPlain, AuthLogin:
		if c.TLS == TLSNone {
			return fmt.Errorf("smtp: auth %s sends the password in clear without TLS; use starttls/tls, or %s-noenc for a local test server", c.authMode(), c.authMode())
		}
		fallthrough
	case AuthPlainNoEnc, AuthLoginNoEnc:
		if c.Username == "" {
			return fmt.Errorf("smtp: auth %s needs a username", c.authMode())
		}
	default:
		return fmt.Errorf("smtp: auth must be none, plain, login, plain-noenc or login-noenc, not %q", c.Auth)
	}
	return nil
}

// Sender delivers one message. Send returns by ctx's deadline (the mailer's
// SendTimeout, which the claim timeout is checked against).
type Sender interface {
	Send(ctx context.Context, m *mail.Msg) error
}

// SMTPSender sends each message on its own connection with go-mail (a
// connection per message keeps failure handling simple: no half-broken
// pooled session; at mailer rates the handshake cost is small).
type SMTPSender struct {
	cfg  SMTPConfig
	opts []mail.Option
	tls  *tls.Config // implicit TLS (TLSImplicit), else nil
}

// NewSMTPSender validates cfg and returns a sender.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(cfg.Timeout)}
	tlsCfg := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSSkipVerify} //nolint:gosec // opt-in for test servers
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(tlsCfg))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL(), mail.WithTLSConfig(tlsCfg))
	}
	switch cfg.authMode() {
	case AuthPlain:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain))
	case AuthLogin:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthLogin))
	case AuthPlainNoEnc:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlainNoEnc))
	case AuthLoginNoEnc:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthLoginNoEnc))
	}
	if cfg.authMode() != AuthNone {
		opts = append(opts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	// Validate the options once, so a bad configuration fails at start.
	if _, err := mail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	sender := &SMTPSender{cfg: cfg, opts: opts}
	if cfg.TLS == TLSImplicit {
		sender.tls = tlsCfg
	}
	return sender, nil
}

// Send dials, sends m and closes the connection, all within ctx: when ctx
// ends the connection is closed, whatever the server is doing (go-mail reads
// ctx only while dialing, and bounds the rest by Timeout alone, set at the
// dial and again before MAIL, so an attempt lasted up to twice Timeout
// whatever ctx said). A message the server accepted (DATA answered 250)
// counts as sent even if the session then fails (RSET or QUIT), so it is
// not sent again.
func (s *SMTPSender) Send(ctx context.Context, m *mail.Msg) error {
	var stops []func() bool
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	// Clipped: concurrent sends must not append into one backing array.
	c, err := mail.NewClient(s.cfg.Host, append(slices.Clip(s.opts), mail.WithDialContextFunc(s.dialer(ctx, &stops)))...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	err = c.DialAndSendWithContext(ctx, m)
	switch {
	case err == nil || m.IsDelivered():
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("smtp attempt stopped at its time limit (%v): %w", ctx.Err(), err)
	}
	return err
}

// dialer is Send's dial function: it connects (TLS first for TLSImplicit;
// go-mail does not when given a dial function) and closes the connection
// when ctx ends, appending the stop of that to *stops.
func (s *SMTPSender) dialer(ctx context.Context, stops *[]func() bool) mail.DialContextFunc {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		*stops = append(*stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		if s.tls == nil {
			return conn, nil
		}
		tc := tls.Client(conn, s.tls.Clone())
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// ClassifySMTP tells a send error's kind: permanent (a 5xx answer to MAIL,
// RCPT or DATA, or a message go-mail cannot send at all) or transient
// (4xx, connection, TLS and authentication errors: the server or the
// configuration may recover). code is the SMTP reply code when known.
func ClassifySMTP(err error) (permanent bool, code int) {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false, 0
	}
	code = se.ErrorCode()
	switch se.Reason {
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
		return code >= 500 && code < 600, code
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return true, code
	}
	return false, code
}

// redact removes the recipient's address from an error text (SMTP replies
// and go-mail errors quote it), so reasons in logs, events and dead letters
// carry no email address.
func redact(s, email string) string {
	if email == "" {
		return s
	}
	out := s
	for {
		i := strings.Index(strings.ToLower(out), strings.ToLower(email))
		if i < 0 {
			return out
		}
		out = out[:i] + "<recipient>" + out[i+len(email):]
	}
}
