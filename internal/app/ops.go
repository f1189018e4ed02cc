package app

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"groupflow/internal/admin"
	"groupflow/internal/netsafe"
	"groupflow/internal/ops"
	"groupflow/internal/runtime"
	"groupflow/messages"
)

// serveOps answers the ops requests (progress, discovery) over NATS on nc
// and mounts them on the admin API; the subscriptions end with the
// connection.
func (a *App) serveOps(ctx context.Context, nc *nats.Conn, rt *runtime.Runtime, sites Sites, subjects messages.Subjects) error {
	disc := &ops.Discovery{Sites: sites, DefaultSite: a.cfg.SiteID}
	a.admin.MountAPI(admin.Ops{Progress: rt.Progress(), Discovery: disc})
	srv := &ops.Server{Progress: rt.Progress(), Discovery: disc, Subjects: subjects, Instance: rt.Instance(), Log: a.log.Named("ops")}
	_, err := srv.Serve(ctx, nc)
	return err
}

// awaitConnected waits up to d for nc's first connection (an unreachable
// NATS is retried in the background): a startup that cannot reach NATS
// fails in seconds, with the reason, instead of waiting on provisioning.
// The error names url (a comma-separated list) without its secrets.
func awaitConnected(ctx context.Context, nc *nats.Conn, url string, d time.Duration) error {
	if nc.IsConnected() || d <= 0 {
		return nil
	}
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	if nc.IsConnected() {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case st := <-ch:
		if st == nats.CONNECTED {
			return nil
		}
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	reason := "no server answered"
	if err := nc.LastError(); err != nil {
		reason = netsafe.RedactText(err.Error(), url)
	}
	return fmt.Errorf("nats %s unreachable for %s: %s (is it running? --nats-url, --nats-start-timeout)", netsafe.RedactURLs(url), d, reason)
}
