package runtime

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// fakeMsg is a held message whose InProgress fails when failing is set.
type fakeMsg struct {
	jetstream.Msg
	failing    atomic.Bool
	inProgress atomic.Int64
}

func (m *fakeMsg) Subject() string { return "cmd.test" }

func (m *fakeMsg) InProgress() error {
	m.inProgress.Add(1)
	if m.failing.Load() {
		return errors.New("no connection")
	}
	return nil
}

// TestKeeperSharedTicker: one keeper goroutine keeps every held message
// alive; a message whose keep-alive fails for longer than AckWait has its
// work cancelled (lost); a stopped message gets no more keep-alives.
func TestKeeperSharedTicker(t *testing.T) {
	s := &Source{log: zap.NewNop()}
	k := newKeeper(30 * time.Millisecond)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { defer close(finished); s.runKeeper(k, done) }()
	defer func() { close(done); <-finished }()

	ok, bad := &fakeMsg{}, &fakeMsg{}
	bad.failing.Store(true)
	lost := make(chan struct{})
	var once atomic.Bool
	stopOK := k.add(ok, func() { t.Error("a message kept alive was reported lost") })
	stopBad := k.add(bad, func() {
		if once.CompareAndSwap(false, true) {
			close(lost)
		}
	})
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("a message whose keep-alives fail for longer than AckWait was not reported lost")
	}
	stopBad()
	stopOK()
	if ok.inProgress.Load() == 0 {
		t.Fatal("no keep-alive sent for the healthy message")
	}
	n := ok.inProgress.Load()
	s.keepOne(k, &kept{m: ok, stopped: true})
	if got := ok.inProgress.Load(); got != n {
		t.Fatalf("keep-alive sent for a stopped message (%d, was %d)", got, n)
	}
	if s.KeepAlives() == 0 {
		t.Fatal("KeepAlives not counted")
	}
}
