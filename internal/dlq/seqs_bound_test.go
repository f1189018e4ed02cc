package dlq_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"groupflow/internal/dlq"
	"groupflow/internal/testenv"
)

// TestSeqsSelectionBounded: a selection by sequence names at most
// dlq.MaxSeqs of them; more is refused at once with ErrTooManySeqs by
// List, Replay and Purge (and POST /dlq/replay and /dlq/purge with 400),
// before one entry is read: each sequence named costs a read of the DLQ
// per pass (Replay makes two), so a million of them (a 1 MiB body holds
// ~150,000 distinct ones, groupctl's arguments as many as the shell
// passes) kept the processor reading for minutes.
func TestSeqsSelectionBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	seq := deadLetter(t, env, reportEntry(1))
	seqs := []uint64{seq}
	for i := range uint64(dlq.MaxSeqs) {
		seqs = append(seqs, seq+1+i)
	}
	f := dlq.Filter{Seqs: seqs}
	if err := f.Check(); !errors.Is(err, dlq.ErrTooManySeqs) {
		t.Fatalf("Check of %d seqs: %v", len(seqs), err)
	}
	if _, err := store.List(t.Context(), f); !errors.Is(err, dlq.ErrTooManySeqs) {
		t.Errorf("List: %v", err)
	}
	if res, err := store.Replay(t.Context(), f, dlq.ReplayOptions{}); !errors.Is(err, dlq.ErrTooManySeqs) || res.Replayed != 0 {
		t.Errorf("Replay: %+v %v", res, err)
	}
	if n, err := store.Purge(t.Context(), f); !errors.Is(err, dlq.ErrTooManySeqs) || n != 0 {
		t.Errorf("Purge: %d %v", n, err)
	}

	srv := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer srv.Close()
	var body strings.Builder
	body.WriteString(`{"seqs":[`)
	for i, s := range seqs {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(strconv.FormatUint(s, 10))
	}
	body.WriteString(`]}`)
	for _, path := range []string{"/dlq/replay", "/dlq/purge"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s of %d seqs: %d, want 400", path, len(seqs), resp.StatusCode)
		}
	}
	if entries, err := store.List(t.Context(), dlq.Filter{}); err != nil || len(entries) != 1 {
		t.Fatalf("after the refused selections: %d entries, %v", len(entries), err)
	}
	if n := len(env.Read(env.Subjects.CommandStream(), env.Subjects.Commands())); n != 0 {
		t.Fatalf("%d commands published", n)
	}

	// At the bound it is served.
	res, err := store.Replay(t.Context(), dlq.Filter{Seqs: seqs[:dlq.MaxSeqs]}, dlq.ReplayOptions{DryRun: true})
	if err != nil || res.Selected != 1 || res.Replayed != 1 {
		t.Fatalf("dry run of %d seqs: %+v %v", dlq.MaxSeqs, res, err)
	}
}

// TestReasonFilterBounded: a reason filter longer than any reason stored
// (dlq.MaxReasonFilter) is refused at once with ErrBadReason (GET /dlq and
// POST /dlq/replay answer 400): it was lowered again for every entry the
// scan read, tens of KiB a time with an URL of 64 KiB.
func TestReasonFilterBounded(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	store := dlq.NewStore(env.JS, env.Subjects)
	deadLetter(t, env, reportEntry(1))
	long := strings.Repeat("X", dlq.MaxReasonFilter+1)
	if _, err := store.List(t.Context(), dlq.Filter{ReasonContains: long}); !errors.Is(err, dlq.ErrBadReason) {
		t.Errorf("List: %v", err)
	}
	if _, err := store.Replay(t.Context(), dlq.Filter{ReasonContains: long}, dlq.ReplayOptions{}); !errors.Is(err, dlq.ErrBadReason) {
		t.Errorf("Replay: %v", err)
	}
	srv := httptest.NewServer(dlq.NewHTTPHandler(store, "", nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/dlq?reason=" + long)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /dlq?reason=<%d bytes>: %d, want 400", len(long), resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/dlq/replay", "application/json", strings.NewReader(`{"reasonContains":"`+long+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /dlq/replay: %d, want 400", resp.StatusCode)
	}
	if got, err := store.List(t.Context(), dlq.Filter{ReasonContains: "INVALID_argument"}); err != nil || len(got) != 1 {
		t.Fatalf("reason filter within the bound: %d %v", len(got), err)
	}
}
