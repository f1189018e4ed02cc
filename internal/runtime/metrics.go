package runtime

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// commandMetrics counts commands by type and outcome.
type commandMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// messages counts the messages the Sources handed to the router, by
	// handler and ack: Watermill's subscriber metric, kept (its decorator
	// is not used: it starts a goroutine per message to await its ack).
	messages *prometheus.CounterVec
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
	if reg == nil {
		return m
	}
	reg.MustRegister(m.total, m.duration)
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "groupflow", Subsystem: "router", Name: "subscriber_messages_received_total",
		Help: "The total number of messages received by the subscriber",
	}, []string{"handler_name", "subscriber_name", "acked"})
	if err := reg.Register(m.messages); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		m.messages = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return m
}

// watchSource exposes what src holds as gauges (groupflow_source_held,
// groupflow_source_held_peak); nothing when reg is nil.
func (m *commandMetrics) watchSource(reg prometheus.Registerer, src *Source) {
	if reg == nil {
		return
	}
	gauge := func(name, help string, v func() int) {
		err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "groupflow", Subsystem: "source", Name: name, Help: help},
			func() float64 { return float64(v()) }))
		var are prometheus.AlreadyRegisteredError
		if err != nil && !errors.As(err, &are) {
			panic(err)
		}
	}
	gauge("held", "Command messages fetched (or asked for) and not yet acked or nacked: waiting for their site, queued or running.",
		func() int { h, _ := src.Held(); return h })
	gauge("held_peak", "The most command messages held at once since the start.",
		func() int { _, p := src.Held(); return p })
}

// received counts a message handed to the router once it is acked or
// nacked (SourceConfig.OnDone).
func (m *commandMetrics) received(msg *message.Message, acked bool) {
	if m.messages == nil {
		return
	}
	outcome := "nacked"
	if acked {
		outcome = "acked"
	}
	ctx := msg.Context()
	m.messages.WithLabelValues(message.HandlerNameFromCtx(ctx), message.SubscriberNameFromCtx(ctx), outcome).Inc()
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
