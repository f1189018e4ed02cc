package admin_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"groupflow/internal/admin"
	"groupflow/internal/broker"
	"groupflow/internal/testenv"
)

// The collector exports each stream's usage against its limits.
func TestBrokerCollectorExportsStreamLimits(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	env.Publish("generate_report", `{"id":"m-1","top":1}`)
	reg := prometheus.NewRegistry()
	reg.MustRegister(admin.NewBrokerCollector(env.JS, env.Subjects.CommandStream(), env.Subjects.DLQStream(), nil).
		WithStreams(env.Subjects.EventStream()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" {
					if got[mf.GetName()] == nil {
						got[mf.GetName()] = map[string]float64{}
					}
					got[mf.GetName()][l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	cmd := env.Subjects.CommandStream()
	if got["groupflow_stream_max_bytes"][cmd] != float64(broker.DefaultCommandMaxBytes) ||
		got["groupflow_stream_max_bytes"][env.Subjects.EventStream()] != float64(broker.DefaultEventMaxBytes) ||
		got["groupflow_stream_max_bytes"][env.Subjects.DLQStream()] != float64(broker.DefaultDLQMaxBytes) ||
		got["groupflow_stream_messages"][cmd] != 1 || got["groupflow_stream_bytes"][cmd] <= 0 {
		t.Fatalf("stream metrics %v", got)
	}
}
