package config

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// ParseSize reads a byte size: a plain number of bytes or a number with a
// binary unit (KiB, MiB, GiB, TiB; K, M, G, T and KB, MB, GB, TB are read as
// the same binary units). "0" is 0. An error quotes s at most maxEchoed
// bytes (it may come from the environment: see echoed).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a number with KiB, MiB, GiB or TiB", echoed(s))
	}
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20,
		"G": 30, "GB": 30, "GIB": 30, "T": 40, "TB": 40, "TIB": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want KiB, MiB, GiB or TiB)", echoed(s), echoed(unit))
	}
	if n > math.MaxInt64>>sh {
		return 0, fmt.Errorf("size %q: too large", echoed(s))
	}
	return n << sh, nil
}

// sizeFlag is a flag.Value of a byte size.
type sizeFlag struct{ p *int64 }

func (f sizeFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatInt(*f.p, 10)
}

func (f sizeFlag) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*f.p = n
	return nil
}

// SizeValue returns a flag.Value that parses sizes (see ParseSize) into p.
func SizeValue(p *int64) interface {
	String() string
	Set(string) error
} {
	return sizeFlag{p: p}
}

// ApplyMemoryLimit sets the Go runtime's soft memory limit: limit > 0 (from
// --memory-limit / GROUPFLOW_MEMORY_LIMIT) wins; otherwise the limit stays
// what the runtime read from GOMEMLIMIT, if set. It returns the limit in
// force (math.MaxInt64 = none).
func ApplyMemoryLimit(limit int64) int64 {
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		return limit
	}
	return debug.SetMemoryLimit(-1)
}

// MinMemoryLimit is the smallest --memory-limit accepted (0 aside): below
// it the collector would run without end.
const MinMemoryLimit = 32 << 20

// MaxSimMembers and MaxSimGroups bound the simulator's seeds per site
// (--wix-sim-members, --wix-sim-groups; negative: none).
const (
	MaxSimMembers = 1_000_000
	MaxSimGroups  = 100_000
)

// validateSizes checks the byte and count bounds: none of them has a 0 (or
// a negative value) that would silently mean a default or no limit.
func (c *Config) validateSizes() []error {
	var errs []error
	for _, s := range []struct {
		flag string
		v    int64
	}{{"--in-flight-bytes", c.InFlightBytes}, {"--commands-max-bytes", c.CommandsMaxBytes},
		{"--events-max-bytes", c.EventsMaxBytes}, {"--dlq-max-bytes", c.DLQMaxBytes}} {
		if s.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %d: want more than 0 bytes", s.flag, s.v))
		}
	}
	if c.DLQMaxMsgs < 0 {
		errs = append(errs, fmt.Errorf("--dlq-max-msgs %d: want 0 (no limit) or more", c.DLQMaxMsgs))
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < MinMemoryLimit {
		errs = append(errs, fmt.Errorf("--memory-limit %d: want 0 (none) or at least %dMiB", c.MemoryLimit, MinMemoryLimit>>20))
	}
	if c.WixSimMembers > MaxSimMembers {
		errs = append(errs, fmt.Errorf("--wix-sim-members %d: want at most %d", c.WixSimMembers, MaxSimMembers))
	}
	if c.WixSimGroups > MaxSimGroups {
		errs = append(errs, fmt.Errorf("--wix-sim-groups %d: want at most %d", c.WixSimGroups, MaxSimGroups))
	}
	return errs
}
