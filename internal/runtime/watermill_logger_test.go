package runtime_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"groupflow/internal/runtime"
)

// TestWatermillLoggerLevels: Watermill's trace, debug and info reach zap at
// debug, only while debug is on, and so does its "Handler returned error"
// (the runtime logs each failure itself, with the command's ids); its other
// errors always reach zap, and so do the fields given to With.
func TestWatermillLoggerLevels(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		core, logs := observer.New(level)
		l := runtime.WatermillLogger(zap.New(core)).With(watermill.LogFields{"handler": "h"})
		l.Trace("trace", watermill.LogFields{"k": 1})
		l.Debug("debug", nil)
		l.Info("info", nil)
		l.Error("Handler returned error", errors.New("transient"), watermill.LogFields{"k": 3})
		l.Error("error", errors.New("boom"), watermill.LogFields{"k": 2})
		var got []string
		for _, e := range logs.All() {
			got = append(got, e.Level.String()+":"+e.Message)
			if e.ContextMap()["handler"] != "h" {
				t.Errorf("%s: fields %v lack With's handler", e.Message, e.ContextMap())
			}
		}
		want := []string{"error:error"}
		if level == zapcore.DebugLevel {
			want = []string{"debug:trace", "debug:debug", "debug:info", "debug:Handler returned error", "error:error"}
		}
		if len(got) != len(want) {
			t.Fatalf("zap at %s got %v, want %v", level, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("zap at %s got %v, want %v", level, got, want)
				break
			}
		}
	}
}
