package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	groupflow "groupflow/internal/app"
	"groupflow/internal/config"
	"groupflow/internal/wixcheck"
)

// wixGetenv reads the environment of groupctl wix (tests replace it).
var wixGetenv = os.Getenv

func (a *app) wixCmd() *cobra.Command {
	w := &cobra.Command{Use: "wix", Short: "Check the Wix sites groupflow is configured for"}
	var site, sitesFile, baseURL string
	var timeout time.Duration
	check := &cobra.Command{
		Use:   "check",
		Short: "Preflight: which flows each site's Wix credentials allow",
		Long: `check reads groupflow's Wix configuration from the same environment as the
processor (WIX_API_KEY and WIX_SITE_ID, WIX_APP_ID/WIX_APP_SECRET/WIX_INSTANCE_ID,
GROUPFLOW_WIX_SITES_FILE, WIX_MEMBER_REFRESH_TOKEN/WIX_MEMBER_CLIENT_ID,
WIX_BASE_URL), calls Wix directly with those credentials, and makes the
cheapest read-only call of every endpoint each flow needs, once per
endpoint. It prints one line per site and flow (provision, campaign,
interest campaign, questions, rules, report): ok, or FAILS with why and what
to configure. Writes are not tried. Secrets are never printed. Without Wix
credentials it checks the embedded simulator (site demo-site at
127.0.0.1:8090). Exit status 1 when a flow will not work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var args []string
			if sitesFile != "" {
				args = append(args, "--wix-sites-file", sitesFile)
			}
			if baseURL != "" {
				args = append(args, "--wix-base-url", baseURL)
			}
			cfg, err := config.Parse(args, wixGetenv, io.Discard)
			if err != nil {
				return fmt.Errorf("wix configuration: %w", err)
			}
			c, err := groupflow.NewWixClient(cfg, wixGetenv, zap.NewNop())
			if err != nil {
				return fmt.Errorf("wix configuration: %w", err)
			}
			ids := c.SiteIDs()
			if site != "" {
				ids = []string{site}
			}
			if len(ids) == 0 {
				return fmt.Errorf("no Wix site configured: set WIX_API_KEY and WIX_SITE_ID, or GROUPFLOW_WIX_SITES_FILE")
			}
			ctx, cancel := timeoutCtx(cmd.Context(), timeout)
			defer cancel()
			failed := false
			for _, id := range ids {
				s, err := c.Site(id)
				if err != nil {
					return fmt.Errorf("site %s is not in the configuration (sites: %v)", id, c.SiteIDs())
				}
				rs := wixcheck.Check(ctx, s)
				wixcheck.Format(a.stdout, id, rs)
				for _, r := range rs {
					failed = failed || !r.OK
				}
			}
			if failed {
				return errSilent
			}
			return nil
		},
	}
	f := check.Flags()
	f.StringVar(&site, "site", "", "check only this site id (default every configured site)")
	f.StringVar(&sitesFile, "sites-file", "", "YAML sites file (default env GROUPFLOW_WIX_SITES_FILE)")
	f.StringVar(&baseURL, "wix-base-url", "", "Wix API base URL (default env WIX_BASE_URL, https://www.wixapis.com, or the simulator)")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	w.AddCommand(check)
	return w
}
