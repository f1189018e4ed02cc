// Package schedule keeps groupflow's recurring and delayed commands as
// JetStream message schedules (nats-server 2.14+): no scheduler of our own.
//
// A schedule is one message on Subjects.Schedule("<kind>.<name>") in the
// schedules stream (Subjects.ScheduleStream, not the commands stream:
// nats-server refuses schedules on a discard-new stream), with the headers
// of nats-server 2.15 (server/stream.go):
//
//	Nats-Schedule            "@at <RFC 3339>", "@every <duration>" or a 6-field cron
//	Nats-Schedule-Time-Zone  IANA zone of a cron (never with @at/@every)
//	Nats-Schedule-Target     Subjects.Fired(<command type>, "<kind>.<name>"), in the same
//	                         stream (the server requires it); the processor's relay
//	                         republishes each fired message to Subjects.Command(<type>)
//	Nats-TTL: never          so the stream's MaxAge does not expire it
//	Groupflow-Schedule-Nonce random, per creation: part of every fired id
//
// nats.go v1.55 has WithScheduleCron/Every/At/Target but no time-zone
// option, and its WithMsgTTL takes durations only, so the headers are set
// here. The server republishes the body to the target at each fire,
// without Nats-Msg-Id and the Nats-Schedule* headers, adding Nats-Scheduler
// (the schedule's subject) and Nats-Schedule-Next (the next fire, or
// "purge" after an @at). messages.FiredCommandID derives the command's id from these and
// the nonce, so each fire is a new command (a body "id" would make every
// fire after the first a duplicate: Create refuses one) while a fire the
// server repeats (e.g. after a leader change) keeps its id.
//
// Republishing a schedule's subject replaces it (the server makes every
// schedule a per-subject roll-up); Remove replaces it with a roll-up
// tombstone that expires after a minute.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/messages"
)

// Header names (nats-server 2.15 server/stream.go) and ours.
const (
	HeaderSchedule   = "Nats-Schedule"
	HeaderTimeZone   = "Nats-Schedule-Time-Zone"
	HeaderTarget     = "Nats-Schedule-Target"
	HeaderTTL        = "Nats-TTL"
	HeaderScheduler  = messages.HeaderScheduler    // set by the server on each fire
	HeaderNext       = messages.HeaderScheduleNext // set by the server on each fire
	HeaderNonce      = messages.HeaderScheduleNonce
	HeaderCreatedBy  = "Groupflow-Schedule-Created-By"
	maxNameLen       = messages.ScheduleNameMax
	minEvery         = time.Second
	maxScheduleBytes = 64 << 10
)

// Kinds of schedules and the command each publishes.
var kinds = map[string]string{
	"report":   messages.CmdGenerateReport,
	"campaign": messages.CmdSendCampaign,
}

var nameRE = messages.ScheduleNameRE

// Spec describes a schedule. Exactly one of At, Every, Cron is set.
type Spec struct {
	Kind string // "report" or "campaign"
	Name string // [a-z0-9][a-z0-9_-]*, at most 64
	// At fires once (UTC; @at takes no time zone).
	At time.Time
	// Every fires every interval (at least 1s).
	Every time.Duration
	// Cron is a 6-field cron ("0 0 8 * * MON"), in TimeZone (IANA, "" = UTC).
	Cron     string
	TimeZone string
	// Body is the command's JSON body; it must carry no "id".
	Body []byte
	// CreatedBy is recorded in a header (e.g. the ops user).
	CreatedBy string
}

// Schedule is a stored schedule.
type Schedule struct {
	Kind, Name, Pattern, TimeZone, Target string
	Body                                  json.RawMessage
	Seq                                   uint64
	Created                               time.Time
}

// Pattern is the Nats-Schedule value of s.
func (s Spec) Pattern() (string, error) {
	n := 0
	for _, set := range []bool{!s.At.IsZero(), s.Every > 0, s.Cron != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return "", errors.New("schedule: exactly one of --at, --every, --cron")
	}
	switch {
	case !s.At.IsZero():
		if s.TimeZone != "" {
			return "", errors.New("schedule: @at takes no time zone (give the time in UTC or with an offset)")
		}
		return "@at " + s.At.UTC().Format(time.RFC3339), nil
	case s.Every > 0:
		if s.Every < minEvery {
			return "", fmt.Errorf("schedule: --every must be at least %s", minEvery)
		}
		if s.TimeZone != "" {
			return "", errors.New("schedule: @every takes no time zone")
		}
		return "@every " + s.Every.String(), nil
	}
	if len(strings.Fields(s.Cron)) != 6 {
		return "", fmt.Errorf("schedule: cron %q: want 6 fields (seconds minutes hours day-of-month month day-of-week)", s.Cron)
	}
	if p := messages.TimeZoneProblem(s.TimeZone); p != "" {
		return "", fmt.Errorf("schedule: time zone %q %s", s.TimeZone, p)
	}
	return strings.Join(strings.Fields(s.Cron), " "), nil
}

