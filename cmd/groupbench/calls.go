package main

import (
	"fmt"
	"slices"
	"time"

	"groupflow/internal/wix"
	"groupflow/internal/wixsim"
	"groupflow/messages"
)

// CallsRow is one job of scenario 1.
type CallsRow struct {
	Job      string  `json:"job"`
	Measured int64   `json:"measured"`
	Event    int64   `json:"eventWixCalls"`
	Minimum  int64   `json:"minimum"`
	Formula  string  `json:"formula"`
	Ratio    float64 `json:"ratio"`
	Naive    int64   `json:"naive,omitempty"`
	TookMS   float64 `json:"tookMs"`
}

// seedMembers adds n members to a simulator site: member i has a login
// email unless i%10 == 0, and two thirds of the emails are subscribed.
func seedMembers(st *wixsim.Site, prefix string, n int) (ids, emails []string) {
	ids, emails = make([]string, n), make([]string, n)
	for i := range n {
		email := ""
		if i%10 != 0 {
			email = fmt.Sprintf("%s%d@example.com", prefix, i)
			if i%3 != 0 {
				st.SetSubscription(email, wix.StatusSubscribed)
			}
		}
		emails[i] = email
		ids[i] = st.AddMember(wixsim.MemberSeed{FirstName: "Bench", LastName: fmt.Sprint(i), LoginEmail: email}).ID
	}
	return ids, emails
}

// scenarioCalls: Wix calls per job against the minimum of the workflow
// issues, on an unlimited simulator.
func scenarioCalls(quick bool, logf func(string, ...any)) ([]CallsRow, error) {
	if quick {
		return callsPerJob([]int{10, 100, 1000}, []int{100, 10000}, logf)
	}
	return callsPerJob([]int{10, 100, 1000, 10000}, []int{100, 10000, 100000}, logf)
}

