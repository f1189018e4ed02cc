package deploy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"groupflow/internal/config"
	"groupflow/internal/netsafe"
	"groupflow/internal/testutil"
)

// dockerfileEnv returns the ENV settings of a Dockerfile (KEY=VALUE forms,
// continuation lines joined).
func dockerfileEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	env := map[string]string{}
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "ENV ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = strings.Trim(v, `"`)
			}
		}
	}
	return env
}

// composeDefaults expands ${NAME:-default} to default, as docker compose does
// with NAME unset.
var composeDefault = regexp.MustCompile(`\$\{[A-Z0-9_]+:-([^}]*)\}`)

func composeExpand(s string) string { return composeDefault.ReplaceAllString(s, "$1") }

// parseGroupflow runs groupflow's real configuration parser on args and env.
func parseGroupflow(args []string, env map[string]string) error {
	_, err := config.Parse(args, func(k string) string { return env[k] }, io.Discard)
	return err
}

// TestImageDoesNotStartOpen: the image's defaults alone (no
// GROUPFLOW_ADMIN_TOKEN) do not give an admin API open beyond loopback:
// groupflow refuses to start, with the reason.
func TestImageDoesNotStartOpen(t *testing.T) {
	env := dockerfileEnv(t, filepath.Join(testutil.MustModuleRoot(t), "deploy", "Dockerfile"))
	listen := env["GROUPFLOW_HTTP_LISTEN"]
	if listen == "" {
		listen = "127.0.0.1:8080" // groupflow's own default
	}
	err := parseGroupflow(nil, env)
	if netsafe.IsLoopbackAddr(listen) {
		return // loopback by default: not reachable from outside the container
	}
	if !errors.Is(err, netsafe.ErrOpenAdmin) {
		t.Fatalf("the image listens on %s and starts without GROUPFLOW_ADMIN_TOKEN (config error: %v)", listen, err)
	}
	env["GROUPFLOW_ADMIN_TOKEN"] = "t-0123456789abcdef"
	if err := parseGroupflow(nil, env); err != nil {
		t.Errorf("the image with a token does not start: %v", err)
	}
}

// TestComposeGroupflowStarts: the compose groupflow service's command and
// environment pass groupflow's configuration checks (admin token beyond
// loopback, the plain-http simulator explicitly allowed), and would not
// without its token.
func TestComposeGroupflowStarts(t *testing.T) {
	compose := yamlDocs(t, filepath.Join(testutil.MustModuleRoot(t), "deploy", "docker-compose.yml"))[0]
	var args []string
	for _, a := range dig(compose, "services", "groupflow", "command").([]any) {
		args = append(args, composeExpand(fmt.Sprint(a)))
	}
	env := map[string]string{}
	for k, v := range dig(compose, "services", "groupflow", "environment").(map[string]any) {
		env[k] = composeExpand(fmt.Sprint(v))
	}
	if env["GROUPFLOW_ADMIN_TOKEN"] == "" {
		t.Error("compose: groupflow has no GROUPFLOW_ADMIN_TOKEN")
	}
	if err := parseGroupflow(args, env); err != nil {
		t.Fatalf("compose: groupflow %v refuses to start: %v", args, err)
	}
	delete(env, "GROUPFLOW_ADMIN_TOKEN")
	if err := parseGroupflow(args, env); !errors.Is(err, netsafe.ErrOpenAdmin) {
		t.Errorf("compose: groupflow without its token starts open (err %v)", err)
	}
}

// TestKubernetesAdminToken: the Deployment takes GROUPFLOW_ADMIN_TOKEN from
// the Secret, and the ConfigMap's settings start groupflow with it and
// refuse without it.
func TestKubernetesAdminToken(t *testing.T) {
	dir := filepath.Join(testutil.MustModuleRoot(t), "deploy", "k8s")
	dep := yamlDocs(t, filepath.Join(dir, "groupflow-deployment.yaml"))[0]
	c := dig(dep, "spec", "template", "spec", "containers", "0")
	found := false
	for _, e := range dig(c, "env").([]any) {
		if dig(e, "name") == "GROUPFLOW_ADMIN_TOKEN" {
			found = dig(e, "valueFrom", "secretKeyRef", "key") == "GROUPFLOW_ADMIN_TOKEN"
		}
	}
	if !found {
		t.Error("deployment: GROUPFLOW_ADMIN_TOKEN does not come from a Secret")
	}
	cm := yamlDocs(t, filepath.Join(dir, "configmap.yaml"))[0]
	env := map[string]string{"WIX_API_KEY": "k"}
	for k, v := range dig(cm, "data").(map[string]any) {
		env[k] = fmt.Sprint(v)
	}
	if err := parseGroupflow(nil, env); !errors.Is(err, netsafe.ErrOpenAdmin) && !netsafe.IsLoopbackAddr(env["GROUPFLOW_HTTP_LISTEN"]) {
		t.Errorf("k8s: groupflow without the Secret's token starts open (err %v)", err)
	}
	env["GROUPFLOW_ADMIN_TOKEN"] = "t-0123456789abcdef"
	if err := parseGroupflow(nil, env); err != nil {
		t.Errorf("k8s: groupflow with the ConfigMap and the token refuses to start: %v", err)
	}
}
