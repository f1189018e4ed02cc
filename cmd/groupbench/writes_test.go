package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/broker"
	"groupflow/messages"
)

// The write counter counts every append to every stream and KV bucket:
// stream publishes, KV puts and deletes (a delete is an append), and the
// appends of a stream created between the snapshots; reads count nothing.
func TestWritesDeltaCountsAppendsOfAllStreamsAndBuckets(t *testing.T) {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := nats.Connect(e.URL, nats.InProcessServer(e.Server))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(js.CreateStream(ctx, jetstream.StreamConfig{Name: "CMDS", Subjects: []string{"cmd.>"}}))
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ledger"})
	must(kv, err)
	must(js.Publish(ctx, "cmd.a", []byte("before")))
	before, err := streamSeqs(ctx, js)
	must(before, err)

	for range 3 {
		must(js.Publish(ctx, "cmd.a", []byte("x")))
	}
	must(kv.Put(ctx, "k", []byte("1")))
	must(kv.Update(ctx, "k", []byte("2"), 1))
	must(kv.Get(ctx, "k")) // a read: no write
	must(nil, kv.Delete(ctx, "k"))
	must(js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"evt.>"}}))
	must(js.Publish(ctx, "evt.done", []byte("e")))
	after, err := streamSeqs(ctx, js)
	must(after, err)

	total, per := writesDelta(before, after)
	if total != 7 || per["CMDS"] != 3 || per["KV_ledger"] != 3 || per["EVENTS"] != 1 || len(per) != 3 {
		t.Fatalf("total %d, per stream %v; want 7 = CMDS 3 + KV_ledger 3 + EVENTS 1", total, per)
	}
	if got := formatPerStream(perCommand(per, 2)); got != "CMDS 1.5, KV_ledger 1.5, EVENTS 0.5" {
		t.Errorf("formatPerStream: %q", got)
	}
}

// Scenario 2 at a micro size with Wix answered in memory: the one-person
// provision_group completes through wixStub (4 Wix calls, no socket),
// and the row carries writes and CPU per command. Figures are not asserted
// beyond being there: timing goals are the bench's.
func TestOverheadInMemoryMicro(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a processor")
	}
	row, err := overheadRun(30, wixInMemory, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if row.WixCallsEach != 4 || row.WritesEach < 1 || row.EventWritesEach != 1 || row.CPUMicrosEach <= 0 || row.Ratio <= 0 || row.FloorPerS <= 0 || row.FloorRatio <= 0 {
		t.Errorf("row %+v", row)
	}
	if _, counted := row.WritesByStream[messages.Subjects{}.CommandStream()]; counted {
		t.Error("the commands stream is counted")
	}
}
