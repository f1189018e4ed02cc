package handlers

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grt "groupflow/internal/runtime"
	"groupflow/internal/testenv"
	"groupflow/internal/trace"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// BenchmarkCampaignLargeGroup runs an audience-"all" campaign over one group
// of 10,000 and 100,000 members (simulator and NATS in process), calling the
// handler directly. It reports the Wix calls and the handler's peak heap
// growth (live heap after each GC, runtime/metrics /gc/heap/live:bytes,
// sampled every 5ms, minus the live heap before the run: the
// simulator's and the server's data are in the baseline), plus the whole
// process's peak RSS (VmHWM: simulator + nats-server + handler).
//
//	go test ./handlers/ -run '^$' -bench CampaignLargeGroup -benchtime 1x
func BenchmarkCampaignLargeGroup(b *testing.B) {
	for _, m := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(m), func(b *testing.B) {
			env := testenv.Start(b, testenv.Quiet())
			wx := testenv.StartWix(b, wixsim.Options{Members: -1, Groups: -1})
			site := wx.Site()
			site.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
			ids := make([]string, m)
			emails := 0
			for i := range ids {
				email := ""
				if i%10 != 0 { // 90% have an email, 2/3 of them subscribed
					email = fmt.Sprintf("big%d@example.com", i)
					emails++
					if i%3 != 0 {
						site.SetSubscription(email, wix.StatusSubscribed)
					}
				}
				ids[i] = site.AddMember(wixsim.MemberSeed{FirstName: "Big", LastName: strconv.Itoa(i), LoginEmail: email}).ID
			}
			g := site.AddGroup("Big", "", ids...)
			ids = nil
			pub, _ := env.EventPublisher()
			h := NewSendCampaign(wx.Client, pub, env.JS, nil)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				wx.Sim.ResetCalls()
				id := fmt.Sprintf("big-%d-%d", m, i)
				ctx := trace.With(context.Background(), trace.Info{CommandType: messages.CmdSendCampaign, CommandID: id, SiteID: wx.SiteID})
				c := &messages.SendCampaign{CommandMeta: messages.CommandMeta{ID: id, SiteID: wx.SiteID}, CampaignID: id, GroupIDs: []string{g.ID}}
				cmd := &grt.Command{Type: messages.CmdSendCampaign, ID: id, SiteID: wx.SiteID, Delivery: 1, Payload: c}
				runtime.GC()
				base := liveHeap()
				var peak atomic.Uint64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					tk := time.NewTicker(5 * time.Millisecond)
					defer tk.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tk.C:
							if l := liveHeap(); l > base && l-base > peak.Load() {
								peak.Store(l - base)
							}
						}
					}
				}()
				start := time.Now()
				evt, err := h.Handle(ctx, cmd, c)
				took := time.Since(start)
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				done := evt.(*messages.CampaignCompleted)
				want := campaignListPages(m) + int64((m+99)/100) + int64((emails+99)/100)
				if wx.Calls() != want || done.WixCalls != want {
					b.Errorf("calls sim=%d event=%d, want %d: %v", wx.Calls(), done.WixCalls, want, wx.Sim.Calls(wx.SiteID))
				}
				b.ReportMetric(float64(wx.Calls()), "wixcalls")
				b.ReportMetric(float64(done.Selected), "selected")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-live-heap-growth-MiB")
				b.ReportMetric(float64(vmHWM())/(1<<10), "process-peak-RSS-MiB")
				b.Logf("m=%d emails=%d selected=%d calls=%d took=%s peak live heap growth=%.1f MiB, process VmHWM=%.1f MiB",
					m, emails, done.Selected, wx.Calls(), took, float64(peak.Load())/(1<<20), float64(vmHWM())/(1<<10))
			}
		})
	}
}

// liveHeap returns the live heap after the last GC (runtime/metrics), so
// garbage awaiting collection is not counted.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// vmHWM returns the process's peak resident set size in KiB (Linux), or 0.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
