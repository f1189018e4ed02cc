package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamSeqs returns the last sequence of every stream on the server, KV
// buckets included (bucket b is stream KV_b): every append to a stream takes
// the next sequence, so the difference of two snapshots counts the writes
// in between.
func streamSeqs(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	out := map[string]uint64{}
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		out[info.Config.Name] = info.State.LastSeq
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// writesDelta returns the appends between two snapshots, per stream (those
// with any) and in total. A stream missing from before counts from zero;
// one missing from after (deleted in between) is left out.
func writesDelta(before, after map[string]uint64) (int64, map[string]int64) {
	var total int64
	per := map[string]int64{}
	for name, seq := range after {
		if d := int64(seq) - int64(before[name]); d > 0 {
			per[name] = d
			total += d
		}
	}
	return total, per
}

// settledSeqs snapshots the streams until two snapshots 100ms apart agree
// (at most 3s): writes that follow a completion event (an ack's ledger
// update, say) land before the snapshot counted.
func settledSeqs(js jetstream.JetStream) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prev, err := streamSeqs(ctx, js)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		cur, err := streamSeqs(ctx, js)
		if err != nil {
			return nil, err
		}
		if n, _ := writesDelta(prev, cur); n == 0 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// perCommand divides per-stream writes by n, for the report.
func perCommand(per map[string]int64, n int) map[string]float64 {
	out := make(map[string]float64, len(per))
	for k, v := range per {
		out[k] = float64(v) / float64(n)
	}
	return out
}

// formatPerStream renders per-stream writes per command, largest first:
// "KV_ledger 10.0, events 1.0, KV_rate 0.004".
func formatPerStream(per map[string]float64) string {
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if per[names[i]] != per[names[j]] {
			return per[names[i]] > per[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		prec := 1
		if per[k] < 0.1 {
			prec = 3 // heartbeats and the like, shared by many commands
		}
		parts[i] = fmt.Sprintf("%s %.*f", k, prec, per[k])
	}
	return strings.Join(parts, ", ")
}
