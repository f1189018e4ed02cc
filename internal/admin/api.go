package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"groupflow/internal/httpjson"
	"groupflow/internal/ops"
	"groupflow/internal/runtime"
)

// Ops is what the /api endpoints read: this instance's progress registry
// and the discovery of groups (nil: /api/groups answers 404).
type Ops struct {
	Progress  *runtime.ProgressRegistry
	Discovery *ops.Discovery
}

// MountAPI mounts, behind the token of Protect:
//
//	GET /api/commands         the commands this instance runs, with their progress
//	GET /api/commands/{id}    the progress of command id here (404: not running here)
//	GET /api/groups           discovery: ?site=&prefix=&withQuestions=1&withRules=1&limit=
//	GET /api/groups/{ref}     one group by id or exact name, with questions and rules
//
// All answers are JSON; the discovery endpoints cost Wix calls (see
// ops.Discovery), wait on the site's limiter, and share the instance's
// ops.MaxDiscoveryInWork slots with the ops subjects (beyond: 503).
func (s *Server) MountAPI(o Ops) {
	s.Handle("GET /api/commands", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, o.Progress.Lookup(""))
	}))
	s.Handle("GET /api/commands/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := o.Progress.Lookup(r.PathValue("id"))
		if len(got) == 0 {
			httpjson.Write(w, http.StatusNotFound, map[string]string{"error": "command not running on this instance"})
			return
		}
		httpjson.Write(w, http.StatusOK, got)
	}))
	if o.Discovery == nil {
		return
	}
	s.Handle("GET /api/groups", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		req := ops.ListRequest{SiteID: q.Get("site"), Prefix: q.Get("prefix"), Limit: limit,
			WithQuestions: truthy(q.Get("withQuestions")), WithRules: truthy(q.Get("withRules"))}
		answerDiscovery(r.Context(), w, o.Discovery, func(ctx context.Context) (any, error) { return o.Discovery.List(ctx, req) })
	}))
	s.Handle("GET /api/groups/{ref}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := ops.ShowRequest{SiteID: r.URL.Query().Get("site"), Group: r.PathValue("ref")}
		answerDiscovery(r.Context(), w, o.Discovery, func(ctx context.Context) (any, error) { return o.Discovery.Show(ctx, req) })
	}))
}

func truthy(v string) bool { b, _ := strconv.ParseBool(v); return b || v == "yes" }

// answerDiscovery answers f within one of d's slots (ops.Discovery.Admit),
// or 503 when all are in use.
func answerDiscovery(ctx context.Context, w http.ResponseWriter, d *ops.Discovery, f func(context.Context) (any, error)) {
	release, ok := d.Admit()
	if !ok {
		w.Header().Set("Retry-After", "1")
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]string{"error": ops.ErrBusy.Error()})
		return
	}
	defer release()
	answer(ctx, w, f)
}

func answer(ctx context.Context, w http.ResponseWriter, f func(context.Context) (any, error)) {
	ctx, cancel := context.WithTimeout(ctx, ops.RequestTimeout)
	defer cancel()
	v, err := f(ctx)
	switch {
	case errors.Is(err, ops.ErrNoGroup):
		httpjson.Write(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		httpjson.Write(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
	default:
		httpjson.Write(w, http.StatusOK, v)
	}
}
