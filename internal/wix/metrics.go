package wix

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// metrics holds the client's collectors; a nil *metrics records nothing.
type metrics struct {
	requests    *prometheus.CounterVec
	throttled   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	limiterWait prometheus.Histogram
	// durations caches duration's child of each endpoint (never deleted).
	durations sync.Map // endpoint → prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupflow_wix_requests_total",
			Help: "HTTP requests sent to Wix (every attempt), by site, endpoint and status code (\"error\" when no response).",
		}, []string{"site", "endpoint", "status"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupflow_wix_throttled_total",
			Help: "HTTP 429 answers from Wix, by site.",
		}, []string{"site"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "groupflow_wix_request_duration_seconds",
			Help:    "Duration of one HTTP attempt to Wix, by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		limiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "groupflow_wix_limiter_wait_seconds",
			Help:    "Time spent waiting on the per-site rate limiter before an attempt.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	m.requests = register(reg, m.requests)
	m.throttled = register(reg, m.throttled)
	m.duration = register(reg, m.duration)
	m.limiterWait = register(reg, m.limiterWait)
	return m
}

// register registers c, or returns the already registered equivalent (two
// clients sharing a registry share the collectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Any other registration error is a programming error; keep an
		// unregistered collector rather than crash the service.
	}
	return c
}

// statusLabels holds the labels of the codes 100 to 599, made once.
var statusLabels = func() (l [500]string) {
	for i := range l {
		l[i] = strconv.Itoa(100 + i)
	}
	return l
}()

func statusLabel(code int) string {
	if code >= 100 && code < 600 {
		return statusLabels[code-100]
	}
	return strconv.Itoa(code)
}

func (m *metrics) request(site, endpoint, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(site, endpoint, status).Inc()
	o, ok := m.durations.Load(endpoint)
	if !ok {
		o, _ = m.durations.LoadOrStore(endpoint, m.duration.WithLabelValues(endpoint))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *metrics) throttle(site string) {
	if m != nil {
		m.throttled.WithLabelValues(site).Inc()
	}
}

// forget deletes the series of a released account site, so that the
// metrics stay bounded as the sites come and go (counters restart at zero if
// the site comes back; Prometheus reads that as a reset).
func (m *metrics) forget(site string) {
	if m != nil {
		m.requests.DeletePartialMatch(prometheus.Labels{"site": site})
		m.throttled.DeleteLabelValues(site)
	}
}

func (m *metrics) waited(d time.Duration) {
	if m != nil {
		m.limiterWait.Observe(d.Seconds())
	}
}

func zapSite(id string) zap.Field                     { return zap.String("site", id) }
func zapDuration(k string, d time.Duration) zap.Field { return zap.Duration(k, d) }
