package app

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"groupflow/internal/config"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

func TestAdmissionMarksLongJobsLarge(t *testing.T) {
	subj := messages.Subjects{Prefix: "groups"}
	a := newAdmission(&config.Config{MaxInFlight: 100, SiteConcurrency: 2, InFlightBytes: 1 << 20}, subj)
	for _, c := range []struct {
		cmdType string
		bytes   int64
		large   bool
	}{
		{messages.CmdSendCampaign, 100, true},
		{messages.CmdGenerateReport, 100, true},
		{messages.CmdProvisionGroup, largeBodyBytes, true}, // a big roster
		{messages.CmdProvisionGroup, 2000, false},
		{messages.CmdPropagateRules, 500, false},
	} {
		got := a.ticket(runtime.Ticket{Topic: subj.Command(c.cmdType), SiteID: "s", Bytes: c.bytes})
		if got.Large != c.large || got.SiteID != "s" || got.Bytes != c.bytes {
			t.Errorf("%s of %d bytes: %+v, want Large %v", c.cmdType, c.bytes, got, c.large)
		}
	}
}

func TestAdmissionLetsTheUnknownTypesConsumerThrough(t *testing.T) {
	subj := messages.Subjects{Prefix: "groups"}
	a := newAdmission(&config.Config{MaxInFlight: 1, SiteConcurrency: 1, InFlightBytes: 1 << 20}, subj)
	if _, err := a.Admit(context.Background(), runtime.Ticket{Topic: subj.Command(messages.CmdProvisionGroup), SiteID: "s"}); err != nil {
		t.Fatal(err)
	}
	// The only slot is taken: a counted ticket cannot start (its ctx has
	// ended, so it returns at once); the consumer of every command subject,
	// which only acks known types and dead-letters unknown ones, passes.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Admit(ended, runtime.Ticket{Topic: subj.Command(messages.CmdProvisionGroup), SiteID: "t"}); err == nil {
		t.Fatal("a second provision_group was admitted beyond --max-in-flight 1")
	}
	for range 3 {
		if _, err := a.Admit(ended, runtime.Ticket{Topic: subj.Commands(), SiteID: "s"}); err != nil {
			t.Fatalf("unknown-types consumer: %v", err)
		}
	}
	if st := a.f.Stats(); st.Running != 1 || st.Sites != 1 {
		t.Fatalf("stats %+v", st)
	}
	reg := prometheus.NewRegistry()
	a.register(reg)
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 4 {
		t.Fatalf("%d admission metrics, err %v", len(mfs), err)
	}
}

func TestHandlerSlotsDeriveFromAdmission(t *testing.T) {
	if n := handlerSlots(&config.Config{MaxInFlight: 2048}); n != 2048 {
		t.Fatalf("default slots %d, want --max-in-flight", n)
	}
	if n := handlerSlots(&config.Config{MaxInFlight: 2048, Concurrency: 8}); n != 8 {
		t.Fatalf("slots %d, want --concurrency 8", n)
	}
}
