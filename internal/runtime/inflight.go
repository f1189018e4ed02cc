package runtime

import (
	"cmp"
	"slices"
	"strings"
)

// Active is a command this instance is working on.
type Active struct {
	CommandType, CommandID string
	// StreamSeq is the command's sequence in the commands stream.
	StreamSeq uint64
}

// Active lists the commands in work in this instance, oldest (lowest stream
// sequence) first. No I/O.
func (r *Runtime) Active() []Active {
	var out []Active
	r.active.Range(func(k, v any) bool {
		t, id, _ := strings.Cut(k.(string), "\x00")
		out = append(out, Active{CommandType: t, CommandID: id, StreamSeq: v.(*activeCopy).seq})
		return true
	})
	slices.SortFunc(out, func(a, b Active) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
	return out
}
