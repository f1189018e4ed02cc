package dlq

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"groupflow/internal/httpjson"
)

// EntryJSON is an entry with its body, as served by GET /dlq/{seq}.
type EntryJSON struct {
	*Entry
	// Body is the original command body: JSON as is, anything else as a string.
	Body json.RawMessage `json:"body,omitempty"`
}

// WithBody renders e with its body for JSON output.
func (e *Entry) WithBody() EntryJSON {
	out := EntryJSON{Entry: e}
	if len(e.Body) > 0 {
		if json.Valid(e.Body) {
			out.Body = e.Body
		} else {
			out.Body, _ = json.Marshal(string(e.Body))
		}
	}
	return out
}

// ListResponse is the body of GET /dlq.
type ListResponse struct {
	Count   int      `json:"count"`
	Entries []*Entry `json:"entries"`
	// Truncated says more entries match than the limit (or the byte budget,
	// see maxListBytes) let through.
	Truncated bool `json:"truncated,omitempty"`
}

// maxListBytes bounds the text (see Entry.textSize) of the entries one GET
// /dlq answers, whatever the limit: a forged dead letter may carry ~64 KiB
// of headers, and JSON writes a "<" or a control character as 6 bytes, so
// 10,000 of them would make the processor hold and encode gigabytes. The
// answer stops before the entry that would pass it (at least one entry is
// listed) and says "truncated". A variable for tests.
var maxListBytes = 8 << 20

// Bounds of one GET /dlq answer (query limit=).
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10_000
)

