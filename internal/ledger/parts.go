package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/failure"
)

// A value larger than one KV value may be (partSize) — a spilled
// checkpoint or a shared key — is kept in parts: the key itself holds a
// pointer, "#parts2 <nonce> <h1> <h2> …", written by compare-and-set like
// any value, and part i lives under key + ".p" + hᵢ, hᵢ being the first 16
// bytes (hex) of SHA-256(nonce ‖ part i). The nonce is new for every write,
// so no two writes share a part key: once a pointer is replaced (or its
// compare-and-set refused), its parts are garbage and are deleted, without
// any risk of deleting a part a later value names. A part is written
// blindly before the pointer; only the pointer's compare-and-set decides
// which value is current. A reader that finds a part gone (the value was
// replaced, and its parts deleted, while it read) reads the key again.
//
// Pointers written before the nonce ("#parts <h1> …", hᵢ = SHA-256(part i))
// are still read; their parts are content-addressed, so a part may be named
// by another value of the key, and they are never deleted.
//
// Cost: a value of n bytes takes ⌈n/partSize⌉ part writes besides the
// pointer's, and as many reads to load; replacing it takes as many deletes
// (not awaited by the reader, never failing the write). A sync removing
// 30,000 members (a 1.2 MB plan) and a group with 30,000 pending
// invitations would otherwise fail every attempt with "maximum payload
// exceeded".

// Pointer prefixes: a JSON text never starts with '#'.
const (
	partsPrefix   = "#parts2 "
	partsPrefixV1 = "#parts "
)

// Part sizes: half the broker's max payload (so a part and its message's
// overhead fit), within these bounds; defaultPartSize when the max payload
// is unknown.
const (
	minPartSize     = 16 << 10
	maxPartSize     = 1 << 20
	defaultPartSize = 32 << 10
	// maxParts bounds the parts a pointer may name (a corrupt or forged
	// value naming millions is refused, not read).
	maxParts = 4096
	// maxValueSize bounds a value in parts, as written and as read: a
	// pointer may name one part many times (two equal parts of a value
	// share a key), so a forged one of ~135 KB naming a single 1 MiB part
	// 4,096 times would otherwise make every reader assemble 4 GiB. No
	// checkpoint or shared key comes near it (a 20,000-group report's
	// data, 500,000 invitations: some MB).
	maxValueSize = 64 << 20
	// partReads bounds how often a reader reads a key again after finding
	// a part of its value gone.
	partReads = 4
)

// errPartGone: a part a pointer names is missing (deleted with a value
// that replaced it while it was read, or lost).
var errPartGone = errors.New("missing or altered")

// parts is what a key's value says of its parts: the part keys to delete
// once the value is replaced (none for a plain value or a V1 pointer).
type parts []string

// partSizeFor is the part size for a broker max payload of maxPayload bytes
// (0 or less: unknown).
func partSizeFor(maxPayload int64) int {
	if maxPayload <= 0 {
		return defaultPartSize
	}
	return int(min(max(maxPayload/2, minPartSize), maxPartSize))
}

// storeParts writes b's parts under key and returns the pointer key is to
// hold and the part keys it names. b up to partSize is returned as it is.
func (l *Ledger) storeParts(ctx context.Context, key string, b []byte) ([]byte, parts, error) {
	size := l.partSize
	if len(b) <= size {
		return b, nil, nil
	}
	if (len(b)+size-1)/size > maxParts || len(b) > maxValueSize {
		return nil, nil, failure.Permanent(fmt.Errorf("ledger write %s: value of %d bytes exceeds %d parts of %d bytes or %d bytes", key, len(b), maxParts, size, maxValueSize))
	}
	var n [12]byte
	_, _ = rand.Read(n[:]) // never fails (crypto/rand)
	nonce := hex.EncodeToString(n[:])
	var ptr strings.Builder
	ptr.WriteString(partsPrefix + nonce)
	var keys parts
	for off := 0; off < len(b); off += size {
		part := b[off:min(off+size, len(b))]
		h := partHash(nonce, part)
		keys = append(keys, key+".p"+h)
		if err := l.put(ctx, keys[len(keys)-1], part); err != nil {
			l.dropParts(ctx, keys[:len(keys)-1])
			return nil, nil, err
		}
		ptr.WriteString(" " + h)
	}
	return []byte(ptr.String()), keys, nil
}

// loadParts returns the value a key's stored value v stands for — v itself,
// or the parts it names, read and checked against their hashes — and the
// part keys to delete once it is replaced. A part missing or altered is
// errPartGone.
func (l *Ledger) loadParts(ctx context.Context, key string, v []byte) ([]byte, parts, error) {
	nonce, hashes, ok := pointer(v)
	if !ok {
		return v, nil, nil
	}
	if hashes == nil {
		return nil, nil, fmt.Errorf("ledger get %s: a malformed parts pointer (%d bytes): 1 to %d parts, each named by %d hex digits", key, len(v), maxParts, hashLen)
	}
	var out []byte
	read := make(map[string][]byte, len(hashes)) // a part named twice is read once
	for i, h := range hashes {
		b, seen := read[h]
		if !seen {
			e, err := l.getEntry(ctx, key+".p"+h)
			if err != nil {
				return nil, nil, err
			}
			if e == nil || partHash(nonce, e.Value()) != h {
				return nil, nil, fmt.Errorf("ledger get %s: part %d of %d (%s) %w", key, i+1, len(hashes), h, errPartGone)
			}
			b = e.Value()
			read[h] = b
		}
		if len(out)+len(b) > maxValueSize {
			return nil, nil, fmt.Errorf("ledger get %s: parts of over %d bytes (a corrupt or forged pointer)", key, maxValueSize)
		}
		out = append(out, b...)
	}
	return out, keysOf(key, nonce, hashes), nil
}

