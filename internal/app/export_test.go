package app

// CloseConsumerConn closes the processor's consumer connection as the
// server does when it refuses a protocol line (tests of Run and /healthz).
func CloseConsumerConn(a *App) { a.conns[0].Close() }

// ClosePublisherConn closes the processor's publisher connection (tests of /readyz).
func ClosePublisherConn(a *App) { a.conns[1].Close() }
