package mailer

import "time"

// SetClock makes now the clock of a mailer built from c (an instance whose
// clock is off the server's).
func SetClock(c *Config, now func() time.Time) { c.now = now }
