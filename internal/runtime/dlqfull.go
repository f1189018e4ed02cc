package runtime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/dlq"
)

// IsDLQFull reports whether err is a publish refused because the DLQ is at
// its size or message limit (discard new); see dlq.IsFull.
func IsDLQFull(err error) bool { return dlq.IsFull(err) }

// dlqGate tracks the topics whose dead letters the DLQ cannot take. While a
// topic is in it, its consumer fetches nothing (the subscriber asks paused)
// and the runtime is not ready.
type dlqGate struct {
	mu      sync.Mutex
	waiting map[string]int    // topic -> dead letters waiting for room
	types   map[string]string // topic -> command type (for the reason)
	gauge   *prometheus.GaugeVec
}

func newDLQGate(reg prometheus.Registerer) *dlqGate {
	g := &dlqGate{waiting: map[string]int{}, types: map[string]string{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "groupflow_dlq_full",
			Help: "1 while dead letters of this command type wait for room in the full DLQ (its consumption is paused).",
		}, []string{"type"})}
	if reg != nil {
		reg.MustRegister(g.gauge)
	}
	return g
}

// enter records one more dead letter of topic waiting; it returns true when
// it starts an episode (the first waiter of the topic).
func (g *dlqGate) enter(topic, commandType string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting[topic]++
	g.types[topic] = commandType
	g.gauge.WithLabelValues(commandType).Set(1)
	return g.waiting[topic] == 1
}

// leave records a waiter gone; it returns true when the episode ends.
func (g *dlqGate) leave(topic string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting[topic]--
	if g.waiting[topic] > 0 {
		return false
	}
	g.gauge.WithLabelValues(g.types[topic]).Set(0)
	delete(g.waiting, topic)
	delete(g.types, topic)
	return true
}

func (g *dlqGate) paused(topic string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting[topic] > 0
}

func (g *dlqGate) pausedTypes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, t := range g.types {
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// DLQFullGauge is the groupflow_dlq_full gauge (by command type).
func (r *Runtime) DLQFullGauge() *prometheus.GaugeVec { return r.dlqGate.gauge }

// DLQReady returns nil unless dead letters wait for room in a full DLQ; then
// it names the DLQ's usage and the paused types, for /readyz.
func (r *Runtime) DLQReady(ctx context.Context) error {
	types := r.dlqGate.pausedTypes()
	if len(types) == 0 {
		return nil
	}
	return fmt.Errorf("DLQ full (%s): consumption of %s paused; purge or replay dead letters",
		r.dlqUsage(ctx), strings.Join(types, ", "))
}

// dlqUsage describes the DLQ stream's fill ("N of M bytes[, K of L
// messages]"), or "usage unknown" when the broker does not answer.
func (r *Runtime) dlqUsage(ctx context.Context) string {
	if r.deps.JS == nil {
		return "usage unknown"
	}
	st, err := r.deps.JS.Stream(ctx, r.cfg.Subjects.DLQStream())
	if err != nil {
		return "usage unknown"
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "usage unknown"
	}
	s := fmt.Sprintf("%d of %d bytes", info.State.Bytes, info.Config.MaxBytes)
	if info.Config.MaxMsgs > 0 {
		s += fmt.Sprintf(", %d of %d messages", info.State.Msgs, info.Config.MaxMsgs)
	}
	return s
}

// holdForDLQ keeps a dead letter the full DLQ refused: the command stays
// unacknowledged in its stream (kept alive by the subscriber, so no
// redelivery and no delivery counted), its topic's consumption pauses, and
// the publish is retried every DLQPollInterval until the DLQ has room. It
// returns nil once stored (the caller then announces it), or an error when
// ctx ends first (shutdown: the message is nacked and comes back).
func (r *Runtime) holdForDLQ(ctx context.Context, msg *message.Message, subject string, entry *dlq.Entry, log *zap.Logger) error {
	topic := msg.Metadata.Get(MetaTopic)
	if topic == "" {
		topic = msg.Metadata.Get(MetaSubject)
	}
	if r.dlqGate.enter(topic, entry.CommandType) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		log.Error("DLQ full: consumption of "+entry.CommandType+" paused until there is room; purge or replay dead letters",
			zap.String("dlq_usage", r.dlqUsage(uctx)), zap.String("dlq_subject", subject))
		cancel()
	}
	defer func() {
		if r.dlqGate.leave(topic) {
			log.Warn("DLQ has room again: consumption of " + entry.CommandType + " resumed")
		}
	}()
	t := time.NewTicker(r.cfg.DLQPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			msg.Metadata.Set(MetaNakDelay, r.cfg.DLQPollInterval.String())
			return fmt.Errorf("dead letter not stored (DLQ full) before shutdown: %w", ctx.Err())
		case <-t.C:
		}
		err := r.deps.Publisher.Publish(subject, entry.Message())
		if err == nil {
			return nil
		}
		if !IsDLQFull(err) {
			return fmt.Errorf("dead-letter: %w", err)
		}
	}
}
