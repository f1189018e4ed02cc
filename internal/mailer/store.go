package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/kvclock"
	"groupflow/internal/natsname"
)

// DefaultBucket is the JetStream KV bucket of send records.
const DefaultBucket = "GROUPMAIL_SENT"

// DefaultRecordTTL is how long send records are kept by default.
const DefaultRecordTTL = 30 * 24 * time.Hour

// Record states.
const (
	// StatusSending: an instance claimed the event and may be sending it.
	StatusSending = "sending"
	// StatusSent: the SMTP server accepted the message. Final.
	StatusSent = "sent"
	// StatusFailed: the last attempt failed and nothing was sent; the next
	// delivery (or a dead-letter replay) may claim the event again.
	StatusFailed = "failed"
)

// Record is the value stored per event id.
type Record struct {
	Status     string    `json:"status"`
	EventID    string    `json:"eventId"`
	CampaignID string    `json:"campaignId,omitempty"`
	MemberID   string    `json:"memberId,omitempty"`
	MessageID  string    `json:"messageId,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Claims     int       `json:"claims"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

// Store is the per-event send registry on JetStream KV. Writes are
// compare-and-set on the entry's revision, so two instances cannot both
// hold a claim.
type Store struct {
	kv jetstream.KeyValue
}

// StoreConfig configures the bucket.
type StoreConfig struct {
	Bucket   string        // default DefaultBucket
	Replicas int           // default 1
	TTL      time.Duration // how long records are kept (default 30 days; must outlive the events stream's MaxAge)
}

// OpenStore creates (or updates) the bucket and returns the store.
func OpenStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultRecordTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "groupmail: one record per member_selected event id (sending/sent/failed)",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Key is the KV key of an event id: event ids may hold characters KV keys
// do not allow and have no length bound of their own, so the key is
// natsname.Digest of the id (its SHA-256 in hex, 64 characters).
func Key(eventID string) string { return natsname.Digest(eventID) }

// Entry is a record with its revision and the server's time of that
// revision. A claim's age is measured on the server's clock alone (Stored
// against ServerNow), so instance clocks need agree neither with each other
// nor with the server.
type Entry struct {
	Record
	Revision uint64
	Stored   time.Time
}

// Get returns the record of eventID, or nil when there is none.
func (s *Store) Get(ctx context.Context, eventID string) (*Entry, error) {
	e, err := s.kv.Get(ctx, Key(eventID))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv get %s: %w", eventID, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("kv record %s: %w", eventID, err)
	}
	return &Entry{Record: r, Revision: e.Revision(), Stored: e.Created()}, nil
}

// ErrConflict means the record changed since it was read: another instance
// got there first.
var ErrConflict = errors.New("send record changed concurrently")

// Write stores r for eventID if the record is still at revision rev (0 =
// must not exist) and returns the new revision.
func (s *Store) Write(ctx context.Context, eventID string, r Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = s.kv.Create(ctx, Key(eventID), b)
	} else {
		n, err = s.kv.Update(ctx, Key(eventID), b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%w: %s", ErrConflict, eventID)
	}
	if err != nil {
		return 0, fmt.Errorf("kv write %s: %w", eventID, err)
	}
	return n, nil
}

// Put stores r unconditionally.
func (s *Store) Put(ctx context.Context, eventID string, r Record) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	n, err := s.kv.Put(ctx, Key(eventID), b)
	if err != nil {
		return 0, fmt.Errorf("kv put %s: %w", eventID, err)
	}
	return n, nil
}

// ClockKey is the key ServerNow writes: one key for all instances,
// overwritten by every probe (History 1), so it never grows the bucket. It
// cannot be the key of an event, which is 64 hex digits (Key).
const ClockKey = "clock"

// ServerNow is the server's current time as the bucket's stream stamps
// entries (kvclock.ServerNow on ClockKey): a claim's age, ServerNow minus
// its Stored time, is never more than it is on the server's clock. A failed
// probe is an error: the caller retries later.
func (s *Store) ServerNow(ctx context.Context, instance string) (time.Time, error) {
	return kvclock.ServerNow(ctx, s.kv, ClockKey, instance)
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.kv.Bucket() }
