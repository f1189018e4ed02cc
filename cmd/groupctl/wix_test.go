package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"groupflow/internal/testenv"
	"groupflow/internal/wixsim"
)

// groupctl wix check reads the processor's environment, calls the site with
// those credentials (one read per endpoint: see the simulator's call log)
// and prints the verdict per flow in each simulator auth mode.
func TestWixCheck(t *testing.T) {
	w := testenv.StartWix(t, wixsim.Options{Members: 5, Groups: 2})
	env := map[string]string{"WIX_API_KEY": "secret-api-key", "WIX_SITE_ID": w.SiteID, "WIX_BASE_URL": w.URL}
	old := wixGetenv
	wixGetenv = func(k string) string { return env[k] }
	t.Cleanup(func() { wixGetenv = old })
	check := func() (string, error) {
		t.Helper()
		w.Sim.ResetCalls()
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"wix", "check"}, strings.NewReader(""), &out, &errOut)
		calls := w.Sim.Calls(w.SiteID)
		if len(calls) != 10 {
			t.Errorf("endpoints read: %v, want 10 (groupRequests.list included)", calls)
		}
		for op, n := range calls {
			if n != 1 {
				t.Errorf("%s read %d times", op, n)
			}
		}
		for _, secret := range []string{"secret-api-key", env["WIX_MEMBER_REFRESH_TOKEN"]} {
			if secret != "" && strings.Contains(out.String()+errOut.String(), secret) {
				t.Fatalf("output shows a secret:\n%s", out.String())
			}
		}
		t.Logf("\n%s", out.String())
		return out.String(), err
	}
	lines := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			flow := f[1]
			if flow == "interest" {
				flow = "interest campaign"
			}
			m[flow] = l
		}
		return m
	}

	out, err := check()
	if err != nil {
		t.Fatalf("permissive: %v\n%s", err, out)
	}
	for flow, l := range lines(out) {
		if !strings.Contains(l, " ok ") {
			t.Errorf("permissive %s: %s", flow, l)
		}
	}

	w.Sim.SetAuthStrict(true)
	out, err = check()
	if !errors.Is(err, errSilent) {
		t.Fatalf("strict without member credential: err %v", err)
	}
	got := lines(out)
	for flow, ok := range map[string]bool{"provision": true, "campaign": true, "interest campaign": false, "questions": false, "rules": false, "report": true} {
		l := got[flow]
		if ok != strings.Contains(l, " ok ") || (!ok && !strings.Contains(l, "set sites["+w.SiteID+"].memberRefreshTokenEnv and memberClientId (one site: WIX_MEMBER_REFRESH_TOKEN and WIX_MEMBER_CLIENT_ID)")) {
			t.Errorf("strict %s: %q", flow, l)
		}
	}

	env["WIX_MEMBER_REFRESH_TOKEN"] = w.Sim.IssueMemberRefreshToken(w.SiteID, w.Site().OwnerID(), "member-client")
	env["WIX_MEMBER_CLIENT_ID"] = "member-client"
	out, err = check()
	if err != nil {
		t.Fatalf("strict with member credential: %v\n%s", err, out)
	}
	if n := strings.Count(out, " ok "); n != 6 {
		t.Fatalf("%d flows ok, want 6:\n%s", n, out)
	}
}
