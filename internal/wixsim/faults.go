package wixsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Faults configures fault injection. The zero value injects nothing. Faults
// apply to API requests that passed authentication and the rate limiter;
// control endpoints are never affected.
type Faults struct {
	// Latency is added to every request, plus a uniform random Jitter in [0, Jitter).
	Latency, Jitter time.Duration
	// SpikeProb is the probability of an extra Spike delay.
	SpikeProb float64
	Spike     time.Duration
	// ErrorRates maps a status code to the probability of answering with it
	// instead of serving the request, e.g. {500: 0.2, 503: 0.05}. 5xx bodies
	// are Wix's empty system error; 429 uses RESOURCE_EXHAUSTED.
	ErrorRates map[int]float64
	// TimeoutProb is the probability of hanging until the client gives up, the
	// server closes, or TimeoutMax (default 30s) passes; then 504 is sent.
	TimeoutProb float64
	TimeoutMax  time.Duration
	// ResetProb is the probability of closing the connection abruptly
	// (hijack + TCP RST) without a response.
	ResetProb float64
	// Burst429 makes the next N requests fail with 429.
	Burst429 int
	// Burst429For makes every request fail with 429 for this long after SetFaults.
	Burst429For time.Duration
	// Ops limits the faults to these operation names (empty: all operations).
	Ops []string
	// Seed makes the random draws deterministic (for sequential requests);
	// 0 means 1.
	Seed int64
}

type faultState struct {
	f         Faults
	ops       map[string]bool
	mu        sync.Mutex
	rng       *rand.Rand
	left429   atomic.Int64
	until429  time.Time
	errCodes  []int
	anyRandom bool
}

func newFaultState(f Faults, now time.Time) *faultState {
	fs := &faultState{f: f}
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	fs.rng = rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	fs.left429.Store(int64(f.Burst429))
	if f.Burst429For > 0 {
		fs.until429 = now.Add(f.Burst429For)
	}
	if len(f.Ops) > 0 {
		fs.ops = map[string]bool{}
		for _, op := range f.Ops {
			fs.ops[op] = true
		}
	}
	for c, p := range f.ErrorRates {
		if p > 0 {
			fs.errCodes = append(fs.errCodes, c)
		}
	}
	sort.Ints(fs.errCodes)
	fs.anyRandom = f.Latency > 0 || f.Jitter > 0 || f.SpikeProb > 0 || len(fs.errCodes) > 0 || f.TimeoutProb > 0 || f.ResetProb > 0
	return fs
}

func (fs *faultState) applies(op string) bool { return fs.ops == nil || fs.ops[op] }

