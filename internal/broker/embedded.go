// Package broker owns groupflow's connection to NATS JetStream: an embedded
// nats-server for the default single-machine run, connections to an external
// server or cluster, and the idempotent provisioning of streams, consumers and
// buckets at start-up.
package broker

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// DataDir holds the JetStream file store (in a "jetstream" folder).
	DataDir string
	// Listen is the loopback host:port of the client listener, so the nats
	// CLI and groupctl can connect (default 127.0.0.1:4222). Port 0 picks a
	// free port (tests).
	Listen string
	// ServerName names the server in logs and advisories.
	ServerName string
	// MaxPayload is the largest message the server accepts, in bytes
	// (default 8 MiB, so a 10,000-person roster fits in one command).
	MaxPayload int32
	// SyncAlways makes the file store fsync every write instead of every
	// two minutes: slower, but an acknowledged command survives power loss.
	SyncAlways bool
}

// DefaultMaxPayload is the embedded server's message size limit: large
// enough for a 10,000-person roster (about 1 MiB as JSON), within what NATS
// recommends.
const DefaultMaxPayload = 8 << 20

// MaxPayloadLimit is the largest MaxPayload the embedded server accepts:
// nats-server refuses a max_payload above a client's pending-bytes limit.
const MaxPayloadLimit = server.MAX_PENDING_SIZE

// Embedded is a running in-process nats-server with JetStream.
type Embedded struct {
	Server *server.Server
	// URL is the client URL of the loopback listener.
	URL string
}

// StartEmbedded starts nats-server with JetStream on a loopback listener and
// a file store under cfg.DataDir, and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "groupflow-embedded"
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	// A busy port is said at once, in one line (nats-server would wait for
	// readiness that never comes).
	if port != server.RANDOM_PORT {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cannot listen on %s (in use by another groupflow or nats-server? use --nats-listen, or --nats-url for an external NATS): %w", cfg.Listen, err)
		}
		_ = ln.Close()
	}
	// nats-server keeps its files in a "jetstream" folder below StoreDir.
	storeDir := cfg.DataDir
	if err := os.MkdirAll(storeDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: create store dir: %w", err)
	}
	opts := &server.Options{
		ServerName:            cfg.ServerName,
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              storeDir,
		MaxPayload:            cfg.MaxPayload,
		NoSigs:                true,
		DisableShortFirstPing: true,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if log != nil {
		ns.SetLoggerV2(&serverLogger{log: log.Named("nats-server").Sugar()}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 30s (is %s already in use?)", cfg.Listen)
	}
	return &Embedded{Server: ns, URL: ns.ClientURL()}, nil
}

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	if e == nil || e.Server == nil {
		return
	}
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}

// serverLogger adapts zap to nats-server's logger interface.
type serverLogger struct{ log *zap.SugaredLogger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debugf(format, v...) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warnf(format, v...) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Errorf(format, v...) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Errorf(format, v...) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debugf(format, v...) }
func (l *serverLogger) Tracef(format string, v ...any)  {}
