package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"groupflow/internal/broker"
	"groupflow/internal/testutil"
	"groupflow/messages"
)

// restrictedServer runs a JetStream server with an unrestricted user
// "admin" (who provisions the topology) and a user "limited" who may publish
// commands and call the JetStream API except reading the events stream and
// the ledger bucket. It returns the limited user's URL.
func restrictedServer(t *testing.T) string {
	t.Helper()
	ns := testutil.NATS(t, &server.Options{
		JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "admin", Password: "admin-pw"},
			{Username: "limited", Password: "limited-pw", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{
					Allow: []string{"groups.cmd.>", "$JS.API.>"},
					Deny: []string{"$JS.API.CONSUMER.CREATE.GROUPS_EVENTS.>", "$JS.API.CONSUMER.CREATE.GROUPS_EVENTS",
						"$JS.API.DIRECT.GET.KV_GROUPFLOW_LEDGER.>", "$JS.API.STREAM.INFO.KV_GROUPFLOW_LEDGER"},
				},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		},
	})
	addr := ns.Addr().String()
	nc, err := nats.Connect("nats://"+addr, nats.UserInfo("admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (broker.Topology{Subjects: messages.Subjects{}}).Provision(ctx, js); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("nats://limited:limited-pw@%s", addr)
}

// TestPermissionErrorsFailAtOnce: send --wait, events tail and status name
// the server's permissions violation and stop, instead of waiting for
// their timeout (or forever) without saying why.
func TestPermissionErrorsFailAtOnce(t *testing.T) {
	url := restrictedServer(t)
	for _, args := range [][]string{
		{"send", "report", "--top", "1", "--wait", "--timeout", "20s"},
		{"events", "tail", "--count", "1"},
		{"status", "some-id", "--type", "generate_report"},
	} {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		err := run(ctx, append([]string{"--nats-url", url}, args...), strings.NewReader(""), &out, &errOut)
		cancel()
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Errorf("groupctl %s: error %v, want the permissions violation\nstderr: %s", strings.Join(args, " "), err, errOut.String())
		}
		if err != nil && strings.Contains(err.Error(), "limited-pw") {
			t.Errorf("groupctl %s: password in error %v", args[0], err)
		}
		if testing.Verbose() {
			t.Logf("groupctl %s: %v", args[0], err)
		}
	}
}
