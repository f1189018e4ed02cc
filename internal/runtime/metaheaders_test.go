package runtime_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"groupflow/internal/runtime"
	"groupflow/messages"
)

// TestSourceIgnoresPublishedMetaHeaders: the Source's own metadata keys
// (_gf_*) steer how a message is settled (MetaNakDelay, MetaAbandon) and
// what the runtime believes about it. A producer that sends them as NATS
// headers must not set them: "_gf_nak_delay: 87600h" parked a command that
// failed transiently for ten years (holding an ack-pending slot), and
// "_gf_abandon" turned every nak into an AckWait timeout.
func TestSourceIgnoresPublishedMetaHeaders(t *testing.T) {
	env, _, out := sourceEnv(t, nil, 0)
	m := nats.NewMsg(env.Subjects.Command(messages.CmdProvisionGroup))
	m.Data = []byte(`{"id":"c-meta"}`)
	m.Header.Set(runtime.MetaNakDelay, "87600h")
	m.Header.Set(runtime.MetaAbandon, "true")
	m.Header.Set("_gf_anything", "x")
	m.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if _, err := env.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := receive(t, out)
	for _, k := range []string{runtime.MetaNakDelay, runtime.MetaAbandon, "_gf_anything"} {
		if v := got.Metadata.Get(k); v != "" {
			t.Errorf("published header %s reached the message's metadata as %q", k, v)
		}
	}
	if got.Metadata.Get("traceparent") == "" {
		t.Error("an ordinary header (traceparent) was dropped")
	}
	got.Ack()
}
