// Package admin serves groupflow's operator endpoints: /healthz (the process
// is up and can still work: see SetLive), /readyz (the broker is connected and the streams exist), /metrics
// (Prometheus), and whatever the processor mounts (the DLQ API).
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"groupflow/internal/netsafe"
)

// ReadyCheck returns nil when the processor can do its work.
type ReadyCheck func(ctx context.Context) error

// Limits of the admin HTTP server: a client must send its headers within
// ReadHeaderTimeout and its whole request within ReadTimeout, and read the
// answer within WriteTimeout (a full DLQ listing included); an idle
// keep-alive connection is closed after IdleTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// LiveCheck returns nil while the process can still do its work; an error
// (its reason) makes /healthz fail, so a liveness probe restarts the process.
type LiveCheck func() error

// Server is the admin HTTP server.
type Server struct {
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	log  *zap.Logger
	addr string

	// protected is set by Protect: handlers mounted with Handle need the
	// token whose hash is tokenSum (nil: no token).
	protected    bool
	tokenSum     *[sha256.Size]byte
	allowNoToken bool
	live         atomic.Pointer[LiveCheck]
}

// New builds the server; ready is consulted by /readyz, gatherer by /metrics.
func New(addr string, ready ReadyCheck, gatherer prometheus.Gatherer, log *zap.Logger) *Server {
	mux := http.NewServeMux()
	s := &Server{mux: mux, log: log, addr: addr}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if check := s.live.Load(); check != nil {
			if err := (*check)(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("unhealthy: " + err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
	return s
}

// SetLive makes /healthz answer 503 "unhealthy: <reason>" whenever check
// returns an error (e.g. ConnWatch.Live); without it /healthz is always ok.
func (s *Server) SetLive(check LiveCheck) { s.live.Store(&check) }

// Protect declares that the handlers mounted with Handle read sensitive data
// or change state (the DLQ API). They then answer 401 without
// "Authorization: Bearer <token>" when token is set, and Start refuses a
// listener beyond loopback without a token unless allowNoToken (an insecure
// opt-out that Start logs loudly). /healthz, /readyz and /metrics stay open.
// Call it before Start (before or after Handle).
func (s *Server) Protect(token string, allowNoToken bool) {
	s.protected, s.allowNoToken = true, allowNoToken
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		s.tokenSum = &sum
	}
}

// Handle mounts h on pattern (e.g. "/dlq" and "/dlq/"), behind the token of
// Protect if one was given.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tokenSum != nil && !bearerMatches(r, s.tokenSum) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="groupflow"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		if s.tokenSum == nil {
			if why := s.tokenlessRefusal(r); why != "" {
				http.Error(w, why, http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
}

// tokenlessRefusal says why a request to a handler without a token is
// refused, or "". Without a token the API trusts whoever reaches the port,
// so not a web page in the operator's browser: a request from another
// origin (its Origin or Sec-Fetch-Site says so; a cross-site form post of
// `{"all":true}=` is valid JSON to the API) is refused, and, on a loopback
// listener, a Host other than a loopback name (DNS rebinding: the page's
// own name resolving to 127.0.0.1).
func (s *Server) tokenlessRefusal(r *http.Request) string {
	if !s.allowNoToken && !netsafe.IsLoopbackHostHeader(r.Host) {
		return "without an admin token this API answers only to localhost, 127.0.0.1 or [::1]"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return "without an admin token this API refuses requests from web pages of other origins"
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return "without an admin token this API refuses requests from web pages of other origins"
		}
	}
	return ""
}

// bearerMatches reports whether r carries "Authorization: Bearer <token>"
// for the token hashed in want, compared in constant time (of hashes, so
// the length leaks nothing either).
func bearerMatches(r *http.Request, want *[sha256.Size]byte) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && ok
}

// Start listens and serves in the background; it returns the bound address.
// A protected server (see Protect) without a token refuses to listen beyond
// loopback.
func (s *Server) Start() (string, error) {
	if s.protected {
		hasToken := s.tokenSum != nil
		if err := netsafe.CheckAdminExposure(s.addr, hasToken, s.allowNoToken); err != nil {
			return "", err
		}
		if !hasToken && !netsafe.IsLoopbackAddr(s.addr) {
			s.log.Warn("INSECURE: the admin API (dead letters with personal data, replay, purge) listens beyond loopback WITHOUT A TOKEN "+
				"(--admin-insecure-no-token); anyone reaching the port can use it. Set GROUPFLOW_ADMIN_TOKEN.",
				zap.String("addr", s.addr))
		}
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return "", err
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin http stopped", zap.Error(err))
		}
	}()
	return ln.Addr().String(), nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// BrokerReady checks the connection and the presence of the streams.
func BrokerReady(nc *nats.Conn, js jetstream.JetStream, streams ...string) ReadyCheck {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected: " + nc.Status().String())
		}
		for _, s := range streams {
			if _, err := js.Stream(ctx, s); err != nil {
				return errors.New("stream " + s + ": " + err.Error())
			}
		}
		return nil
	}
}

