package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/ledger"
	"groupflow/messages"
)

// ErrTooLarge is returned (wrapped) when an event cannot be made to fit its
// budget: it has no truncatable list, or its other fields alone are too big.
var ErrTooLarge = errors.New("event too large for one message")

// Fit returns e, or a truncated copy of it (see messages.Truncatable), whose
// JSON encoding takes at most budget bytes. Lists keep their first entries,
// taken one from each list in turn while they fit, so every list keeps a
// share; full names the stored full event. An event that fits as it is comes
// back unchanged. The error wraps ErrTooLarge when even the event without
// any list entry is bigger than budget.
func Fit(e messages.Truncatable, budget int, full messages.OutcomeRef) (messages.Truncatable, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.EventType(), err)
	}
	if len(body) <= budget {
		return e, nil
	}
	lists := e.Lists()
	keep := make([]int, len(lists))
	empty := e.KeepFirst(keep, full)
	base, err := json.Marshal(empty)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.EventType(), err)
	}
	if len(base) > budget {
		return nil, fmt.Errorf("%s event without its lists takes %d bytes, over %d: %w", e.EventType(), len(base), budget, ErrTooLarge)
	}
	// Each list adds `,"field":[` and `]` with its first entry, and a comma
	// before every further one. The first entry that does not fit closes the
	// list: lists are cut, never thinned.
	left := budget - len(base)
	open := make([]bool, len(lists))
	for i, l := range lists {
		open[i] = l.Len > 0
	}
	for more := true; more; {
		more = false
		for i, l := range lists {
			if !open[i] {
				continue
			}
			b, err := json.Marshal(l.Item(keep[i]))
			if err != nil {
				return nil, fmt.Errorf("encode %s.%s[%d]: %w", e.EventType(), l.Field, keep[i], err)
			}
			cost := len(b) + 1
			if keep[i] == 0 {
				cost = len(b) + len(l.Field) + 6
			}
			if cost > left {
				open[i] = false
				continue
			}
			left -= cost
			keep[i]++
			open[i] = keep[i] < l.Len
			more = more || open[i]
		}
	}
	// The count is exact; the check below only guards it, dropping entries
	// from the longest kept list should it ever be off.
	for {
		out := e.KeepFirst(keep, full)
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("encode %s event: %w", e.EventType(), err)
		}
		if len(b) <= budget {
			return out, nil
		}
		longest := 0
		for i := range keep {
			if keep[i] > keep[longest] {
				longest = i
			}
		}
		if keep[longest] == 0 {
			return out, nil // base fits, checked above
		}
		keep[longest]--
	}
}

// OutcomeObject is the object name of the full outcome of a command:
// "<type>.<id>.json", each part escaped by ledger.KeyPart (an id that is not
// [A-Za-z0-9_-]{1,64} becomes "h" + a hash), so every name is short and safe
// whatever the command id.
func OutcomeObject(commandType, commandID string) string {
	return ledger.Key(commandType, commandID) + ".json"
}

// Outcomes stores full outcome events in a JetStream Object Store bucket.
type Outcomes struct {
	store  jetstream.ObjectStore
	bucket string
	// chunk is the object store's chunk size (0: its default).
	chunk uint32
}

// OutcomesCallTimeout bounds one object write or read.
const OutcomesCallTimeout = 30 * time.Second

// NewOutcomes returns an Outcomes over store, the bucket named bucket.
func NewOutcomes(store jetstream.ObjectStore, bucket string) *Outcomes {
	return &Outcomes{store: store, bucket: bucket}
}

// OpenOutcomes binds to the named Object Store bucket (see
// messages.OutcomesBucket; broker.Topology creates it), with chunks that
// fit the max payload the server announced to js's connection (see
// broker.ObjectChunkSize): the bodies stored are those too large for one
// message.
func OpenOutcomes(ctx context.Context, js jetstream.JetStream, bucket string) (*Outcomes, error) {
	store, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open outcomes bucket %s: %w", bucket, err)
	}
	return &Outcomes{store: store, bucket: bucket, chunk: broker.ObjectChunkSize(js.Conn().MaxPayload())}, nil
}

// Bucket is the bucket's name.
func (o *Outcomes) Bucket() string { return o.bucket }

// Ref returns where the full outcome of a command is stored.
func (o *Outcomes) Ref(commandType, commandID string) messages.OutcomeRef {
	return messages.OutcomeRef{Bucket: o.bucket, Object: OutcomeObject(commandType, commandID)}
}

// Put stores body as the object ref names (replacing an earlier version:
// a redelivered command writes the same outcome again).
func (o *Outcomes) Put(ctx context.Context, ref messages.OutcomeRef, eventType string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, OutcomesCallTimeout)
	defer cancel()
	meta := jetstream.ObjectMeta{
		Name:        ref.Object,
		Description: "full " + eventType + " event",
		Headers:     map[string][]string{"Content-Type": {"application/json"}},
	}
	if o.chunk > 0 {
		meta.Opts = &jetstream.ObjectMetaOptions{ChunkSize: o.chunk}
	}
	if _, err := o.store.Put(ctx, meta, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("store full %s event in %s/%s: %w", eventType, o.bucket, ref.Object, err)
	}
	return nil
}

// Get returns the stored body named by ref.
func (o *Outcomes) Get(ctx context.Context, ref messages.OutcomeRef) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, OutcomesCallTimeout)
	defer cancel()
	b, err := o.store.GetBytes(ctx, ref.Object)
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", o.bucket, ref.Object, err)
	}
	return b, nil
}
