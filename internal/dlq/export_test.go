package dlq

// SetMaxHeld sets how many exhausted commands may wait for room in the full
// DLQ; restore puts the default back.
func SetMaxHeld(n int) (restore func()) {
	old := maxHeld
	maxHeld = n
	return func() { maxHeld = old }
}

// SetMaxListBytes sets the text budget of one GET /dlq answer; restore puts
// the default back.
func SetMaxListBytes(n int) (restore func()) {
	old := maxListBytes
	maxListBytes = n
	return func() { maxListBytes = old }
}
