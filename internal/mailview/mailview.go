// Package mailview is the demo's mail viewer: a small web page listing the
// mails a Mailpit server holds and showing each one, read through Mailpit's
// HTTP API. It exists because a Mailpit built with `go install` (as the
// Makefile does) has no web UI assets, and Mailpit's own UI build (npm) does
// not complete from this machine's registry mirror.
//
// Mail content is untrusted: every value is escaped by html/template, and a
// mail's HTML part is served on its own URL under a CSP sandbox (no script,
// no network, no same origin) inside a sandboxed iframe.
package mailview

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed page.tmpl
var pageFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
}).ParseFS(pageFS, "page.tmpl"))

// Bounds of one page and of what is read from Mailpit.
const (
	PageSize    = 100
	maxAPIBytes = 8 << 20
)

// Address is a mail address as Mailpit's API gives it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Header is what a mail's list entry and full view share.
type Header struct {
	ID      string    `json:"ID"`
	From    Address   `json:"From"`
	To      []Address `json:"To"`
	Subject string    `json:"Subject"`
}

// Summary is one mail of Mailpit's list.
type Summary struct {
	Header
	Created time.Time `json:"Created"`
	Snippet string    `json:"Snippet"`
	Size    int64     `json:"Size"`
}

// Message is one mail with its parts.
type Message struct {
	Header
	Date time.Time `json:"Date"`
	Text string    `json:"Text"`
	HTML string    `json:"HTML"`
}

// Handler serves the viewer: / (the inbox, ?start= pages), /message?id=
// and /message/html?id= (the HTML part, sandboxed).
type Handler struct {
	api    string
	client *http.Client
	mux    *http.ServeMux
}

// New returns a viewer over the Mailpit API at api (e.g. http://127.0.0.1:8025).
func New(api string) *Handler {
	h := &Handler{api: strings.TrimRight(api, "/"), client: &http.Client{Timeout: 10 * time.Second}, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.inbox)
	h.mux.HandleFunc("GET /message", h.message)
	h.mux.HandleFunc("GET /message/html", h.html)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// get reads one Mailpit API answer into v.
func (h *Handler) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.api+path, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBytes))
	if err != nil {
		return fmt.Errorf("mailpit: read answer: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit: %s", resp.Status)
	}
	return json.Unmarshal(b, v)
}

var errNotFound = errors.New("no such mail")

type inboxData struct {
	Total, Start, Next, Prev int
	Mails                    []Summary
	Error                    string
}

func (h *Handler) inbox(w http.ResponseWriter, r *http.Request) {
	start, _ := strconv.Atoi(r.URL.Query().Get("start"))
	start = max(start, 0)
	var list struct {
		Total    int       `json:"total"`
		Messages []Summary `json:"messages"`
	}
	d := inboxData{Start: start, Prev: -1, Next: -1}
	if err := h.get(r.Context(), fmt.Sprintf("/api/v1/messages?limit=%d&start=%d", PageSize, start), &list); err != nil {
		d.Error = err.Error()
	}
	d.Total, d.Mails = list.Total, list.Messages
	if start+len(d.Mails) < d.Total {
		d.Next = start + PageSize
	}
	if start > 0 {
		d.Prev = max(start-PageSize, 0)
	}
	render(w, "inbox", d)
}

func (h *Handler) read(w http.ResponseWriter, r *http.Request) (*Message, bool) {
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "/?#%") {
		http.Error(w, "bad mail id", http.StatusBadRequest)
		return nil, false
	}
	var m Message
	if err := h.get(r.Context(), "/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, errNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return nil, false
	}
	return &m, true
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request) {
	if m, ok := h.read(w, r); ok {
		render(w, "message", m)
	}
}

// html serves a mail's HTML part under a CSP sandbox: no script, no
// request anywhere (remote images stay unloaded), inline styles allowed.
func (h *Handler) html(w http.ResponseWriter, r *http.Request) {
	m, ok := h.read(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, m.HTML)
}

func render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; form-action 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, name, data)
}
