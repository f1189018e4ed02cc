// Package handlers carries out groupflow's commands against the Wix REST API.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"time"

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

// progress is a command's checkpoint store plus its Wix call count, carried
// across deliveries: every Save also records the calls made so far, so the
// completion event reports what the whole command cost (calls made after the
// last checkpoint of a crashed attempt are not counted).
type progress struct {
	steps   *ledger.Steps
	counter *wix.CallCounter
	base    int64
	// fresh: no earlier attempt left checkpoints, so only steps saved by
	// this attempt (in saved) can exist, and loads need no ledger read.
	fresh bool
	saved map[string][]byte
}

const callsStep = "wix-calls"

// newProgress loads the command's call count and returns ctx counting this
// attempt's calls.
func newProgress(ctx context.Context, l *ledger.Ledger, cmd *runtime.Command) (context.Context, *progress, error) {
	p := &progress{steps: l.Steps(cmd.Type, cmd.ID), counter: &wix.CallCounter{}, fresh: cmd.Fresh, saved: map[string][]byte{}}
	if !p.fresh {
		if _, err := p.steps.Load(ctx, callsStep, &p.base); err != nil {
			return nil, nil, err
		}
	}
	return wix.WithCallCounter(ctx, p.counter), p, nil
}

func (p *progress) load(ctx context.Context, step string, v any) (bool, error) {
	if p.fresh {
		b, ok := p.saved[step]
		if !ok {
			return false, nil
		}
		return true, json.Unmarshal(b, v)
	}
	return p.steps.Load(ctx, step, v)
}

func (p *progress) save(ctx context.Context, step string, v any) error {
	if err := p.steps.Save(ctx, step, v); err != nil {
		return err
	}
	if p.fresh {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		p.saved[step] = b
	}
	return p.steps.Save(ctx, callsStep, p.calls())
}

// failed records the calls of an attempt that ends with err (best effort:
// a crash records nothing, and the next attempt counts from the last
// checkpoint). Use it as defer prog.failed(ctx, &err).
func (p *progress) failed(ctx context.Context, err *error) {
	if *err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = p.steps.Save(ctx, callsStep, p.calls())
}

// calls returns the Wix calls of the command so far.
func (p *progress) calls() int64 { return p.base + p.counter.Load() }

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

// begin starts a checkpointed handler run: the command's site's Wix client
// and its progress (with ctx counting this attempt's Wix calls). Callers
// defer prog.failed(ctx, &err).
func begin(ctx context.Context, sites Sites, l *ledger.Ledger, cmd *runtime.Command) (site *wix.Site, _ context.Context, prog *progress, err error) {
	if site, err = sites.Site(cmd.SiteID); err != nil {
		return nil, nil, nil, err
	}
	ctx, prog, err = newProgress(ctx, l, cmd)
	return site, ctx, prog, err
}
