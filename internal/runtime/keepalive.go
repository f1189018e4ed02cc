package runtime

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// keeper sends the keep-alives (InProgress) of one topic's held messages,
// every ackWait/3, from one goroutine and one ticker (run) instead of one of
// each per message: a held message costs a map entry, not a goroutine and
// its stack. Unheard for a whole ackWait, the server redelivers a message,
// maybe to another instance: its lost is then called, so two instances do
// not run one command at once.
type keeper struct {
	every, ackWait time.Duration
	mu             sync.Mutex
	held           map[*kept]struct{}
}

// kept is one held message.
type kept struct {
	m         jetstream.Msg
	lost      func()
	mu        sync.Mutex // held while its keep-alive is sent; stop waits for it
	stopped   bool
	lastAlive time.Time
}

func newKeeper(ackWait time.Duration) *keeper {
	every := ackWait / 3
	if every <= 0 {
		every = 10 * time.Second
	}
	return &keeper{every: every, ackWait: ackWait, held: make(map[*kept]struct{})}
}

// add keeps m alive until the returned stop is called; after stop returns,
// no keep-alive of m is sent and lost is not called.
func (k *keeper) add(m jetstream.Msg, lost func()) (stop func()) {
	e := &kept{m: m, lost: lost, lastAlive: time.Now()}
	k.mu.Lock()
	k.held[e] = struct{}{}
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		delete(k.held, e)
		k.mu.Unlock()
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
	}
}

// runKeeper sends k's keep-alives until done is closed.
func (s *Source) runKeeper(k *keeper, done <-chan struct{}) {
	ticker := time.NewTicker(k.every)
	defer ticker.Stop()
	var batch []*kept
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		k.mu.Lock()
		batch = batch[:0]
		for e := range k.held {
			batch = append(batch, e)
		}
		k.mu.Unlock()
		for i, e := range batch {
			s.keepOne(k, e)
			batch[i] = nil
		}
	}
}

// keepOne sends one message's keep-alive, unless it was stopped.
func (s *Source) keepOne(k *keeper, e *kept) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if err := e.m.InProgress(); err != nil {
		s.log.Debug("keep-alive failed", zap.String("subject", e.m.Subject()), zap.Error(err))
		if k.ackWait > 0 && time.Since(e.lastAlive) > k.ackWait {
			s.log.Warn("lost the message's lease (keep-alive failing for longer than AckWait); cancelling its work",
				zap.String("subject", e.m.Subject()), zap.Error(err))
			e.lost()
		}
		return
	}
	s.keepAlives.Add(1)
	e.lastAlive = time.Now()
}