// ActionRequest is the body of POST /dlq/replay and POST /dlq/purge.
type ActionRequest struct {
	// Seqs selects entries by DLQ sequence: at most MaxSeqs of them (400
	// beyond).
	Seqs           []uint64 `json:"seqs,omitempty"`
	All            bool     `json:"all,omitempty"`
	Command        string   `json:"command,omitempty"`
	ReasonContains string   `json:"reasonContains,omitempty"`
	// Since is an RFC 3339 time or a duration before now ("24h").
	Since  string `json:"since,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
}

// PurgeResponse is the body of POST /dlq/purge.
type PurgeResponse struct {
	Purged int `json:"purged"`
}

// NewHTTPHandler serves the DLQ operations for tools and dashboards:
//
//	GET  /dlq             list (query: command, since = RFC 3339 or duration,
//	                      reason, limit: default 1000, at most 10,000, and
//	                      at most 8 MiB of entries' text; "truncated" says
//	                      more match)
//	GET  /dlq/{seq}       one entry, body included
//	POST /dlq/replay      ActionRequest → ReplayResult (409 when every
//	                      entry selected was refused, see Store.ReplayTarget)
//	POST /dlq/purge       ActionRequest → PurgeResponse
//
// When token is not empty every request needs "Authorization: Bearer <token>".
func NewHTTPHandler(store *Store, token string, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &httpHandler{store: store, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dlq", h.list)
	mux.HandleFunc("GET /dlq/{$}", h.list)
	mux.HandleFunc("GET /dlq/{seq}", h.get)
	mux.HandleFunc("POST /dlq/replay", h.replay)
	mux.HandleFunc("POST /dlq/purge", h.purge)
	if token == "" {
		return mux
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="groupflow"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type httpHandler struct {
	store *Store
	log   *zap.Logger
}

func (h *httpHandler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{CommandType: q.Get("command"), ReasonContains: q.Get("reason")}
	if err := f.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if s := q.Get("since"); s != "" {
		t, err := ParseSince(s, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		f.Since = t
	}
	limit := DefaultListLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to %d", l, MaxListLimit))
			return
		}
		limit = n
	}
	entries, truncated, err := h.store.ListBounded(r.Context(), f, limit)
	if err != nil {
		h.fail(w, "list", err)
		return
	}
	out := ListResponse{Count: len(entries), Entries: entries, Truncated: truncated}
	if out.Entries == nil {
		out.Entries = []*Entry{}
	}
	httpjson.Write(w, http.StatusOK, out)
}

// textSize is the length of e's text without its body: what a listing
// holds and encodes of it (see maxListBytes).
func (e *Entry) textSize() int {
	n := len(e.CommandType) + len(e.CommandID) + len(e.Kind) + len(e.Reason) + len(e.OriginalSubject) +
		len(e.Handler) + len(e.HeadersDropped) + len(e.Subject) + len(e.Refused)
	for k, v := range e.Headers {
		n += len(k) + len(v)
	}
	for _, fe := range e.Fields {
		// An empty one still costs its struct held and ~25 bytes encoded.
		n += len(fe.Field) + len(fe.Message) + 32
	}
	return n
}

func (h *httpHandler) get(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad sequence %q", r.PathValue("seq")))
		return
	}
	e, err := h.store.Get(r.Context(), seq)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		h.fail(w, "get", err)
		return
	}
	httpjson.Write(w, http.StatusOK, e.WithBody())
}

func (h *httpHandler) action(w http.ResponseWriter, r *http.Request) (Filter, bool, bool) {
	var req ActionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return Filter{}, false, false
	}
	if _, err := dec.Token(); err != io.EOF {
		// `{"all":true}=` is what a cross-site text/plain form post sends.
		writeError(w, http.StatusBadRequest, errors.New("bad request body: data after the JSON object"))
		return Filter{}, false, false
	}
	f := Filter{Seqs: req.Seqs, All: req.All, CommandType: req.Command, ReasonContains: req.ReasonContains}
	if req.Since != "" {
		t, err := ParseSince(req.Since, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return Filter{}, false, false
		}
		f.Since = t
	}
	if err := f.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return Filter{}, false, false
	}
	if !f.selective() {
		writeError(w, http.StatusBadRequest, ErrNoSelector)
		return Filter{}, false, false
	}
	return f, req.DryRun, true
}

func (h *httpHandler) replay(w http.ResponseWriter, r *http.Request) {
	f, dry, ok := h.action(w, r)
	if !ok {
		return
	}
	res, err := h.store.Replay(r.Context(), f, ReplayOptions{DryRun: dry})
	if err != nil {
		h.fail(w, "replay", err)
		return
	}
	h.log.Info("dlq replay", zap.Bool("dry_run", dry), zap.Int("replayed", res.Replayed),
		zap.Int("skipped", res.Skipped), zap.Int("refused", res.Refused), zap.Int("failed", res.Failed))
	status := http.StatusOK
	if res.Refused > 0 && res.Replayed == 0 && res.Failed == 0 {
		// Nothing selected may be replayed: say so with the refusals.
		status = http.StatusConflict
	}
	httpjson.Write(w, status, res)
}

func (h *httpHandler) purge(w http.ResponseWriter, r *http.Request) {
	f, dry, ok := h.action(w, r)
	if !ok {
		return
	}
	if dry {
		n, err := h.store.Count(r.Context(), f)
		if err != nil {
			h.fail(w, "purge", err)
			return
		}
		httpjson.Write(w, http.StatusOK, PurgeResponse{Purged: n})
		return
	}
	n, err := h.store.Purge(r.Context(), f)
	if err != nil {
		h.fail(w, "purge", err)
		return
	}
	h.log.Warn("dlq purged", zap.Int("purged", n))
	httpjson.Write(w, http.StatusOK, PurgeResponse{Purged: n})
}

func (h *httpHandler) fail(w http.ResponseWriter, op string, err error) {
	h.log.Error("dlq "+op+" failed", zap.Error(err))
	writeError(w, http.StatusInternalServerError, err)
}

func writeError(w http.ResponseWriter, status int, err error) {
	httpjson.Write(w, status, map[string]string{"error": err.Error()})
}

// maxSinceDays bounds a "<n>d" duration (a larger one overflowed
// time.Duration and wrapped to an arbitrary time).
const maxSinceDays = 100 * 366

// ParseSince reads a time bound: an RFC 3339 time, or a duration before now
// ("90m", "24h", "7d", at most 36,600 days).
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= maxSinceDays {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since %q: want a duration (24h, 7d) or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}