// callsPerJob runs scenario 1 with rosters of provN people and campaigns
// over campM members.
func callsPerJob(provN, campM []int, logf func(string, ...any)) ([]CallsRow, error) {
	h, err := startApp(appOpts{})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	sim := h.app.Sim
	total := max(slices.Max(provN)*10/9+10, slices.Max(campM), 1000)
	const site = "calls"
	st := sim.Site(site)
	st.AddMember(wixsim.MemberSeed{FirstName: "Owner"})
	t0 := time.Now()
	ids, emails := seedMembers(st, "m", total)
	logf("  seeded %d members in %s", total, time.Since(t0).Round(time.Millisecond))
	var rows []CallsRow
	measure := func(job, formula string, min, naive int64, cmdType string, body map[string]any, timeout time.Duration) error {
		s := body["siteId"].(string)
		before := sim.TotalCalls(s)
		c, took, err := h.run(cmdType, fmt.Sprintf("calls-%d", len(rows)), body, timeout)
		if err != nil {
			return err
		}
		got := sim.TotalCalls(s) - before
		rows = append(rows, CallsRow{Job: job, Measured: got, Event: c.WixCalls(), Minimum: min, Formula: formula,
			Ratio: float64(got) / float64(min), Naive: naive, TookMS: ms(took)})
		logf("  %-40s calls %6d  min %6d  (%s)", job, got, min, took.Round(time.Millisecond))
		return nil
	}

	// ProvisionGroup by email, new group.
	var withEmail []string
	for _, e := range emails {
		if e != "" {
			withEmail = append(withEmail, e)
		}
	}
	for _, n := range provN {
		people := make([]messages.Person, n)
		for i := range people {
			people[i] = messages.Person{Email: withEmail[i]}
		}
		min := 2 + 2*ceilDiv(n, 100)
		if err := measure(fmt.Sprintf("ProvisionGroup n=%d (email)", n), "2+⌈n/100⌉+⌈n/100⌉", min, int64(2*n),
			messages.CmdProvisionGroup, map[string]any{"siteId": site, "group": map[string]any{"name": fmt.Sprintf("Provision %d", n)}, "people": people},
			10*time.Minute); err != nil {
			return rows, err
		}
	}

	// Campaigns, audience all, one group of m members.
	for _, m := range campM {
		g := st.AddGroup(fmt.Sprintf("Campaign %d", m), "", ids[:m]...)
		e := 0
		for _, x := range emails[:m] {
			if x != "" {
				e++
			}
		}
		// The member pages read one member early (the offset cursor, so
		// nobody is missed when members leave between two reads): 99 new
		// members a page after the first, the budget send_campaign states.
		min := max(1, ceilDiv(m-1, 99)) + ceilDiv(m, 100) + ceilDiv(e, 100)
		if err := measure(fmt.Sprintf("SendCampaign all m=%d (e=%d)", m, e), "max(1,⌈(m−1)/99⌉)+⌈m/100⌉+⌈e/100⌉", min, int64(2*m),
			messages.CmdSendCampaign, map[string]any{"siteId": site, "campaignId": fmt.Sprintf("camp-%d", m), "groupIds": []string{g.ID}},
			20*time.Minute); err != nil {
			return rows, err
		}
	}

	// Interest campaign: 1,000 members, 400 answered, 200 match "yoga".
	{
		g := st.AddGroup("Interest", "", ids[:1000]...)
		qs := st.SetQuestions(g.ID, "What brings you here?")
		answered, matched, me := 400, 0, 0
		for i := 0; i < answered; i++ {
			text := "Running and swimming"
			if i%2 == 0 {
				text = "I love hot yoga"
				matched++
				if emails[i] != "" {
					me++
				}
			}
			st.SetAnswer(g.ID, ids[i], qs[0].ID, text)
		}
		min := ceilDiv(answered, 100) + ceilDiv(matched, 100) + ceilDiv(me, 100)
		if err := measure(fmt.Sprintf("SendCampaign interest (a=%d, k=%d, e=%d)", answered, matched, me), "⌈a/100⌉+⌈k/100⌉+⌈e/100⌉", min,
			ceilDiv(answered, 100)+int64(2*matched), messages.CmdSendCampaign,
			map[string]any{"siteId": site, "campaignId": "camp-interest", "groupIds": []string{g.ID},
				"audience": map[string]any{"type": "interest", "keywords": []string{"yoga"}}}, 5*time.Minute); err != nil {
			return rows, err
		}
	}

	// Report over 500 groups; rules from a source to 10 and to 500 groups.
	const rsite = "calls-groups"
	rs := sim.Site(rsite)
	var rids []string
	for i := range 50 {
		rids = append(rids, rs.AddMember(wixsim.MemberSeed{FirstName: "R", LastName: fmt.Sprint(i)}).ID)
	}
	var gids []string
	for i := range 500 {
		gids = append(gids, rs.AddGroup(fmt.Sprintf("Group %03d", i), "", rids[:1+i%50]...).ID)
	}
	if err := measure("GenerateReport 500 groups (top 10, idle 10)", "1+⌈top/100⌉+⌈idle/100⌉", 3, 0,
		messages.CmdGenerateReport, map[string]any{"siteId": rsite}, time.Minute); err != nil {
		return rows, err
	}
	if err := measure("GenerateReport 500 groups (top 150, idle 120)", "1+⌈top/100⌉+⌈idle/100⌉", 5, 0,
		messages.CmdGenerateReport, map[string]any{"siteId": rsite, "top": 150, "idle": 120}, time.Minute); err != nil {
		return rows, err
	}
	src := rs.AddGroup("Rules source", "", rids[0])
	rs.SetRules(src.ID, []wixsim.Rule{{Title: "Be kind", Description: "Always."}, {Title: "No spam"}})
	if err := measure("PropagateRules to 10 groups (ids)", "1+k", 11, 0, messages.CmdPropagateRules,
		map[string]any{"siteId": rsite, "sourceGroupId": src.ID, "targets": map[string]any{"groupIds": gids[:10]}}, time.Minute); err != nil {
		return rows, err
	}
	G := len(rs.Groups())
	if err := measure(fmt.Sprintf("PropagateRules to all %d groups", G-1), "1+⌈G/100⌉+(G−1)", 1+ceilDiv(G, 100)+int64(G-1), 0,
		messages.CmdPropagateRules, map[string]any{"siteId": rsite, "sourceGroupId": src.ID, "targets": map[string]any{"all": true}}, 5*time.Minute); err != nil {
		return rows, err
	}
	return rows, nil
}