// hashLen and nonceLen are the lengths of a part's hash and of a write's
// nonce in a pointer (hex digits).
const (
	hashLen  = 32
	nonceLen = 24
)

// pointer parses v as a parts pointer: its nonce ("" for a V1 pointer) and
// hashes; ok false when v is a plain value. A malformed pointer (no part,
// more than maxParts, a nonce or hash that is not lowercase hex of its
// length: a corrupt or forged value) has nil hashes: its fields are never
// made into keys (one of 8,000 bytes, over the server's max control line,
// would close the connection for good).
func pointer(v []byte) (nonce string, hashes []string, ok bool) {
	rest, v2 := bytes.CutPrefix(v, []byte(partsPrefix))
	if !v2 {
		if rest, ok = bytes.CutPrefix(v, []byte(partsPrefixV1)); !ok {
			return "", nil, false
		}
	}
	if bytes.Count(rest, []byte(" ")) > maxParts+1 {
		return "", nil, true
	}
	f := strings.Fields(string(rest))
	if v2 {
		if len(f) == 0 || !isHex(f[0], nonceLen) {
			return "", nil, true
		}
		nonce, f = f[0], f[1:]
	}
	if len(f) == 0 || len(f) > maxParts {
		return "", nil, true
	}
	for _, h := range f {
		if !isHex(h, hashLen) {
			return "", nil, true
		}
	}
	return nonce, f, true
}

// isHex is whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// partKeys returns the part keys a stored value v names that are deleted
// once it is replaced (none for a plain value, a V1 or a malformed
// pointer), without reading them.
func partKeys(key string, v []byte) parts {
	nonce, hashes, ok := pointer(v)
	if !ok {
		return nil
	}
	return keysOf(key, nonce, hashes)
}

// keysOf returns the part keys of a pointer's nonce and hashes that are
// deleted once it is replaced: none for a V1 pointer (nonce "").
func keysOf(key, nonce string, hashes []string) parts {
	if nonce == "" {
		return nil
	}
	keys := make(parts, len(hashes))
	for i, h := range hashes {
		keys[i] = key + ".p" + h
	}
	return keys
}

// readValue reads key and the value it stands for (see loadParts), reading
// it again (up to partReads times) when a part is gone because the value
// was replaced meanwhile; nil entry when the key does not exist.
func (l *Ledger) readValue(ctx context.Context, key string) (jetstream.KeyValueEntry, []byte, parts, error) {
	var err error
	for range partReads {
		var e jetstream.KeyValueEntry
		if e, err = l.getEntry(ctx, key); err != nil || e == nil {
			return nil, nil, nil, err
		}
		var val []byte
		var keys parts
		if val, keys, err = l.loadParts(ctx, key, e.Value()); !errors.Is(err, errPartGone) {
			return e, val, keys, err
		}
	}
	return nil, nil, nil, err
}

// writeValue stores b at key by compare-and-set (at rev if exists, else a
// create), in parts when it is larger than partSize, and returns the new
// revision, its part keys and the value key was to hold (b, or its
// pointer), also on an error after which it may be stored (a lost reply).
// Once the write is stored, the part keys of the value it replaced (old)
// are deleted; when it is refused (ErrConflict), its own.
func (l *Ledger) writeValue(ctx context.Context, key string, b []byte, rev uint64, exists bool, old parts) (uint64, parts, []byte, error) {
	val, keys, err := l.storeParts(ctx, key, b)
	if err != nil {
		return 0, nil, nil, err
	}
	n, err := l.putRev(ctx, key, val, rev, exists)
	switch {
	case err == nil:
		l.dropParts(ctx, old)
	case errors.Is(err, ErrConflict):
		l.dropParts(ctx, keys)
	}
	return n, keys, val, err
}

// dropParts deletes part keys no value names any more. It is best effort:
// a part left behind is storage, never a wrong value (no pointer names it).
// Each key's subject is purged from the bucket's stream when the ledger
// knows it (Open), leaving nothing; a KV delete would leave a marker per
// part key, and part keys are never reused, so markers would pile up with
// every replaced value.
func (l *Ledger) dropParts(ctx context.Context, keys parts) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		ctx, cancel := context.WithTimeout(ctx, l.timeout)
		if l.stream == nil || l.stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+l.kv.Bucket()+"."+k)) != nil {
			_ = l.kv.Delete(ctx, k)
		}
		cancel()
	}
}

// drop deletes key if it is still at revision rev, and then its parts;
// best effort, like dropParts.
func (l *Ledger) drop(ctx context.Context, key string, rev uint64, keys parts) {
	if rev == 0 {
		return // kept in memory only (a detached lease)
	}
	if l.deleteAt(ctx, key, rev) == nil {
		l.dropParts(ctx, keys)
	}
}

func partHash(nonce string, b []byte) string {
	h := sha256.New()
	h.Write([]byte(nonce))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