// ConnsReady is ready while every connection in conns is connected; it
// names the first that is not (e.g. the publisher's, closed for good).
func ConnsReady(conns ...*nats.Conn) ReadyCheck {
	return func(context.Context) error {
		for _, nc := range conns {
			if !nc.IsConnected() {
				return errors.New("nats connection " + nc.Opts.Name + " not connected: " + nc.Status().String())
			}
		}
		return nil
	}
}

// AllReady is ready when every check is; it answers the first failure.
func AllReady(checks ...ReadyCheck) ReadyCheck {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// ConnWatch watches NATS connections that reconnect forever (see
// broker.Connect): one that is closed all the same (the server refused a
// protocol line, e.g. "maximum control line exceeded", or nats.go gave up)
// is closed for good, and nothing in the process can bring it back. Closed
// then fires so the process exits non-zero and its supervisor restarts it,
// and Live fails /healthz until it has.
type ConnWatch struct {
	conns    []*nats.Conn
	closed   chan struct{}
	once     sync.Once
	err      atomic.Pointer[error]
	stopping atomic.Bool
}

// WatchConns adds to the closed handler of each connection (the one set
// before still runs first) and returns the watch. Call Stopping before closing or draining them on
// purpose.
func WatchConns(conns ...*nats.Conn) *ConnWatch {
	w := &ConnWatch{conns: conns, closed: make(chan struct{})}
	for _, nc := range conns {
		prev := nc.ClosedHandler() // e.g. broker.Connect's, which logs the cause
		nc.SetClosedHandler(func(c *nats.Conn) {
			if prev != nil {
				prev(c)
			}
			w.check()
		})
		if nc.IsClosed() {
			w.check()
		}
	}
	return w
}

// check records the first connection found closed, unless stopping.
func (w *ConnWatch) check() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	if w.stopping.Load() {
		return nil
	}
	for _, nc := range w.conns {
		if !nc.IsClosed() {
			continue
		}
		reason := "no error reported"
		if last := nc.LastError(); last != nil {
			reason = last.Error()
		}
		err := fmt.Errorf("nats connection %q closed for good (%s); the process must be restarted", nc.Opts.Name, reason)
		if w.err.CompareAndSwap(nil, &err) {
			w.once.Do(func() { close(w.closed) })
		}
		return *w.err.Load()
	}
	return nil
}

// Closed is closed once a watched connection is closed for good (not
// after Stopping).
func (w *ConnWatch) Closed() <-chan struct{} { return w.closed }

// Err says which connection closed and why, or nil.
func (w *ConnWatch) Err() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Live is a LiveCheck: it fails once a watched connection is closed for good.
func (w *ConnWatch) Live() error { return w.check() }

// Stopping tells the watch that the connections are about to be closed on
// purpose (shutdown): their closing is no failure.
func (w *ConnWatch) Stopping() { w.stopping.Store(true) }

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// BrokerCollector reports, at scrape time, the dead-letter depth and each
// command consumer's pending and in-flight messages (consumer lag).
type BrokerCollector struct {
	js        jetstream.JetStream
	dlqStream string
	cmdStream string
	consumers []string

	dlqDepth   *prometheus.Desc
	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	redeliv    *prometheus.Desc
	up         *prometheus.Desc

	// stream usage against its limits (see WithStreams)
	streams     []string
	stBytes     *prometheus.Desc
	stMaxBytes  *prometheus.Desc
	stMsgs      *prometheus.Desc
	stMaxMsgs   *prometheus.Desc
	stFullRatio *prometheus.Desc
}

