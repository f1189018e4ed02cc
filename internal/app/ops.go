package app

import (
	"context"

	"github.com/nats-io/nats.go"

	"groupflow/internal/admin"
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
