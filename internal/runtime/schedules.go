package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"groupflow/internal/schedule"
)

// isSchedule reports whether a command message is itself a JetStream
// message schedule (it carries Nats-Schedule). Schedules belong on
// Subjects.Schedules(), which only the ops role may publish on; NATS
// permissions are per subject, so a producer could still store a schedule
// on a command subject by adding the header.
func isSchedule(msg *message.Message) bool { return msg.Metadata.Get(schedule.HeaderSchedule) != "" }

// deleteSchedule removes such a schedule from the commands stream, which
// stops it (the server drops a schedule whose message is gone). The
// message's own consumer still handles it once as the command it also is,
// as it would any command the producer publishes; fires made before the
// delete are ordinary commands too. A failed delete is retried
// (redelivery).
func (r *Runtime) deleteSchedule(msg *message.Message) error {
	seq, err := strconv.ParseUint(msg.Metadata.Get(MetaStreamSeq), 10, 64)
	if err != nil {
		return fmt.Errorf("schedule on a command subject without a stream sequence: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), 10*time.Second)
	defer cancel()
	st, err := r.deps.JS.Stream(ctx, r.cfg.Subjects.CommandStream())
	if err == nil {
		err = st.DeleteMsg(ctx, seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete the schedule on a command subject: %w", err)
	}
	r.log.Warn("deleted a message schedule published on a command subject; schedules go on "+r.cfg.Subjects.Schedules()+" (groupctl schedule, ops only)",
		zap.String("subject", msg.Metadata.Get(MetaSubject)), zap.Uint64("stream_seq", seq))
	return nil
}
