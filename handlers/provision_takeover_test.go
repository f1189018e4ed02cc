package handlers

import (
	"context"
	"errors"
	"testing"
	"time"

	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestProvisionStalledAttemptAfterTakeover: an attempt whose lease expired
// before it sent Create Group (its renewals failed: a partition from NATS,
// a long pause) and that another instance took over must not create the
// group too. The intent checkpoint this replaced was a compare-and-set that
// failed with ErrLost there; a sure attempt now writes nothing between its
// Acquire and the create, so it must make sure it still holds its lease.
//
// Attempt A (instance "a") stops just before the create; its lease is not
// renewed (as when the keeper cannot reach the ledger). Instance "b" takes
// the command over once A's lease expired, is Unsure, polls Query Groups for
// CreateSettle, finds nothing and creates. Then A goes on.
func TestProvisionStalledAttemptAfterTakeover(t *testing.T) {
	e := newWF(t)
	e.Site.AddMember(wixsim.MemberSeed{FirstName: "Site", LastName: "Owner"})
	m := e.Site.AddMember(wixsim.MemberSeed{FirstName: "A", LoginEmail: "a@example.com"})
	const ttl = 500 * time.Millisecond
	cfg := ProvisionConfig{DefaultRegion: "US", CreateSettle: 200 * time.Millisecond, SettlePoll: 20 * time.Millisecond}
	ctx := context.Background()
	const id = "takeover-1"
	command := func(lease *ledger.Lease) (*runtime.Command, *messages.ProvisionGroup) {
		raw := []byte(`{"id":"` + id + `","group":{"name":"Taken"},"people":[{"email":"` + m.LoginEmail + `"}]}`)
		p, err := messages.Decode(messages.CmdProvisionGroup, raw)
		if err != nil {
			t.Fatal(err)
		}
		p.Meta().ID, p.Meta().SiteID = id, e.Wix.SiteID
		return &runtime.Command{Type: messages.CmdProvisionGroup, ID: id, SiteID: e.Wix.SiteID, Payload: p, Raw: raw, Lease: lease},
			p.(*messages.ProvisionGroup)
	}
	claim := func(owner string) ledger.Claim {
		return ledger.Claim{CommandType: messages.CmdProvisionGroup, CommandID: id, Delivery: 1, Seq: 1, Owner: owner, TTL: ttl}
	}

	leaseA, _, err := e.Ledger.Acquire(ctx, claim("a"))
	if err != nil || leaseA == nil {
		t.Fatalf("acquire a: %v", err)
	}
	reached, resume := make(chan struct{}), make(chan struct{})
	hA := NewProvisionGroup(e.Sites, e.Ledger, cfg, e.Log)
	hA.hook = func(ctx context.Context, point string) error {
		if point == "create" {
			close(reached)
			<-resume
		}
		return nil
	}
	type result struct {
		ev  messages.Event
		err error
	}
	doneA := make(chan result, 1)
	go func() {
		cmd, p := command(leaseA)
		ev, err := hA.Handle(ctx, cmd, p)
		doneA <- result{ev, err}
	}()
	<-reached

	// Instance b takes the command over once a's lease has expired.
	var leaseB *ledger.Lease
	for leaseB == nil {
		l, _, err := e.Ledger.Acquire(ctx, claim("b"))
		var held *ledger.HeldError
		switch {
		case errors.As(err, &held):
			time.Sleep(time.Until(held.Until) + 10*time.Millisecond) // the lease's expiry
		case err != nil:
			t.Fatal(err)
		default:
			leaseB = l
		}
	}
	if !leaseB.Unsure() {
		t.Fatal("a take-over is not Unsure")
	}
	cmdB, pB := command(leaseB)
	evB, err := NewProvisionGroup(e.Sites, e.Ledger, cfg, e.Log).Handle(ctx, cmdB, pB)
	if err != nil {
		t.Fatalf("b: %v", err)
	}
	close(resume)
	a := <-doneA

	gs := e.Site.GroupsByName("Taken")
	if len(gs) != 1 || e.calls(wix.OpGroupsCreate) != 1 {
		t.Fatalf("%d groups named Taken, %d Create Group calls (b's event %+v; a: %v, %v)", len(gs), e.calls(wix.OpGroupsCreate), evB, a.ev, a.err)
	}
	if !errors.Is(a.err, ledger.ErrLost) {
		t.Errorf("a, whose lease b took: %v, %v; want ledger.ErrLost", a.ev, a.err)
	}
}