// take429 reports whether this request falls into a 429 burst.
func (fs *faultState) take429(now time.Time) bool {
	if !fs.until429.IsZero() && now.Before(fs.until429) {
		return true
	}
	for {
		n := fs.left429.Load()
		if n <= 0 {
			return false
		}
		if fs.left429.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// SetFaults replaces the fault configuration (SetFaults(Faults{}) turns all
// faults off). The random source restarts from Faults.Seed.
func (s *Server) SetFaults(f Faults) {
	f.ErrorRates = cloneRates(f.ErrorRates)
	f.Ops = slices.Clone(f.Ops)
	s.faults.Store(newFaultState(f, s.now()))
}

// Faults returns the current fault configuration; Burst429 holds the number
// of 429s still to come.
func (s *Server) Faults() Faults {
	fs := s.faults.Load()
	f := fs.f
	f.ErrorRates = cloneRates(f.ErrorRates)
	f.Ops = slices.Clone(f.Ops)
	f.Burst429 = int(max(fs.left429.Load(), 0))
	return f
}

func cloneRates(m map[int]float64) map[int]float64 {
	if m == nil {
		return nil
	}
	out := make(map[int]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// injectFaults applies latency, resets, hangs and error rates. It reports
// whether it answered the request (status 0 = connection dropped).
func (s *Server) injectFaults(fs *faultState, op string, w http.ResponseWriter, r *http.Request) (int, bool) {
	if !fs.anyRandom || !fs.applies(op) {
		return 0, false
	}
	f := fs.f
	fs.mu.Lock()
	uJitter, uSpike, uReset, uTimeout, uErr := fs.rng.Float64(), fs.rng.Float64(), fs.rng.Float64(), fs.rng.Float64(), fs.rng.Float64()
	fs.mu.Unlock()

	delay := f.Latency + time.Duration(uJitter*float64(f.Jitter))
	if uSpike < f.SpikeProb {
		delay += f.Spike
	}
	if delay > 0 && !s.wait(r, delay) {
		return 0, true
	}
	if uReset < f.ResetProb {
		resetConn(w)
		return 0, true
	}
	if uTimeout < f.TimeoutProb {
		max := f.TimeoutMax
		if max <= 0 {
			max = 30 * time.Second
		}
		if !s.wait(r, max) {
			return 0, true
		}
		e := systemError(http.StatusGatewayTimeout)
		writeJSON(w, e.status, e.body)
		return e.status, true
	}
	acc := 0.0
	for _, code := range fs.errCodes {
		acc += f.ErrorRates[code]
		if uErr < acc {
			e := errForStatus(code)
			writeJSON(w, e.status, e.body)
			return code, true
		}
	}
	return 0, false
}

// wait sleeps d; it returns false when the client went away or the server closed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// resetConn closes the client connection without a response, with a TCP RST
// when possible.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// faultsJSON is the wire form of Faults for /_sim/faults: durations are Go
// duration strings ("150ms") or numbers of milliseconds.
type faultsJSON struct {
	Latency     jsonDuration       `json:"latency"`
	Jitter      jsonDuration       `json:"jitter"`
	SpikeProb   float64            `json:"spikeProb"`
	Spike       jsonDuration       `json:"spike"`
	ErrorRates  map[string]float64 `json:"errorRates,omitempty"`
	TimeoutProb float64            `json:"timeoutProb"`
	TimeoutMax  jsonDuration       `json:"timeoutMax"`
	ResetProb   float64            `json:"resetProb"`
	Burst429    int                `json:"burst429"`
	Burst429For jsonDuration       `json:"burst429For"`
	Ops         []string           `json:"ops,omitempty"`
	Seed        int64              `json:"seed"`
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*d = 0
	case float64:
		*d = jsonDuration(time.Duration(x * float64(time.Millisecond)))
	case string:
		if x == "" {
			*d = 0
			return nil
		}
		p, err := time.ParseDuration(x)
		if err != nil {
			return err
		}
		*d = jsonDuration(p)
	default:
		return fmt.Errorf("bad duration %s", b)
	}
	return nil
}

// MarshalJSON encodes durations as strings ("150ms") and status codes as keys.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{Latency: jsonDuration(f.Latency), Jitter: jsonDuration(f.Jitter), SpikeProb: f.SpikeProb,
		Spike: jsonDuration(f.Spike), TimeoutProb: f.TimeoutProb, TimeoutMax: jsonDuration(f.TimeoutMax),
		ResetProb: f.ResetProb, Burst429: f.Burst429, Burst429For: jsonDuration(f.Burst429For), Ops: f.Ops, Seed: f.Seed}
	if len(f.ErrorRates) > 0 {
		j.ErrorRates = map[string]float64{}
		for c, p := range f.ErrorRates {
			j.ErrorRates[fmt.Sprint(c)] = p
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON accepts durations as strings ("150ms") or milliseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Faults{Latency: time.Duration(j.Latency), Jitter: time.Duration(j.Jitter), SpikeProb: j.SpikeProb,
		Spike: time.Duration(j.Spike), TimeoutProb: j.TimeoutProb, TimeoutMax: time.Duration(j.TimeoutMax),
		ResetProb: j.ResetProb, Burst429: j.Burst429, Burst429For: time.Duration(j.Burst429For), Ops: j.Ops, Seed: j.Seed}
	for k, p := range j.ErrorRates {
		var c int
		if _, err := fmt.Sscan(k, &c); err != nil || c < 100 || c > 599 {
			return fmt.Errorf("bad status code %q in errorRates", k)
		}
		if f.ErrorRates == nil {
			f.ErrorRates = map[int]float64{}
		}
		f.ErrorRates[c] = p
	}
	return nil
}
