package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/natsname"
)

// Status of a command in the ledger.
const (
	StatusProcessing   = "processing"
	StatusCompleted    = "completed"
	StatusDeadLettered = "dead_lettered"
)

// Ledger is a typed view of the ledger bucket.
type Ledger struct {
	kv      jetstream.KeyValue
	now     func() time.Time
	timeout time.Duration
	// partSize is the largest value kept in one key (see storeParts).
	partSize int
	// stream is the bucket's stream, whose part subjects dropParts purges
	// (nil: it deletes them).
	stream jetstream.Stream

	partsMu sync.Mutex
	// parted holds the part keys of shared keys' values this ledger loaded
	// or stored, by key (see remember).
	parted map[string]partedValue
}

// partedValue is a shared key's value kept in parts, at revision rev.
type partedValue struct {
	rev  uint64
	keys parts
}

// maxRemembered bounds Ledger.parted.
const maxRemembered = 1024

// CallTimeout bounds one ledger read or write. A reply lost in a broker
// failover must become a (transient, retried) error, not a wait as long as
// the handler's own deadline while the message is kept alive.
const CallTimeout = 10 * time.Second

// New returns a Ledger over kv. Not knowing the broker's max payload, it
// keeps checkpoints over 32 KiB in parts of that size (see storeParts).
func New(kv jetstream.KeyValue) *Ledger {
	return &Ledger{kv: kv, now: time.Now, timeout: CallTimeout, partSize: partSizeFor(0)}
}

// Open binds to the named bucket, with parts of half the max payload the
// server announced to js's connection, purging replaced parts' subjects
// from the bucket's stream when it may read the stream's info.
func Open(ctx context.Context, js jetstream.JetStream, bucket string) (*Ledger, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open ledger bucket %s: %w", bucket, err)
	}
	l := New(kv)
	l.partSize = partSizeFor(js.Conn().MaxPayload())
	if st, err := js.Stream(ctx, "KV_"+bucket); err == nil {
		l.stream = st // for purging replaced parts (none: they are deleted)
	}
	return l, nil
}

// KeyPart makes s safe as one token of a KV key: natsname.Token (tokens
// of [A-Za-z0-9_-], at most 64 long, are kept as they are, so keys stay
// readable in `nats kv ls`; anything else becomes "h" + a SHA-256 prefix).
func KeyPart(s string) string { return natsname.Token(s) }

// Key joins parts into a KV key, escaping each with KeyPart (natsname.Key).
func Key(parts ...string) string { return natsname.Key(parts...) }

// Record is a command's entry in the ledger.
type Record struct {
	CommandType string    `json:"commandType"`
	CommandID   string    `json:"commandId"`
	Status      string    `json:"status"`
	Subject     string    `json:"subject,omitempty"`
	Deliveries  int       `json:"deliveries,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	// EventType, EventID and Event hold the completion event, so a re-sent
	// command is answered with the same event and no Wix call.
	EventType string          `json:"eventType,omitempty"`
	EventID   string          `json:"eventId,omitempty"`
	Event     json.RawMessage `json:"event,omitempty"`
	// Reason says why a dead-lettered command failed.
	Reason string `json:"reason,omitempty"`
	// FirstFailure, LastFailure and LastError describe failed attempts.
	FirstFailure time.Time `json:"firstFailure,omitzero"`
	LastFailure  time.Time `json:"lastFailure,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	// Failures counts failed attempts (each after its in-process retries);
	// deliveries cut short by a shutdown or a crash are not failures.
	Failures int `json:"failures,omitempty"`
	// Owner is the processor instance working on the command, until
	// LeaseUntil; the owner renews the lease while it works. Another instance
	// that receives the command meanwhile leaves it alone.
	//
	// LeaseUntil is on the owner's clock, and so is UpdatedAt: every write
	// that sets LeaseUntil (the lease's own: Acquire, Renew, Checkpoint) is
	// the owner's and stamps UpdatedAt in the same write, so the lease's
	// term, LeaseUntil minus UpdatedAt (Term), is free of clock skew. Another
	// instance judges the lease on the server's clock alone: it runs from
	// the server's time of the record's revision (Stored) for Term (see
	// Ledger.Live). A write of another instance that keeps an expired
	// lease's owner (Ledger.Fail) stamps UpdatedAt no earlier than
	// LeaseUntil: the term it leaves is spent.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// OwnerSeq is the commands-stream sequence of the message the owner
	// works on: another message with the same command id is a second copy.
	OwnerSeq uint64 `json:"ownerSeq,omitempty"`
	// LeaseID names the Acquire that took the current lease (random, one
	// per Acquire; cleared with Owner): that lease's own Fail and Release
	// know the record is still theirs even after one of its writes was
	// stored with its reply lost, and no other lease — of a later delivery
	// of the same message, or another copy — is taken for it.
	LeaseID string `json:"leaseId,omitempty"`
	// LastSeq is the commands-stream sequence of the last message that
	// acquired the command, kept when it gives the lease up: while the
	// command is in progress, a failure of another message (an invalid or
	// forged copy) is not the command's (see heldByAnother).
	LastSeq uint64 `json:"lastSeq,omitempty"`
	// Steps holds the small checkpoints of a command in progress (see
	// Lease.Checkpoint); dropped on completion.
	Steps map[string]json.RawMessage `json:"steps,omitempty"`
	// Calls counts the Wix calls of the command, across attempts, as of
	// the record's last write.
	Calls int64 `json:"wixCalls,omitempty"`
	// Sure says the owner that gave the lease up last (Lease.Fail,
	// Lease.Release) was sure and sent no side effect it left no checkpoint
	// of (see Lease.Unsure): the next Acquire is not Unsure. Every Acquire
	// writes it false, so a crash leaves it false.
	Sure bool `json:"sure,omitempty"`

	// Stored is the server's time of the record's revision (the stream's
	// stamp of the entry, KeyValueEntry.Created), as read by RecordRev; not
	// stored in the record. Zero for a record this instance wrote since.
	Stored time.Time `json:"-"`
	// spent: this write keeps an expired lease's owner (see LeaseUntil).
	spent bool
}

