// Package handlers carries out groupflow's commands against the Wix REST API.
package handlers

import (
	"context"
	"errors"

	"groupflow/internal/failure"
	"groupflow/internal/ledger"
	"groupflow/internal/runtime"
	"groupflow/internal/wix"
)

// Sites resolves a command's site id to its Wix client. *wix.Client
// satisfies it (see WixSites).
type Sites interface {
	Site(siteID string) (*wix.Site, error)
}

// WixSites adapts a Wix client to Sites.
func WixSites(c *wix.Client) Sites { return c }

// itemRefused reports whether Wix refused one item of a command for good
// (a 4xx about that group, batch or target, 403 included: permissions can
// differ per group), so the refusal may be recorded as that item's outcome.
// A 401 concerns the whole site's credentials, not the item — a key being
// rotated, say — so it fails the attempt instead of being recorded, and a
// replay once the credentials are fixed tries the item again. The exception
// is an *wix.AuthRefusedError made with a member credential: whether 401 or
// 403, it says the member is not an admin of that group, so it is the item's.
func itemRefused(err error) bool {
	var ar *wix.AuthRefusedError
	if errors.As(err, &ar) && !ar.NeedsMemberCredential() {
		return true
	}
	return failure.IsPermanent(err) && wix.StatusOf(err) != 401
}

// begin starts a handler run: the command's site's Wix client and its
// checkpoint store, the command's lease (ledger.Lease: Load, Checkpoint,
// and Calls, the Wix calls of the whole command, counted by the runtime).
func begin(ctx context.Context, sites Sites, cmd *runtime.Command) (*wix.Site, context.Context, *ledger.Lease, error) {
	site, err := sites.Site(cmd.SiteID)
	if err != nil {
		return nil, nil, nil, err
	}
	return site, ctx, cmd.Checkpoints(), nil
}
