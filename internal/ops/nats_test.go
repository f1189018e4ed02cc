package ops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"groupflow/internal/testenv"
)

// TestDiscoveryBusyBeyondBound: requests beyond MaxDiscoveryInWork are
// answered "busy" at once instead of piling up Wix calls.
func TestDiscoveryBusyBeyondBound(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	nc := env.Conn()
	s := &Server{Log: zap.NewNop(), Discovery: &Discovery{}}
	release := make(chan struct{})
	defer close(release)
	block := func(context.Context, []byte) (any, error) { <-release; return map[string]int{"ok": 1}, nil }
	sub, err := nc.Subscribe("ops.test", func(m *nats.Msg) { s.admit(context.Background(), m, block) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for range MaxDiscoveryInWork {
		if err := nc.PublishRequest("ops.test", nc.NewRespInbox(), nil); err != nil {
			t.Fatal(err)
		}
	}
	m, err := nc.Request("ops.test", nil, 10*time.Second)
	if err != nil || !strings.Contains(string(m.Data), "busy") {
		t.Fatalf("request beyond the bound: %v %v", m, err)
	}
}