// ErrConflict is returned by a compare-and-set when the record changed
// since it was read: another writer came first.
var ErrConflict = errors.New("ledger: record changed concurrently")

// RecordRev returns the command's record and its revision (nil, 0 when
// there is none).
func (l *Ledger) RecordRev(ctx context.Context, commandType, commandID string) (*Record, uint64, error) {
	key := RecordKey(commandType, commandID)
	e, err := l.getEntry(ctx, key)
	if err != nil || e == nil {
		return nil, 0, err
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("ledger decode %s: %w", key, err)
	}
	r.Stored = e.Created()
	return &r, e.Revision(), nil
}

// Record returns the command's record, or nil when there is none.
func (l *Ledger) Record(ctx context.Context, commandType, commandID string) (*Record, error) {
	r, _, err := l.RecordRev(ctx, commandType, commandID)
	return r, err
}

// RecordKey is the key of a command's record.
func RecordKey(commandType, commandID string) string {
	return Key("cmd", commandType, commandID, "record")
}

// update stores rec if the record is still at revision rev, and returns
// the new revision; ErrConflict when another writer came first.
func (l *Ledger) update(ctx context.Context, rec *Record, rev uint64) (uint64, error) {
	rec.UpdatedAt = l.now().UTC()
	if rec.spent && rec.UpdatedAt.Before(rec.LeaseUntil) {
		rec.UpdatedAt = rec.LeaseUntil // the lease's term is spent (see Record.LeaseUntil)
	}
	rec.spent = false
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("ledger encode: %w", err)
	}
	return l.putRev(ctx, RecordKey(rec.CommandType, rec.CommandID), b, rev, true)
}

// create stores rec only if the command has no record yet, atomically, and
// returns its revision; created is false when a record exists.
func (l *Ledger) create(ctx context.Context, rec *Record) (rev uint64, created bool, err error) {
	rec.UpdatedAt = l.now().UTC()
	if rec.StartedAt.IsZero() {
		rec.StartedAt = rec.UpdatedAt
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, false, fmt.Errorf("ledger encode: %w", err)
	}
	rev, err = l.putRev(ctx, RecordKey(rec.CommandType, rec.CommandID), b, 0, false)
	if errors.Is(err, ErrConflict) {
		return 0, false, nil
	}
	return rev, err == nil, err
}

// Shared keys — state kept across commands, such as a group's pending
// invitations — are read with their revision and written with a
// compare-and-set on it, so two commands updating one key never lose
// either's write: on ErrConflict, read again and merge. A value larger than
// half the broker's max payload is kept in parts (see storeParts).

// Load decodes the value at key into v and returns its revision; 0 when
// the key does not exist.
func (l *Ledger) Load(ctx context.Context, key string, v any) (uint64, error) {
	e, b, keys, err := l.readValue(ctx, key)
	if err != nil || e == nil {
		return 0, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, fmt.Errorf("ledger decode %s: %w", key, err)
	}
	l.remember(key, e.Revision(), keys)
	return e.Revision(), nil
}

// Store writes v at key if the key is still at revision rev (0: if it does
// not exist) and returns the new revision; ErrConflict otherwise. The parts
// of the value it replaces are deleted when this ledger loaded it (at rev).
func (l *Ledger) Store(ctx context.Context, key string, v any, rev uint64) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("ledger encode %s: %w", key, err)
	}
	n, keys, _, err := l.writeValue(ctx, key, b, rev, rev != 0, l.recalled(key, rev))
	if err == nil {
		l.remember(key, n, keys)
	}
	return n, err
}

// remember keeps the part keys of key's value at rev (forgetting the key's
// when it has none), for the write that replaces it; at most maxRemembered
// keys are kept (a forgotten one's parts are left behind, never misread).
func (l *Ledger) remember(key string, rev uint64, keys parts) {
	l.partsMu.Lock()
	defer l.partsMu.Unlock()
	if len(keys) == 0 {
		delete(l.parted, key)
		return
	}
	if l.parted == nil || len(l.parted) >= maxRemembered {
		l.parted = map[string]partedValue{}
	}
	l.parted[key] = partedValue{rev: rev, keys: keys}
}

// recalled returns the part keys of key's value at rev, if remembered.
func (l *Ledger) recalled(key string, rev uint64) parts {
	l.partsMu.Lock()
	defer l.partsMu.Unlock()
	if p, ok := l.parted[key]; ok && p.rev == rev {
		return p.keys
	}
	return nil
}

// Remove deletes key if it is still at revision rev; ErrConflict otherwise.
func (l *Ledger) Remove(ctx context.Context, key string, rev uint64) error {
	old := l.recalled(key, rev)
	if err := l.deleteAt(ctx, key, rev); err != nil {
		return err
	}
	l.remember(key, 0, nil)
	l.dropParts(ctx, old)
	return nil
}

// deleteAt deletes key if it is still at revision rev (nil when it does not
// exist); ErrConflict otherwise.
func (l *Ledger) deleteAt(ctx context.Context, key string, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	err := l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return ErrConflict
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("ledger delete %s: %w", key, err)
	}
	return nil
}
