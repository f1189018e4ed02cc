package handlers

import (
	"fmt"
	"groupflow/internal/runtime"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"groupflow/internal/testenv"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// TestCampaignSingleGroupPagesShiftedByJoins: members who join the group
// while a campaign pages through it push the members already read down into
// the next page (the list is newest first). They are neither selected nor
// counted twice.
func TestCampaignSingleGroupPagesShiftedByJoins(t *testing.T) {
	env := testenv.Start(t)
	sim := wixsim.New(wixsim.Options{Members: -1, Groups: -1})
	site := sim.Site("test-site")
	var ids []string
	for i := range 250 {
		email := fmt.Sprintf("member%03d@example.com", i)
		ids = append(ids, site.AddMember(wixsim.MemberSeed{FirstName: "M", LastName: fmt.Sprint(i), LoginEmail: email}).ID)
		site.SetSubscription(email, "SUBSCRIBED")
	}
	g := site.AddGroup("Shifting", "", ids...)
	var joiners []string
	for i := range 30 {
		joiners = append(joiners, site.AddMember(wixsim.MemberSeed{FirstName: "Late", LastName: fmt.Sprint(i)}).ID)
	}
	// Between the first and the second page, 30 members join.
	var lists atomic.Int32
	client := proxiedWix(t, "test-site", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/groups/"+g.ID+"/members") && lists.Add(1) == 2 {
			site.AddToGroup(g.ID, joiners...)
		}
		sim.Handler().ServeHTTP(w, r)
	})
	pub, _ := env.EventPublisher()
	h := NewSendCampaign(client, pub, env.JS, env.Log)
	env.StartRuntime(campaignRuntimeConfig(), runtime.Adapt(h))
	e := &campaignEnv{t: t, env: env, h: h}

	done, failed := e.run(map[string]any{"id": "shift-1", "campaignId": "shift", "groupIds": []string{g.ID},
		"audience": map[string]any{"type": messages.AudienceAll}})
	if failed != nil {
		t.Fatalf("campaign failed: %+v", failed)
	}
	if lists.Load() < 3 {
		t.Fatalf("the group was listed %d times; the join happened after the campaign's last page", lists.Load())
	}
	stored := e.selected("shift")
	if len(stored) != 250 || done.Selected != 250 || done.MembersSeen != 250 {
		t.Fatalf("stored %d events; event says selected %d of %d seen; want 250 each", len(stored), done.Selected, done.MembersSeen)
	}
}
