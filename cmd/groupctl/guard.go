package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// errPermission is the cause of a context ended by permissionGuard.
var errPermission = errors.New("permission denied by the NATS server")

// permissionGuard returns a context that ends as soon as the server reports
// a permissions violation on a's connection (nats.go reports those
// asynchronously, through the error handler: the refused request itself is
// never answered and would wait for its timeout). Its cause, read with
// guardErr, names the refused operation and subject. stop restores the
// previous error handler. a must be connected.
func (a *app) permissionGuard(ctx context.Context) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	prev := a.nc.ErrorHandler()
	a.nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if isPermissionErr(err) {
			cancel(fmt.Errorf("%w: %s (see deploy/nats/accounts.conf for the grants groupctl needs)", errPermission, permissionText(err)))
			return
		}
		if prev != nil {
			prev(nc, sub, err)
		}
	})
	return gctx, func() {
		a.nc.SetErrorHandler(prev)
		cancel(nil)
	}
}

// guardErr returns the permissions violation that ended ctx, if any, else err.
func guardErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errPermission) {
		return cause
	}
	return err
}

// isPermissionErr reports whether err is a permissions violation.
func isPermissionErr(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) ||
		strings.Contains(strings.ToLower(err.Error()), "permissions violation")
}

// permissionText is the server's explanation without the connection details.
func permissionText(err error) string {
	s := err.Error()
	if i := strings.Index(strings.ToLower(s), "permissions violation for"); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, " on connection"); i >= 0 {
		s = s[:i]
	}
	return safe(s)
}
