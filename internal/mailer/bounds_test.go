package mailer_test

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"groupflow/internal/events"
	"groupflow/internal/mailer"
	"groupflow/internal/runtime"
)

// TestNewRefusesUnboundedCounts: groupmail's flags are untrusted config. A
// negative --rate silently meant unlimited, and counts had no bound (a
// --concurrency of a billion is a billion slots): New refuses each with an
// error naming the flag.
func TestNewRefusesUnboundedCounts(t *testing.T) {
	h := newHarness(t)
	pub, err := events.NewJetStreamPublisher(h.env.NC, runtime.WatermillLogger(zap.NewNop()))
	if err != nil {
		t.Fatal(err)
	}
	for flag, mod := range map[string]func(*mailer.Config){
		"--rate":          func(c *mailer.Config) { c.Rate = -1 },
		"--rate NaN":      func(c *mailer.Config) { c.Rate = math.NaN() },
		"--concurrency":   func(c *mailer.Config) { c.Concurrency = 1_000_000_000 },
		"--burst":         func(c *mailer.Config) { c.Burst = mailer.MaxBurst + 1 },
		"--send-attempts": func(c *mailer.Config) { c.SendAttempts = mailer.MaxSendAttempts + 1 },
		"--max-deliver":   func(c *mailer.Config) { c.MaxDeliver = mailer.MaxMaxDeliver + 1 },
	} {
		cfg := testConfig(h)
		mod(&cfg)
		_, err := mailer.New(cfg, mailer.Deps{JS: h.env.JS, Publisher: pub, Sender: nopSender{}, Registerer: prometheus.NewRegistry()})
		if want := strings.Fields(flag)[0]; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: New answered %v, want an error naming %s", flag, err, want)
		}
	}
	// The bounds themselves are accepted.
	cfg := testConfig(h)
	cfg.Concurrency, cfg.Burst, cfg.SendAttempts, cfg.MaxDeliver = mailer.MaxConcurrency, mailer.MaxBurst, mailer.MaxSendAttempts, mailer.MaxMaxDeliver
	if _, err := mailer.New(cfg, mailer.Deps{JS: h.env.JS, Publisher: pub, Sender: nopSender{}, Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatalf("New refused the bounds: %v", err)
	}
}
