package app

// CloseConsumerConn closes the processor's consumer connection as the
// server does when it refuses a protocol line (tests of Run and /healthz).
func CloseConsumerConn(a *App) { a.conns[0].Close() }
