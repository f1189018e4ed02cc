// Command groupflow is the processor: it consumes commands from NATS
// JetStream (groups.cmd.>), carries them out against the Wix REST API and
// publishes completion events (groups.evt.>). Without Wix credentials it runs
// the embedded Wix simulator; without --nats-url an embedded nats-server.
//
//	groupflow --help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/logging"
	"groupflow/internal/profiling"
	"groupflow/internal/trace"
	"groupflow/internal/version"
)

func main() {
	if version.PrintIfAsked("groupflow", os.Args[1:], os.Stdout) {
		return
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := config.Parse(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "groupflow:", err)
		return 2
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "groupflow:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	// GROUPFLOW_CPUPROFILE=file: a CPU profile of the whole run, for the benchmarks.
	stopCPU, err := profiling.StartCPU(os.Getenv("GROUPFLOW_CPUPROFILE"))
	if err != nil {
		log.Warn("cpu profile not written", zap.Error(err))
	}
	defer stopCPU()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startHeapProfiles(ctx, os.Getenv, log)()
	// OpenTelemetry: spans per command and Wix call, exported over OTLP only
	// when OTEL_EXPORTER_OTLP_ENDPOINT is set (see trace.Setup).
	shutdownTracing, exporting, err := trace.Setup(ctx, "groupflow", os.Getenv)
	if err != nil {
		log.Error("tracing setup failed", zap.Error(err))
		return 2
	}
	defer flushSpans(shutdownTracing, log)
	if exporting {
		log.Info("tracing: exporting spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_*)")
	}

	a, err := app.Start(ctx, cfg, os.Getenv, log)
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return 1
	}
	// Run returns at a signal (graceful shutdown) or, with an error, when
	// a NATS connection is closed for good: exiting non-zero lets the
	// supervisor (systemd, Kubernetes) restart the processor.
	ran := make(chan struct{})
	defer close(ran)
	go func() {
		select {
		case <-ctx.Done():
			log.Info("shutting down: finishing in-flight commands", zap.Duration("grace", cfg.ShutdownGrace))
		case <-ran:
		}
	}()
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// flushSpans sends the spans still buffered, for at most 5 seconds.
func flushSpans(shutdown func(context.Context) error, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("tracing: flush spans", zap.Error(err))
	}
}
