// Package trace carries a command's identity — command id, correlation id,
// W3C traceparent, site — through a context, from the message that started
// the work to every log line and event it produces, and wires OpenTelemetry
// (otel.go): W3C propagation, spans, the OTLP exporter.
package trace

import (
	"context"
	"encoding/hex"
	"strings"

	"go.uber.org/zap"
)

// Info identifies the command being handled.
type Info struct {
	CommandType   string
	CommandID     string
	CorrelationID string
	SiteID        string
	// TraceParent is the W3C traceparent the command arrived with
	// ("00-<trace>-<span>-<flags>"), "" if none; the command's span is its
	// child (see otel.go).
	TraceParent string
}

type ctxKey struct{}

// With returns a context carrying info.
func With(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the Info stored in ctx, or the zero Info.
func From(ctx context.Context) Info {
	info, _ := ctx.Value(ctxKey{}).(Info)
	return info
}

// Fields returns the zap fields that identify the command in logs.
func (i Info) Fields() []zap.Field {
	fs := make([]zap.Field, 0, 4)
	if i.CommandType != "" {
		fs = append(fs, zap.String("command_type", i.CommandType))
	}
	if i.CommandID != "" {
		fs = append(fs, zap.String("command_id", i.CommandID))
	}
	if i.CorrelationID != "" {
		fs = append(fs, zap.String("correlation_id", i.CorrelationID))
	}
	if i.SiteID != "" {
		fs = append(fs, zap.String("site_id", i.SiteID))
	}
	return fs
}

// Logger returns log annotated with the command found in ctx. The fields
// are added lazily (zap's WithLazy): the logger's encoder is copied only
// when something is logged through it, not for every command whose logs
// are all below the level.
func Logger(ctx context.Context, log *zap.Logger) *zap.Logger {
	return log.WithLazy(From(ctx).Fields()...)
}

// ValidTraceParent reports whether s is a well-formed version-00 W3C
// traceparent with non-zero trace and span ids.
func ValidTraceParent(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return false
	}
	for _, p := range parts[1:] {
		if _, err := hex.DecodeString(p); err != nil {
			return false
		}
	}
	return parts[1] != strings.Repeat("0", 32) && parts[2] != strings.Repeat("0", 16)
}
