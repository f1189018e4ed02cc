package app

import (
	"groupflow/handlers"
	"groupflow/internal/runtime"
)

// buildHandlers returns one handler per command type.
func buildHandlers(d Deps) []runtime.Handler {
	log := d.Logger.Named("handlers")
	return []runtime.Handler{
		handlers.NewProvisionGroup(d.Sites, d.Ledger, handlers.ProvisionConfig{DefaultRegion: d.Config.PhoneRegion}, log),
		handlers.NewSetMembershipQuestions(d.Sites, d.Ledger, log),
		handlers.NewPropagateRules(d.Sites, d.Ledger, log),
		handlers.NewSendCampaign(d.Sites, d.Ledger, d.Events, d.JS, log),
		handlers.NewGenerateReport(d.Sites, d.Ledger, d.JS, log),
	}
}
