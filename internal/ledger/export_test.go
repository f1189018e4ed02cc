package ledger

import "time"

// SetClock makes l read the time from now (tests).
func (l *Ledger) SetClock(now func() time.Time) { l.now = now }
