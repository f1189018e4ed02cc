package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// floorRun measures the JetStream floor of scenario 2's command: the
// broker operations one provision_group for a new group cannot do without,
// and nothing else (no Watermill, no handler, no Wix, no JSON), on the same
// embedded server, with as many in flight as the processor (conc):
//
//	the command's publish (async, as the producer's) and its delivery;
//	ledger: Create (the lease), Get (the remembered group request),
//	Update (completion);
//	the event's publish (synchronous: the ack waits for it);
//	the command's ack (not awaited); the event's delivery to its consumer.
//
// It returns the seconds from the first publish to the last event consumed
// and the CPU-µs per command. Each operation is awaited as groupflow awaits
// it, so processor/raw cannot exceed floor/raw without a cheaper protocol
// (fewer, or batched, broker operations).
func floorRun(h *harness, n, size, conc int) (secs, cpuMicros float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := h.js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH_FLOOR", Subjects: []string{"benchfloor.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = h.js.DeleteStream(context.Background(), "BENCH_FLOOR") }()
	kv, err := h.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "BENCH_FLOOR_LEDGER", Storage: jetstream.FileStorage})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = h.js.DeleteKeyValue(context.Background(), "BENCH_FLOOR_LEDGER") }()
	cmds, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "cmd", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 2 * conc, FilterSubject: "benchfloor.cmd.>"})
	if err != nil {
		return 0, 0, err
	}
	evts, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "evt", AckPolicy: jetstream.AckNonePolicy,
		FilterSubject: "benchfloor.evt.>"})
	if err != nil {
		return 0, 0, err
	}
	var seen atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	ec, err := evts.Consume(func(jetstream.Msg) {
		if seen.Add(1) == int64(n) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return 0, 0, err
	}
	defer ec.Stop()
	work := make(chan jetstream.Msg, 2*conc)
	var failed atomic.Value
	var wg sync.WaitGroup
	record, event := make([]byte, 400), make([]byte, 300)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := floorCommand(ctx, h.js, kv, m, record, event); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	cc, err := cmds.Consume(func(m jetstream.Msg) { work <- m }, jetstream.PullMaxMessages(2*conc))
	if err != nil {
		close(work)
		return 0, 0, err
	}
	payload := slices.Repeat([]byte("x"), size)
	cpu0, start := processCPU(), time.Now()
	for i := range n {
		if _, err := h.js.PublishAsync(fmt.Sprintf("benchfloor.cmd.%d", i), payload); err != nil {
			cc.Stop()
			close(work)
			return 0, 0, err
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	secs = time.Since(start).Seconds()
	cpuMicros = micros(processCPU()-cpu0) / float64(n)
	cc.Stop()
	close(work)
	wg.Wait()
	if e, _ := failed.Load().(error); e != nil {
		return 0, 0, fmt.Errorf("floor: %w", e)
	}
	if seen.Load() < int64(n) {
		return 0, 0, fmt.Errorf("floor: %d of %d events", seen.Load(), n)
	}
	return secs, cpuMicros, nil
}

// floorCommand is one command's broker operations (see floorRun).
func floorCommand(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, m jetstream.Msg, record, event []byte) error {
	key := "c." + m.Subject()[len("benchfloor.cmd."):]
	rev, err := kv.Create(ctx, key, record)
	if err != nil {
		return err
	}
	if _, err := kv.Get(ctx, "req."+key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if _, err = kv.Update(ctx, key, record, rev); err != nil { // the completion
		return err
	}
	if _, err := js.Publish(ctx, "benchfloor.evt."+key, event); err != nil {
		return err
	}
	return m.Ack() // not awaited, as the Source's
}
