package app

import (
	"go.uber.org/zap"

	"groupflow/handlers"
	"groupflow/internal/runtime"
)

// registerHandlers registers one handler per command type on rt, each
// running up to concurrency commands at once, and returns the command types.
func registerHandlers(rt *runtime.Runtime, d Deps, concurrency int) []string {
	log := d.Logger.Named("handlers")
	profiles, err := ReportProfiles(d.Config)
	if err != nil {
		log.Error("report profiles of the sites file ignored (reports show site ids, UTC, no links, no mail)", zap.Error(err))
	}
	hs := []runtime.Handler{
		runtime.Adapt(handlers.NewProvisionGroup(d.Sites, d.Ledger, handlers.ProvisionConfig{DefaultRegion: d.Config.PhoneRegion, MaxMembers: d.Config.MaxGroupMembers}, log)),
		runtime.Adapt(handlers.NewSetMembershipQuestions(d.Sites, log)),
		runtime.Adapt(handlers.NewPropagateRules(d.Sites, log)),
		runtime.Adapt(handlers.NewSendCampaign(d.Sites, d.Events, d.JS, log)),
		runtime.Adapt(handlers.NewGenerateReport(d.Sites, d.JS, log).WithProfiles(profiles)),
	}
	types := make([]string, 0, len(hs))
	for _, h := range hs {
		rt.Register(h, concurrency)
		types = append(types, h.CommandType())
	}
	return types
}
