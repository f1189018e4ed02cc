package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"groupflow/internal/runtime"
	"groupflow/messages"
)

// MaxRequestBytes bounds an ops request body.
const MaxRequestBytes = 4 << 10

// QueueGroup is the queue group of the discovery subjects: one instance
// answers each request.
const QueueGroup = "groupflow-ops"

// RequestTimeout bounds the work of one discovery request.
const RequestTimeout = 60 * time.Second

// MaxDiscoveryInWork bounds the discovery requests one instance works on at
// once; more are answered "busy" at once (each costs Wix calls).
const MaxDiscoveryInWork = 4

// ProgressRequest asks for the progress of command ID ("" = every command
// the instance runs).
type ProgressRequest struct {
	ID string `json:"id,omitempty"`
}

// ProgressReply is one instance's answer.
type ProgressReply struct {
	Instance string                     `json:"instance"`
	Commands []runtime.ProgressSnapshot `json:"commands"`
}

// Server answers the ops subjects of one processor instance.
type Server struct {
	Progress  *runtime.ProgressRegistry
	Discovery *Discovery
	Subjects  messages.Subjects
	Instance  string
	Log       *zap.Logger
}

// Serve subscribes to the ops subjects on nc until the returned stop is
// called. The progress subject is answered by every instance running the
// asked command (instances without it stay silent); the discovery subjects
// by one instance of the queue group.
func (s *Server) Serve(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	var subs []*nats.Subscription
	stop = func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	add := func(sub *nats.Subscription, err error) error {
		if err == nil {
			subs = append(subs, sub)
		}
		return err
	}
	if err := add(nc.Subscribe(s.Subjects.Ops(messages.OpsProgress), s.answerProgress)); err != nil {
		stop()
		return nil, fmt.Errorf("subscribe %s: %w", s.Subjects.Ops(messages.OpsProgress), err)
	}
	if s.Discovery != nil {
		for name, h := range map[string]func(context.Context, []byte) (any, error){
			messages.OpsGroupsList: s.list, messages.OpsGroupsShow: s.show,
		} {
			subj := s.Subjects.Ops(name)
			if err := add(nc.QueueSubscribe(subj, QueueGroup, func(m *nats.Msg) { s.admit(ctx, m, h) })); err != nil {
				stop()
				return nil, fmt.Errorf("subscribe %s: %w", subj, err)
			}
		}
	}
	return stop, nil
}

func (s *Server) answerProgress(m *nats.Msg) {
	var req ProgressRequest
	if len(m.Data) > MaxRequestBytes || (len(m.Data) > 0 && json.Unmarshal(m.Data, &req) != nil) {
		return
	}
	got := s.Progress.Lookup(req.ID)
	if req.ID != "" && len(got) == 0 {
		return // another instance may run it
	}
	s.reply(m, ProgressReply{Instance: s.Instance, Commands: got})
}

// errorReply is the answer of a request that failed.
type errorReply struct {
	Error string `json:"error"`
}

// admit answers m in the background, or "busy" when MaxDiscoveryInWork
// requests are in work already (Discovery.Admit).
func (s *Server) admit(ctx context.Context, m *nats.Msg, h func(context.Context, []byte) (any, error)) {
	release, ok := s.Discovery.Admit()
	if !ok {
		s.reply(m, errorReply{Error: ErrBusy.Error()})
		return
	}
	go func() {
		defer release()
		s.answer(ctx, m, h)
	}()
}

// ErrBusy answers a discovery request beyond MaxDiscoveryInWork.
var ErrBusy = fmt.Errorf("busy: %d discovery requests in work on this instance; retry shortly", MaxDiscoveryInWork)

func (s *Server) answer(ctx context.Context, m *nats.Msg, h func(context.Context, []byte) (any, error)) {
	if len(m.Data) > MaxRequestBytes {
		s.reply(m, errorReply{Error: fmt.Sprintf("request over %d bytes", MaxRequestBytes)})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	v, err := h(ctx, m.Data)
	if err != nil {
		s.Log.Info("ops request failed", zap.String("subject", m.Subject), zap.Error(err))
		v = errorReply{Error: err.Error()}
	}
	s.reply(m, v)
}

func (s *Server) list(ctx context.Context, body []byte) (any, error) {
	var req ListRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return s.Discovery.List(ctx, req)
}

func (s *Server) show(ctx context.Context, body []byte) (any, error) {
	var req ShowRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return s.Discovery.Show(ctx, req)
}

func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("bad request: %w", err)
	}
	return nil
}

func (s *Server) reply(m *nats.Msg, v any) {
	if m.Reply == "" {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		s.Log.Warn("ops reply", zap.String("subject", m.Subject), zap.Error(err))
	}
}

// Client asks the ops subjects (groupctl's side).
type Client struct {
	NC       *nats.Conn
	Subjects messages.Subjects
}

