package mailer

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the mailer's Prometheus series, mirrored in atomic counters
// for Stats.
type metrics struct {
	sent        prometheus.Counter
	failed      *prometheus.CounterVec
	retried     prometheus.Counter
	rateLimited prometheus.Counter
	rateWait    prometheus.Histogram
	duplicates  prometheus.Counter
	sendSeconds prometheus.Histogram
	inFlight    prometheus.Gauge

	nSent, nFailed, nRetried, nRateLimited, nDuplicates atomic.Int64
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "groupmail_sent_total", Help: "Emails accepted by the SMTP server.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupmail_failed_total", Help: "Events dead-lettered without an email, by reason (template, malformed, recipient, smtp_permanent, exhausted, claim_held).",
		}, []string{"reason"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "groupmail_retried_total", Help: "SMTP attempts that failed transiently (4xx, connection) and are retried, in process or by redelivery.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "groupmail_rate_limited_total", Help: "Sends that waited for the send-rate limiter.",
		}),
		rateWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "groupmail_rate_limit_wait_seconds", Help: "Time sends waited for the send-rate limiter.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "groupmail_duplicates_skipped_total", Help: "Deliveries of events already sent, acknowledged without sending.",
		}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "groupmail_smtp_send_seconds", Help: "Duration of one SMTP attempt (dial, send, quit).",
			Buckets: prometheus.DefBuckets,
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "groupmail_in_flight", Help: "Events being handled.",
		}),
	}
	// Pre-create the reason series so dashboards see zeros.
	for _, r := range []string{ReasonTemplate, ReasonMalformed, ReasonRecipient, ReasonSMTPPermanent, ReasonExhausted, ReasonClaimHeld} {
		m.failed.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.failed, m.retried, m.rateLimited, m.rateWait, m.duplicates, m.sendSeconds, m.inFlight} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Stats is a snapshot of the mailer's counters since it was created.
type Stats struct {
	Sent, Failed, Retried, RateLimited, Duplicates int64
}

func (m *metrics) stats() Stats {
	return Stats{
		Sent: m.nSent.Load(), Failed: m.nFailed.Load(), Retried: m.nRetried.Load(),
		RateLimited: m.nRateLimited.Load(), Duplicates: m.nDuplicates.Load(),
	}
}

func (m *metrics) incSent()      { m.sent.Inc(); m.nSent.Add(1) }
func (m *metrics) incRetried()   { m.retried.Inc(); m.nRetried.Add(1) }
func (m *metrics) incDuplicate() { m.duplicates.Inc(); m.nDuplicates.Add(1) }
func (m *metrics) incRateLimit() { m.rateLimited.Inc(); m.nRateLimited.Add(1) }
func (m *metrics) incFailed(r string) {
	m.failed.WithLabelValues(r).Inc()
	m.nFailed.Add(1)
}
