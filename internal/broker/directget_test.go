package broker_test

import (
	"context"
	"testing"
	"time"

	"groupflow/internal/broker"
	"groupflow/internal/testenv"
)

// With one replica the ledger bucket answers reads by direct get (no lagging
// copy can exist), also when an older version had turned direct gets off.
func TestProvisionLedgerDirectGetOnOneReplica(t *testing.T) {
	env := testenv.Start(t, testenv.Quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := "KV_" + broker.LedgerBucket
	st, err := env.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	old := st.CachedInfo().Config
	old.AllowDirect = false
	if _, err := env.JS.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := (broker.Topology{Subjects: env.Subjects}).Provision(ctx, env.JS); err != nil {
		t.Fatal(err)
	}
	if st, err = env.JS.Stream(ctx, name); err != nil {
		t.Fatal(err)
	}
	if !st.CachedInfo().Config.AllowDirect {
		t.Fatal("ledger bucket with one replica: direct get off")
	}
}