// ErrNoProcessor is returned when no processor answers a discovery request.
var ErrNoProcessor = errors.New("no groupflow processor answered (is one running on this NATS, with this --prefix?)")

// Bounds of what Client.Progress gathers: anyone who may subscribe to the
// progress subject sees a request's reply subject and may answer it, as
// often and as large as it likes, so the client keeps at most
// MaxProgressReplies replies (it stops listening at that many) and skips a
// reply over MaxProgressReplyBytes (an instance's honest answer is a few
// hundred bytes a command it runs): at most 8 MiB in all. When it stopped or
// skipped, ProgressAnswer.Truncated says so.
const (
	MaxProgressReplies    = 32
	MaxProgressReplyBytes = 256 << 10
)

// progressSnapshotCost is what one kept snapshot counts against the 8 MiB
// (MaxProgressReplies × MaxProgressReplyBytes) at the least: a reply's
// size says little of what it holds decoded ("[{},{},...]" is 3 bytes a
// snapshot on the wire, a whole ProgressSnapshot kept, ~140 bytes again as
// JSON: 32 such replies kept two million of them). A reply counts its size
// or this much per snapshot, whichever is more; one that would pass the
// total is left out (and said to be).
const progressSnapshotCost = 256

// ProgressAnswer is what Client.Progress gathered.
type ProgressAnswer struct {
	Commands []runtime.ProgressSnapshot
	// Truncated, when not empty, says why answers were left out (too many
	// replies, or one too large): some instances may be missing.
	Truncated string
}

// Progress returns the snapshots of command id from every instance that
// runs it ("" = every command of every instance), waiting up to wait for the
// answers (none: not running anywhere that answers), within the bounds
// MaxProgressReplies and MaxProgressReplyBytes.
func (c *Client) Progress(ctx context.Context, id string, wait time.Duration) (ProgressAnswer, error) {
	var out ProgressAnswer
	inbox := c.NC.NewRespInbox()
	sub, err := c.NC.SubscribeSync(inbox)
	if err != nil {
		return out, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// What the library buffers before it is read is bounded too: replies
	// beyond are dropped (and counted, see below).
	if err := sub.SetPendingLimits(MaxProgressReplies, MaxProgressReplies*MaxProgressReplyBytes); err != nil {
		return out, err
	}
	body, _ := json.Marshal(ProgressRequest{ID: id})
	if err := c.NC.PublishRequest(c.Subjects.Ops(messages.OpsProgress), inbox, body); err != nil {
		return out, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	replies, skipped, held := 0, 0, 0
	finish := func() (ProgressAnswer, error) {
		dropped, _ := sub.Dropped()
		switch {
		case replies >= MaxProgressReplies:
			out.Truncated = fmt.Sprintf("stopped after %d replies; more instances may have answered", MaxProgressReplies)
		case skipped > 0 || dropped > 0:
			out.Truncated = fmt.Sprintf("%d replies left out (over %d KiB, or more than %d)", skipped+dropped, MaxProgressReplyBytes>>10, MaxProgressReplies)
		}
		return out, nil
	}
	for {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return ProgressAnswer{}, ctx.Err()
			}
			if wctx.Err() != nil {
				return finish() // the answers that came in time
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				continue // counted by Dropped
			}
			return out, err
		}
		replies++
		var r ProgressReply
		if len(m.Data) > MaxProgressReplyBytes {
			skipped++
		} else if json.Unmarshal(m.Data, &r) == nil {
			cost := max(len(m.Data), len(r.Commands)*progressSnapshotCost)
			if held+cost > MaxProgressReplies*MaxProgressReplyBytes {
				skipped++
			} else {
				held += cost
				out.Commands = append(out.Commands, r.Commands...)
			}
		}
		if (id != "" && len(out.Commands) > 0) || replies >= MaxProgressReplies {
			return finish() // one instance runs a command at a time
		}
	}
}

// ListGroups asks one processor for the groups of req.
func (c *Client) ListGroups(ctx context.Context, req ListRequest) (*ListReply, error) {
	var out ListReply
	return &out, c.request(ctx, messages.OpsGroupsList, req, &out)
}

// ShowGroup asks one processor for one group.
func (c *Client) ShowGroup(ctx context.Context, req ShowRequest) (*ShowReply, error) {
	var out ShowReply
	return &out, c.request(ctx, messages.OpsGroupsShow, req, &out)
}

func (c *Client) request(ctx context.Context, name string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout+5*time.Second)
	defer cancel()
	m, err := c.NC.RequestWithContext(ctx, c.Subjects.Ops(name), body)
	if errors.Is(err, nats.ErrNoResponders) {
		return ErrNoProcessor
	}
	if err != nil {
		return fmt.Errorf("ask %s: %w", c.Subjects.Ops(name), err)
	}
	var e errorReply
	if json.Unmarshal(m.Data, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return json.Unmarshal(m.Data, out)
}
