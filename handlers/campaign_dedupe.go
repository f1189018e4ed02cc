package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/events"
	"groupflow/messages"
)

// eventsStream returns the events stream.
func (h *SendCampaign) eventsStream(ctx context.Context) (jetstream.Stream, error) {
	name := h.pub.Subjects().EventStream()
	ctx, cancel := h.call(ctx)
	defer cancel()
	s, err := h.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("events stream %s: %w", name, err)
	}
	return s, nil
}

// call bounds one JetStream API call: a request sent while the stream's
// leader fails over may get no answer at all, and the handler's own context
// lasts an hour (--handler-timeout); timed out, the call is a transient
// error, retried.
func (h *SendCampaign) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.callTimeout)
}

// streamInfo returns the events stream's info.
func (h *SendCampaign) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := h.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.call(ctx)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events stream info: %w", err)
	}
	return info, nil
}

// eventsLastSeq returns the events stream's last sequence.
func (h *SendCampaign) eventsLastSeq(ctx context.Context) (uint64, error) {
	info, err := h.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// window returns the duplicate window used to decide whether a pending
// batch may be republished as is: the configured override, else the events
// stream's Duplicates setting.
func (h *SendCampaign) window(ctx context.Context) (time.Duration, error) {
	if h.dedupeWindow > 0 {
		return h.dedupeWindow, nil
	}
	info, err := h.streamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.Config.Duplicates, nil
}

// scanPublished reads the member_selected events stored after seq and
// returns the ids, among members, of those already published for the
// campaign. It reads with an ephemeral, ack-less consumer filtered on the
// member_selected subject, up to the messages pending when it starts.
func (h *SendCampaign) scanPublished(ctx context.Context, seq uint64, campaignID string, members []campaignRecipient) (map[string]bool, error) {
	want := make(map[string]string, len(members)) // event id -> member id
	for _, m := range members {
		want[messages.EventID(messages.EvtMemberSelected, "", campaignID, m.ID)] = m.ID
	}
	s, err := h.eventsStream(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := h.call(ctx)
	defer cancel()
	cons, err := s.CreateConsumer(cctx, jetstream.ConsumerConfig{
		FilterSubject:     h.pub.Subjects().Event(messages.EvtMemberSelected),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	info, err := cons.Info(cctx)
	if err != nil {
		return nil, fmt.Errorf("scan events: %w", err)
	}
	found := map[string]bool{}
	remaining := info.NumPending
	for remaining > 0 {
		batch, err := cons.Fetch(int(min(remaining, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("scan events: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			id := m.Headers().Get(events.HeaderID)
			if id == "" {
				id = m.Headers().Get(messages.HeaderNatsMsgID)
			}
			if mid, ok := want[id]; ok {
				found[mid] = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("scan events: %w", err)
		}
		if got == 0 {
			return nil, errors.New("scan events: stream returned no messages before the end")
		}
		remaining -= uint64(got)
	}
	return found, nil
}