// NewBrokerCollector collects for the given streams and consumer names.
func NewBrokerCollector(js jetstream.JetStream, cmdStream, dlqStream string, consumers []string) *BrokerCollector {
	return &BrokerCollector{
		js: js, dlqStream: dlqStream, cmdStream: cmdStream, consumers: consumers,
		dlqDepth:   prometheus.NewDesc("groupflow_dlq_depth", "Dead letters waiting in the DLQ stream.", nil, nil),
		pending:    prometheus.NewDesc("groupflow_consumer_pending", "Commands not yet delivered, by consumer (lag).", []string{"consumer"}, nil),
		ackPending: prometheus.NewDesc("groupflow_consumer_ack_pending", "Commands delivered and in work, by consumer.", []string{"consumer"}, nil),
		redeliv:    prometheus.NewDesc("groupflow_consumer_redelivered", "Commands being redelivered, by consumer.", []string{"consumer"}, nil),
		up:         prometheus.NewDesc("groupflow_broker_up", "1 when JetStream answered the last scrape.", nil, nil),
		streams:    []string{cmdStream, dlqStream},
		stBytes:    prometheus.NewDesc("groupflow_stream_bytes", "Bytes stored in the stream.", []string{"stream"}, nil),
		stMaxBytes: prometheus.NewDesc("groupflow_stream_max_bytes", "The stream's size limit in bytes (-1: none).", []string{"stream"}, nil),
		stMsgs:     prometheus.NewDesc("groupflow_stream_messages", "Messages stored in the stream.", []string{"stream"}, nil),
		stMaxMsgs:  prometheus.NewDesc("groupflow_stream_max_messages", "The stream's message limit (-1: none).", []string{"stream"}, nil),
		stFullRatio: prometheus.NewDesc("groupflow_stream_usage_ratio",
			"Fill of the stream against its tightest limit (bytes or messages), 0 to 1; at 1 new messages are refused.", []string{"stream"}, nil),
	}
}

// WithStreams adds streams whose usage is reported (the commands and DLQ
// streams always are).
func (c *BrokerCollector) WithStreams(names ...string) *BrokerCollector {
	c.streams = append(c.streams, names...)
	return c
}

// collectStream reports one stream's usage; false when JetStream did not
// answer.
func (c *BrokerCollector) collectStream(ctx context.Context, ch chan<- prometheus.Metric, name string) bool {
	s, err := c.js.Stream(ctx, name)
	if err != nil {
		return false
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false
	}
	g := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
	}
	g(c.stBytes, float64(info.State.Bytes))
	g(c.stMaxBytes, float64(info.Config.MaxBytes))
	g(c.stMsgs, float64(info.State.Msgs))
	g(c.stMaxMsgs, float64(info.Config.MaxMsgs))
	ratio := 0.0
	if info.Config.MaxBytes > 0 {
		ratio = float64(info.State.Bytes) / float64(info.Config.MaxBytes)
	}
	if info.Config.MaxMsgs > 0 {
		ratio = max(ratio, float64(info.State.Msgs)/float64(info.Config.MaxMsgs))
	}
	g(c.stFullRatio, min(ratio, 1))
	return true
}

// Describe implements prometheus.Collector.
func (c *BrokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dlqDepth
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliv
	ch <- c.up
	ch <- c.stBytes
	ch <- c.stMaxBytes
	ch <- c.stMsgs
	ch <- c.stMaxMsgs
	ch <- c.stFullRatio
}

// Collect implements prometheus.Collector.
func (c *BrokerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	up := 1.0
	if s, err := c.js.Stream(ctx, c.dlqStream); err == nil {
		if info, err := s.Info(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.dlqDepth, prometheus.GaugeValue, float64(info.State.Msgs))
		} else {
			up = 0
		}
	} else {
		up = 0
	}
	for _, name := range c.streams {
		if !c.collectStream(ctx, ch, name) {
			up = 0
		}
	}
	for _, name := range c.consumers {
		cons, err := c.js.Consumer(ctx, c.cmdStream, name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			up = 0
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), name)
		ch <- prometheus.MustNewConstMetric(c.redeliv, prometheus.GaugeValue, float64(info.NumRedelivered), name)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
