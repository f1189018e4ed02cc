package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"groupflow/internal/dlq"
	"groupflow/internal/ledger"
	"groupflow/messages"
)

// Bounds of what one console page shows.
const (
	maxListed      = 200      // dead letters on the DLQ page
	recentShown    = 50       // events on the overview
	maxBodyShown   = 64 << 10 // bytes of a dead letter's body
	commandDLQSeen = 20       // dead letters on a command's page
)

type inFlightRow struct {
	InFlight
	Progress map[string]int64
}

type dlqCount struct {
	CommandType string
	N           int
}

type overviewData struct {
	InFlight    []inFlightRow
	InFlightOff bool
	Outcomes    []Outcome
	OutcomesErr string
	Limiters    []LimiterState
	LimitersOff bool
	DLQ         []dlqCount
	DLQTotal    int
	DLQErr      string
}

func (c *console) progress(t, id string) map[string]int64 {
	if c.src.Progress == nil {
		return nil
	}
	p, _ := c.src.Progress.Progress(t, id)
	return p
}

// overview: commands in flight, recent outcomes, limiters, DLQ by type.
func (c *console) overview(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	d := overviewData{InFlightOff: c.src.InFlight == nil, LimitersOff: c.src.Limiters == nil}
	if c.src.InFlight != nil {
		for _, f := range c.src.InFlight.InFlight(ctx) {
			d.InFlight = append(d.InFlight, inFlightRow{InFlight: f, Progress: c.progress(f.CommandType, f.CommandID)})
		}
	}
	if c.src.Outcomes != nil {
		var err error
		if d.Outcomes, err = c.src.Outcomes.Recent(ctx, recentShown); err != nil {
			d.OutcomesErr = err.Error()
		}
	} else {
		d.OutcomesErr = "no event log mounted"
	}
	if c.src.Limiters != nil {
		d.Limiters = c.src.Limiters.Limiters()
	}
	if st, err := c.store(); err != nil {
		d.DLQErr = err.Error()
	} else {
		counts := map[string]int{}
		err := st.Each(ctx, dlq.Filter{}, false, func(e *dlq.Entry) error { counts[e.CommandType]++; return nil })
		if err != nil {
			d.DLQErr = err.Error()
		}
		for t, n := range counts {
			d.DLQ = append(d.DLQ, dlqCount{t, n})
			d.DLQTotal += n
		}
		slices.SortFunc(d.DLQ, func(a, b dlqCount) int { return strings.Compare(a.CommandType, b.CommandType) })
	}
	c.render(w, http.StatusOK, "overview", c.page(sess, "Overview", "overview", d))
}

type dlqListData struct {
	Command, Reason, Since string
	Types                  []string
	Entries                []*dlq.Entry
	More                   int
	Selective              bool
}

