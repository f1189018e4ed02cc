package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"groupflow/internal/admission"
	"groupflow/internal/config"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// largeBodyBytes marks a command as Large by its size: a roster of a few
// thousand people (a provision_group that runs for minutes at 200/min).
const largeBodyBytes = 64 << 10

// fairAdmission is the runtime's default admission: fair per site
// (package admission), bounded by --max-in-flight, --site-concurrency and
// --in-flight-bytes. Campaigns, reports and big bodies are marked Large, so
// a site's reserved slot stays free for small commands; the consumer that
// dead-letters unknown command types passes straight through.
type fairAdmission struct {
	f     *admission.Fair
	large map[string]bool // topics of long jobs
}

func newAdmission(cfg *config.Config, subjects messages.Subjects) *fairAdmission {
	all := subjects.Commands()
	return &fairAdmission{
		f: admission.New(admission.Options{MaxInFlight: cfg.MaxInFlight, MaxInFlightBytes: cfg.InFlightBytes,
			PerSite: cfg.SiteConcurrency, Bypass: func(t admission.Ticket) bool { return t.Topic == all }}),
		large: map[string]bool{subjects.Command(messages.CmdSendCampaign): true, subjects.Command(messages.CmdGenerateReport): true},
	}
}

// Admit implements runtime.Admission.
func (a *fairAdmission) Admit(ctx context.Context, t runtime.Ticket) (func(), error) {
	return a.f.Admit(ctx, a.ticket(t))
}

// Parked implements runtime.Parker: the fetch window does not count the
// commands that wait for their own site.
func (a *fairAdmission) Parked() int { return a.f.Parked() }

// ticket returns t with long jobs marked Large.
func (a *fairAdmission) ticket(t runtime.Ticket) admission.Ticket {
	t.Large = t.Large || a.large[t.Topic] || t.Bytes >= largeBodyBytes
	return t
}

// handlerSlots is each command type's handler slots: --concurrency, or by
// default the admission's bound, so that the admission alone decides.
func handlerSlots(cfg *config.Config) int {
	if cfg.Concurrency > 0 {
		return cfg.Concurrency
	}
	return cfg.MaxInFlight
}

// register exposes the admission's state as gauges.
func (a *fairAdmission) register(reg prometheus.Registerer) {
	gauge := func(name, help string, v func(admission.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "groupflow", Subsystem: "admission", Name: name, Help: help},
			func() float64 { return v(a.f.Stats()) })
	}
	reg.MustRegister(
		gauge("running", "Commands admitted and not yet acked or nacked.", func(s admission.Stats) float64 { return float64(s.Running) }),
		gauge("queued", "Commands waiting for their site's turn (no lease, no slot).", func(s admission.Stats) float64 { return float64(s.Queued + s.AtDoor) }),
		gauge("sites", "Sites with a command waiting or running.", func(s admission.Stats) float64 { return float64(s.Sites) }),
		gauge("bytes", "Command bodies held (waiting or running).", func(s admission.Stats) float64 { return float64(s.Bytes) }),
	)
}
