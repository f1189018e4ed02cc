package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// A spilled checkpoint larger than one KV value may be (partSize) is kept
// in parts: each part under a key of its own named by the SHA-256 of its
// bytes (the step key + ".p" + hash), and the step key holds partsPrefix
// and the parts' hashes, written by compare-and-set like any spilled
// checkpoint. A part is written blindly: its key names its content, so
// whoever writes it (a stale owner too) writes the same bytes, and only the
// step key's compare-and-set decides which checkpoint is current. A sync
// removing 30,000 members (a 1.2 MB plan) would otherwise fail every
// attempt with "maximum payload exceeded" and be dead-lettered.
//
// Cost: a checkpoint of n bytes takes ⌈n/partSize⌉ part writes besides the
// step key's, and as many reads to load. Parts outlive their checkpoint,
// as spilled step keys do.

// partsPrefix starts the step key's value of a checkpoint kept in parts: a
// JSON text never starts with '#'.
const partsPrefix = "#parts "

// Part sizes: half the broker's max payload (so a part and its message's
// overhead fit), within these bounds; defaultPartSize when the max payload
// is unknown.
const (
	minPartSize     = 16 << 10
	maxPartSize     = 1 << 20
	defaultPartSize = 32 << 10
	// maxParts bounds the parts a step key may name (a corrupt or forged
	// value naming millions is refused, not read).
	maxParts = 4096
)

// partSizeFor is the part size for a broker max payload of maxPayload bytes
// (0 or less: unknown).
func partSizeFor(maxPayload int64) int {
	if maxPayload <= 0 {
		return defaultPartSize
	}
	return int(min(max(maxPayload/2, minPartSize), maxPartSize))
}

// storeParts writes b's parts under key and returns the value key holds for
// them.
func (l *Ledger) storeParts(ctx context.Context, key string, b []byte) ([]byte, error) {
	size := l.partSize
	if (len(b)+size-1)/size > maxParts {
		return nil, fmt.Errorf("ledger write %s: checkpoint of %d bytes exceeds %d parts of %d bytes", key, len(b), maxParts, size)
	}
	var ptr strings.Builder
	ptr.WriteString(partsPrefix)
	for off := 0; off < len(b); off += size {
		part := b[off:min(off+size, len(b))]
		h := partHash(part)
		if err := l.put(ctx, key+".p"+h, part); err != nil {
			return nil, err
		}
		if off > 0 {
			ptr.WriteByte(' ')
		}
		ptr.WriteString(h)
	}
	return []byte(ptr.String()), nil
}

// loadParts returns the checkpoint a step key's value v stands for: v
// itself, or the parts it names, read and checked against their hashes.
func (l *Ledger) loadParts(ctx context.Context, key string, v []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(v, []byte(partsPrefix))
	if !ok {
		return v, nil
	}
	hashes := strings.Fields(string(rest))
	if len(hashes) == 0 || len(hashes) > maxParts {
		return nil, fmt.Errorf("ledger get %s: names %d parts (1 to %d)", key, len(hashes), maxParts)
	}
	var out []byte
	for i, h := range hashes {
		e, err := l.getEntry(ctx, key+".p"+h)
		if err != nil {
			return nil, err
		}
		if e == nil || partHash(e.Value()) != h {
			return nil, fmt.Errorf("ledger get %s: part %d of %d (%s) missing or altered", key, i+1, len(hashes), h)
		}
		out = append(out, e.Value()...)
	}
	return out, nil
}

func partHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
