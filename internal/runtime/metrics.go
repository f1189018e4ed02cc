package runtime

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// commandMetrics counts commands by type and outcome.
type commandMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newCommandMetrics(reg prometheus.Registerer) *commandMetrics {
	m := &commandMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "groupflow_commands_total",
			Help: "Commands by type and outcome: completed, duplicate (answered from the ledger), retried, dead_lettered.",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "groupflow_command_duration_seconds",
			Help:    "Time to complete a command, by type.",
			Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.total, m.duration)
	}
	return m
}

func (m *commandMetrics) handled(t, outcome string, d time.Duration) {
	m.total.WithLabelValues(t, outcome).Inc()
	if outcome == "completed" {
		m.duration.WithLabelValues(t).Observe(d.Seconds())
	}
}

// slogFromZap wraps a zap logger as an slog logger (for Watermill).
func slogFromZap(log *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(log.Core()))
}
