package runtime

// handlerStackReserve is how much stack growStack reserves: with the
// frames above it, a 16 KiB stack, which a provision_group's handler
// goroutine (middleware, lifecycle, Wix client, encoding/json) fits in.
const handlerStackReserve = 8 << 10

// growStack grows the calling goroutine's stack in one step while the
// goroutine is shallow. Watermill runs each message on a goroutine of its
// own, which starts with a small stack; left alone, that stack grew (was
// copied) deep inside the handler, each copy adjusting every frame of the
// middleware chain: runtime.copystack took 5.5% of the CPU in make bench
// scenario 2 (Wix in memory), about 33 µs a command, and 0.5% with this
// call first (CockroachDB's growstack package does the same). A command
// that needs more stack still grows it as usual.
//
//go:noinline
func growStack() {
	var buf [handlerStackReserve]byte
	keepStack(buf[:])
}

// keepStack keeps growStack's buffer alive (and on the stack: it does not
// escape).
//
//go:noinline
func keepStack([]byte) {}
