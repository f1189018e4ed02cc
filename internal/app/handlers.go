package app

import (
	"go.uber.org/zap"

	"groupflow/handlers"
	"groupflow/internal/runtime"
)

// buildHandlers returns one handler per command type.
func buildHandlers(d Deps) []runtime.Handler {
	log := d.Logger.Named("handlers")
	profiles, err := ReportProfiles(d.Config)
	if err != nil {
		log.Error("report profiles of the sites file ignored (reports show site ids, UTC, no links, no mail)", zap.Error(err))
	}
	return []runtime.Handler{
		handlers.NewProvisionGroup(d.Sites, d.Ledger, handlers.ProvisionConfig{DefaultRegion: d.Config.PhoneRegion}, log),
		handlers.NewSetMembershipQuestions(d.Sites, d.Ledger, log),
		handlers.NewPropagateRules(d.Sites, d.Ledger, log),
		handlers.NewSendCampaign(d.Sites, d.Ledger, d.Events, d.JS, log),
		handlers.NewGenerateReport(d.Sites, d.Ledger, d.JS, log).WithProfiles(profiles),
	}
}