// Check validates s: kind, name, pattern, and a body that decodes and
// validates as the kind's command and carries no id.
func (s Spec) Check() (commandType, pattern string, err error) {
	commandType, ok := kinds[s.Kind]
	if !ok {
		return "", "", fmt.Errorf("schedule: unknown kind %q (want report or campaign)", s.Kind)
	}
	if len(s.Name) > maxNameLen || !nameRE.MatchString(s.Name) {
		return "", "", fmt.Errorf("schedule: name %q: want [a-z0-9][a-z0-9_-]*, at most %d", s.Name, maxNameLen)
	}
	if pattern, err = s.Pattern(); err != nil {
		return "", "", err
	}
	if len(s.Body) > maxScheduleBytes {
		return "", "", fmt.Errorf("schedule: body is %d bytes, at most %d", len(s.Body), maxScheduleBytes)
	}
	var probe struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(s.Body, &probe); err != nil {
		return "", "", fmt.Errorf("schedule: body: %w", err)
	}
	if probe.ID != nil {
		return "", "", errors.New(`schedule: the body must carry no "id": each fire gets its own (FiredID)`)
	}
	if _, err := messages.Decode(commandType, s.Body); err != nil {
		return "", "", fmt.Errorf("schedule: %w", err)
	}
	return commandType, pattern, nil
}

// Create stores (or replaces) the schedule. The server checks the pattern
// again and refuses a target outside the stream.
func Create(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, s Spec) (*Schedule, error) {
	ct, pattern, err := s.Check()
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subj.Schedule(s.Kind + "." + s.Name))
	msg.Data = s.Body
	msg.Header.Set(HeaderSchedule, pattern)
	msg.Header.Set(HeaderTarget, subj.Fired(ct, s.Kind+"."+s.Name))
	if s.TimeZone != "" {
		msg.Header.Set(HeaderTimeZone, s.TimeZone)
	}
	msg.Header.Set(HeaderTTL, "never")
	msg.Header.Set(HeaderNonce, nonce())
	if s.CreatedBy != "" {
		msg.Header.Set(HeaderCreatedBy, s.CreatedBy)
	}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(subj.ScheduleStream()))
	if err != nil {
		return nil, fmt.Errorf("create schedule %s.%s: %w", s.Kind, s.Name, err)
	}
	return &Schedule{Kind: s.Kind, Name: s.Name, Pattern: pattern, TimeZone: s.TimeZone, Target: subj.Fired(ct, s.Kind+"."+s.Name), Body: s.Body, Seq: ack.Sequence}, nil
}

// List returns the stored schedules (one direct read per schedule subject).
func List(ctx context.Context, js jetstream.JetStream, subj messages.Subjects) ([]Schedule, error) {
	st, err := js.Stream(ctx, subj.ScheduleStream())
	if err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj.Schedules()))
	if err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	var out []Schedule
	for name := range info.State.Subjects {
		m, err := st.GetLastMsgForSubject(ctx, name)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", name, err)
		}
		if m.Header.Get(HeaderSchedule) == "" {
			continue
		}
		kind, rest, _ := strings.Cut(strings.TrimPrefix(name, strings.TrimSuffix(subj.Schedules(), ">")), ".")
		out = append(out, Schedule{Kind: kind, Name: rest, Pattern: m.Header.Get(HeaderSchedule), TimeZone: m.Header.Get(HeaderTimeZone),
			Target: m.Header.Get(HeaderTarget), Body: m.Data, Seq: m.Sequence, Created: m.Time})
	}
	return out, nil
}

// Remove deletes the schedule kind.name (purges its subject); it reports
// whether there was one.
func Remove(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, kind, name string) (bool, error) {
	if len(name) > maxNameLen || !nameRE.MatchString(name) || kinds[kind] == "" {
		return false, fmt.Errorf("schedule: no schedule %s.%s", kind, name)
	}
	st, err := js.Stream(ctx, subj.ScheduleStream())
	if err != nil {
		return false, fmt.Errorf("remove schedule: %w", err)
	}
	s := subj.Schedule(kind + "." + name)
	if m, err := st.GetLastMsgForSubject(ctx, s); errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && m.Header.Get(HeaderSchedule) == "") {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("remove schedule: %w", err)
	}
	// A roll-up on the subject replaces the schedule (no purge grant
	// needed: publishing on Schedules() is the ops role's); the tombstone
	// itself expires after a minute.
	msg := nats.NewMsg(s)
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Header.Set(HeaderTTL, "60s")
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(subj.ScheduleStream())); err != nil {
		return false, fmt.Errorf("remove schedule: %w", err)
	}
	return true, nil
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
