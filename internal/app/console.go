package app

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/admin"
	"groupflow/internal/dlq"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/messages"
)

// consoleSources feeds the ops console from the runtime, the ledger, the
// DLQ, the events stream and the Wix client's sites. The live progress
// registry (branch operator-cli) plugs in as admin.ConsoleSources.Progress.
func consoleSources(rt *runtime.Runtime, led *ledger.Ledger, store *dlq.Store, js jetstream.JetStream,
	subjects messages.Subjects, client *wix.Client) admin.ConsoleSources {
	return admin.ConsoleSources{
		DLQ:      store,
		InFlight: consoleInFlight{rt: rt, led: led},
		Outcomes: admin.NewEventLog(js, subjects),
		Limiters: consoleLimiters{c: client},
		Commands: led,
	}
}

// consoleInFlight lists the runtime's active commands with their ledger
// records (one KV read each).
type consoleInFlight struct {
	rt  *runtime.Runtime
	led *ledger.Ledger
}

func (c consoleInFlight) InFlight(ctx context.Context) []admin.InFlight {
	var out []admin.InFlight
	for _, a := range c.rt.Active() {
		rec, _ := c.led.Record(ctx, a.CommandType, a.CommandID) // a failed read shows as "no record yet"
		out = append(out, admin.InFlight{CommandType: a.CommandType, CommandID: a.CommandID, StreamSeq: a.StreamSeq, Record: rec})
	}
	return out
}

// consoleLimiters reports the limiter of every site the client knows.
type consoleLimiters struct{ c *wix.Client }

func (l consoleLimiters) Limiters() []admin.LimiterState {
	if l.c == nil {
		return nil
	}
	ids := l.c.SiteIDs()
	slices.Sort(ids)
	out := make([]admin.LimiterState, 0, len(ids))
	for _, id := range ids {
		site, err := l.c.Site(id)
		if err != nil {
			continue
		}
		rate, n := site.LimiterRate()
		st := site.Stats()
		out = append(out, admin.LimiterState{SiteID: id, PerMinute: rate, Instances: n,
			Throttled: st.Throttled, Waiting: st.Waiting, Calls: st.Calls})
	}
	return out
}