// dlqFilter reads the filter of the DLQ page's query or purge form.
func (c *console) dlqFilter(v url.Values) (dlq.Filter, error) {
	f := dlq.Filter{CommandType: strings.TrimSpace(v.Get("command")), ReasonContains: strings.TrimSpace(v.Get("reason")),
		All: v.Get("all") == "1"}
	if s := strings.TrimSpace(v.Get("since")); s != "" {
		t, err := dlq.ParseSince(s, c.now())
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	return f, nil
}

func (c *console) dlqList(w http.ResponseWriter, r *http.Request, sess *session) {
	st, err := c.store()
	if err != nil {
		c.fail(w, sess, http.StatusServiceUnavailable, "dead letters", err)
		return
	}
	q := r.URL.Query()
	f, err := c.dlqFilter(q)
	if err != nil {
		c.fail(w, sess, http.StatusBadRequest, "filter", err)
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	d := dlqListData{Command: f.CommandType, Reason: f.ReasonContains, Since: q.Get("since"), Types: messages.CommandTypes(),
		Selective: f.CommandType != "" || f.ReasonContains != "" || !f.Since.IsZero()}
	err = st.Each(ctx, f, false, func(e *dlq.Entry) error {
		if len(d.Entries) < maxListed {
			d.Entries = append(d.Entries, e)
		} else {
			d.More++
		}
		return nil
	})
	if err != nil {
		c.fail(w, sess, http.StatusBadGateway, "list dead letters", err)
		return
	}
	p := c.page(sess, "Dead letters", "dlq", d)
	p.Notice = doneNotice(q)
	c.render(w, http.StatusOK, "dlq", p)
}

// doneNotice words the outcome of the action that redirected here (fixed
// texts and numbers only: nothing from the query is echoed).
func doneNotice(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	seq, _ := strconv.ParseUint(q.Get("seq"), 10, 64)
	switch q.Get("done") {
	case "replayed":
		return fmt.Sprintf("Dead letter #%d replayed: it is back on its command subject and left the DLQ.", seq)
	case "purged-one":
		return fmt.Sprintf("Dead letter #%d purged.", seq)
	case "purged":
		return fmt.Sprintf("%d dead letter(s) purged.", n)
	}
	return ""
}

type dlqShowData struct {
	Entry   *dlq.Entry
	Headers [][2]string
	Body    string
	Clipped bool
}

func (c *console) entry(w http.ResponseWriter, r *http.Request, sess *session) (*dlq.Entry, bool) {
	st, err := c.store()
	if err != nil {
		c.fail(w, sess, http.StatusServiceUnavailable, "dead letters", err)
		return nil, false
	}
	seq, err := seqParam(r)
	if err != nil {
		c.fail(w, sess, http.StatusBadRequest, "dead letter", err)
		return nil, false
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	e, err := st.Get(ctx, seq)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, dlq.ErrNotFound) {
			status = http.StatusNotFound
		}
		c.fail(w, sess, status, fmt.Sprintf("dead letter #%d", seq), err)
		return nil, false
	}
	return e, true
}

func (c *console) dlqShow(w http.ResponseWriter, r *http.Request, sess *session) {
	e, ok := c.entry(w, r, sess)
	if !ok {
		return
	}
	d := dlqShowData{Entry: e}
	for k, v := range e.Headers {
		d.Headers = append(d.Headers, [2]string{k, v})
	}
	slices.SortFunc(d.Headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	body := e.Body
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		body = pretty.Bytes()
	}
	if len(body) > maxBodyShown {
		body, d.Clipped = body[:maxBodyShown], true
	}
	d.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	c.render(w, http.StatusOK, "dlqshow", c.page(sess, fmt.Sprintf("Dead letter #%d", e.Seq), "dlq", d))
}

type confirmData struct {
	Action, Question, Button, Back string
	Fields                         [][2]string
}

// confirmed reports whether the form was confirmed (by the console's script
// after a dialog, or on the confirmation page rendered here when not).
func (c *console) confirmed(w http.ResponseWriter, r *http.Request, sess *session, q confirmData) bool {
	if r.PostFormValue("confirmed") == "1" {
		return true
	}
	c.render(w, http.StatusOK, "confirm", c.page(sess, "Confirm", "dlq", q))
	return false
}

// confirmedEntry reads the path's dead letter and returns it once the action
// (verb: "replay" or "purge") is confirmed; question is a format for the
// entry's sequence, command type and id.
func (c *console) confirmedEntry(w http.ResponseWriter, r *http.Request, sess *session, verb, question string) (*dlq.Entry, bool) {
	e, ok := c.entry(w, r, sess)
	if !ok {
		return nil, false
	}
	return e, c.confirmed(w, r, sess, confirmData{Action: fmt.Sprintf("/console/dlq/%d/%s", e.Seq, verb),
		Question: fmt.Sprintf(question, e.Seq, e.CommandType, e.CommandID),
		Button:   strings.ToUpper(verb[:1]) + verb[1:], Back: fmt.Sprintf("/console/dlq/%d", e.Seq)})
}

func (c *console) dlqReplay(w http.ResponseWriter, r *http.Request, sess *session) {
	e, ok := c.confirmedEntry(w, r, sess, "replay", "Replay dead letter #%d (%s %s) to its command subject?")
	if !ok {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	res, err := c.src.DLQ.Replay(ctx, dlq.Filter{Seqs: []uint64{e.Seq}}, dlq.ReplayOptions{})
	if err == nil && res.Replayed != 1 {
		err = errors.New("not replayed")
		if len(res.Errors) > 0 {
			err = errors.New(res.Errors[0].Error)
		}
	}
	if err != nil {
		c.fail(w, sess, http.StatusConflict, fmt.Sprintf("replay dead letter #%d", e.Seq), err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/dlq?done=replayed&seq=%d", e.Seq), http.StatusSeeOther)
}

func (c *console) dlqPurgeOne(w http.ResponseWriter, r *http.Request, sess *session) {
	e, ok := c.confirmedEntry(w, r, sess, "purge", "Purge dead letter #%d (%s %s)? It is deleted for good.")
	if !ok {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if _, err := c.src.DLQ.Purge(ctx, dlq.Filter{Seqs: []uint64{e.Seq}}); err != nil {
		c.fail(w, sess, http.StatusBadGateway, fmt.Sprintf("purge dead letter #%d", e.Seq), err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/dlq?done=purged-one&seq=%d", e.Seq), http.StatusSeeOther)
}

// dlqPurge purges what the DLQ page's filter selects (never the whole DLQ
// by an empty filter: all=1 says so).
func (c *console) dlqPurge(w http.ResponseWriter, r *http.Request, sess *session) {
	st, err := c.store()
	if err != nil {
		c.fail(w, sess, http.StatusServiceUnavailable, "dead letters", err)
		return
	}
	f, err := c.dlqFilter(r.PostForm)
	if err != nil {
		c.fail(w, sess, http.StatusBadRequest, "filter", err)
		return
	}
	what := "every dead letter"
	if !f.All {
		what = fmt.Sprintf("the dead letters matching command=%q reason=%q since=%q", f.CommandType, f.ReasonContains, r.PostFormValue("since"))
	}
	fields := [][2]string{{"command", f.CommandType}, {"reason", f.ReasonContains}, {"since", r.PostFormValue("since")}}
	if f.All {
		fields = append(fields, [2]string{"all", "1"})
	}
	if !c.confirmed(w, r, sess, confirmData{Action: "/console/dlq/purge", Question: "Purge " + what + "? They are deleted for good.",
		Button: "Purge", Back: "/console/dlq", Fields: fields}) {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	n, err := st.Purge(ctx, f)
	if err != nil {
		c.fail(w, sess, http.StatusBadRequest, "purge", err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/console/dlq?done=purged&n=%d", n), http.StatusSeeOther)
}

type commandData struct {
	Type, ID string
	Record   *ledger.Record
	Progress map[string]int64
	Letters  []*dlq.Entry
	Outcomes []Outcome
	Notes    []string
}

// command shows one command: its ledger record (the type given, else each
// type tried: up to 5 KV reads), live progress, dead letters and events.
func (c *console) command(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	d := commandData{Type: q.Get("type"), ID: q.Get("id")}
	if d.ID == "" || len(d.ID) > 1024 || (d.Type != "" && !messages.IsCommandType(d.Type)) {
		c.fail(w, sess, http.StatusBadRequest, "command", errors.New("give a command id (and a known type)"))
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if c.src.Commands != nil {
		types := messages.CommandTypes()
		if d.Type != "" {
			types = []string{d.Type}
		}
		for _, t := range types {
			rec, err := c.src.Commands.Record(ctx, t, d.ID)
			if err != nil {
				d.Notes = append(d.Notes, "ledger: "+err.Error())
				break
			}
			if rec != nil {
				d.Record, d.Type = rec, t
				break
			}
		}
	}
	d.Progress = c.progress(d.Type, d.ID)
	c.commandLetters(ctx, &d)
	if c.src.Outcomes != nil {
		all, err := c.src.Outcomes.Recent(ctx, maxRecent)
		if err != nil {
			d.Notes = append(d.Notes, "events: "+err.Error())
		}
		for _, o := range all {
			if o.CommandID == d.ID {
				d.Outcomes = append(d.Outcomes, o)
			}
		}
	}
	c.render(w, http.StatusOK, "command", c.page(sess, "Command "+d.ID, "overview", d))
}

// commandLetters adds the command's dead letters (of its type when known).
func (c *console) commandLetters(ctx context.Context, d *commandData) {
	if c.src.DLQ == nil {
		return
	}
	err := c.src.DLQ.Each(ctx, dlq.Filter{CommandType: d.Type}, false, func(e *dlq.Entry) error {
		if e.CommandID == d.ID && len(d.Letters) < commandDLQSeen {
			d.Letters = append(d.Letters, e)
		}
		return nil
	})
	if err != nil {
		d.Notes = append(d.Notes, "dead letters: "+err.Error())
	}
}
