package deploy_test

import (
	"bufio"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// temporalEnv parses deploy/temporal.env: KEY=VALUE lines and comments.
func temporalEnv(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, repoRoot(t), "deploy", "temporal.env")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'$ `) {
			t.Fatalf("deploy/temporal.env: %q: want plain KEY=VALUE (both compose and bash read it)", line)
		}
		m[k] = v
	}
	return m
}

// shellDefault returns the default a script gives NAME with : "${NAME:=v}".
func shellDefault(t *testing.T, script, name string) string {
	t.Helper()
	m := regexp.MustCompile(`"\$\{` + name + `:=([^}]*)\}"`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no default for %s in the script", name)
	}
	return m[1]
}

// TestProdUpMatchesCompose checks that `make prod-up` (scripts/prod-up.sh,
// deploy/temporal/production.yaml) and docker-compose.yml run Temporal with
// the same settings, so the two cannot drift.
func TestProdUpMatchesCompose(t *testing.T) {
	root := repoRoot(t)
	shared := temporalEnv(t)
	for _, k := range []string{"DB", "POSTGRES_USER", "POSTGRES_PWD", "DBNAME", "VISIBILITY_DBNAME", "NUM_HISTORY_SHARDS", "DEFAULT_NAMESPACE", "DEFAULT_NAMESPACE_RETENTION"} {
		if shared[k] == "" {
			t.Errorf("deploy/temporal.env has no %s", k)
		}
	}
	p := loadCompose(t, map[string]string{})

	// Compose: the temporal service reads the file, overriding none of it.
	temporal := service(t, p, svcTemporal)
	tenv := env(temporal)
	for k, v := range shared {
		if tenv[k] != v {
			t.Errorf("compose temporal %s=%q, deploy/temporal.env says %q", k, tenv[k], v)
		}
	}
	pg := env(service(t, p, svcPostgres))
	if pg["POSTGRES_USER"] != shared["POSTGRES_USER"] || pg["POSTGRES_PASSWORD"] != shared["POSTGRES_PWD"] {
		t.Errorf("compose postgresql user/password %q/%q differ from deploy/temporal.env", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
	}
	dyn := ""
	for _, v := range temporal.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml") {
			dyn = v.Target
		}
	}
	if dyn == "" || tenv["DYNAMIC_CONFIG_FILE_PATH"] != dyn {
		t.Errorf("compose temporal: DYNAMIC_CONFIG_FILE_PATH=%q, deploy/temporal/dynamicconfig.yaml mounted at %q", tenv["DYNAMIC_CONFIG_FILE_PATH"], dyn)
	}

	// prod-up.sh: reads the same file and the same dynamic config, and the
	// server config takes every database value from the environment.
	up := readFile(t, root, "scripts", "prod-up.sh")
	for _, want := range []string{`. "$REPO/deploy/temporal.env"`, `ESCROWFLOW_DYNAMIC_CONFIG="$REPO/deploy/temporal/dynamicconfig.yaml"`,
		`--namespace "$DEFAULT_NAMESPACE"`, `--retention "$DEFAULT_NAMESPACE_RETENTION"`, "--name EscrowState --type Keyword"} {
		if !strings.Contains(up, want) {
			t.Errorf("scripts/prod-up.sh does not contain %s", want)
		}
	}
	cfg := readFile(t, root, "deploy", "temporal", "production.yaml")
	for _, k := range []string{"DB", "POSTGRES_USER", "POSTGRES_PWD", "DBNAME", "VISIBILITY_DBNAME", "NUM_HISTORY_SHARDS"} {
		if !strings.Contains(cfg, `env "`+k+`"`) {
			t.Errorf("deploy/temporal/production.yaml does not read %s", k)
		}
	}
	if !strings.Contains(readFile(t, root, "docker-compose.yml"), "--name EscrowState --type Keyword") {
		t.Error("docker-compose.yml registers EscrowState differently")
	}

	// Versions: the binaries prereqs.sh builds are the images' versions.
	prereqs := readFile(t, root, "scripts", "prereqs.sh")
	version := func(name string) string {
		m := regexp.MustCompile(name + `="([0-9.]+)"`).FindStringSubmatch(prereqs)
		if m == nil {
			t.Fatalf("scripts/prereqs.sh has no %s", name)
		}
		return m[1]
	}
	if want := "temporalio/auto-setup:" + version("TEMPORAL_SERVER_VERSION"); temporal.Image != want {
		t.Errorf("compose temporal image %s, prod-up builds %s", temporal.Image, want)
	}
	if ui, want := service(t, p, svcUI).Image, "temporalio/ui:"+version("TEMPORAL_UI_VERSION"); ui != want {
		t.Errorf("compose UI image %s, prod-up builds %s", ui, want)
	}

	// Workers: the compose worker's sizing and log format.
	w := env(service(t, p, svcWorker))
	if got := shellDefault(t, up, "PROD_POOL_SIZE"); got != w["ESCROWFLOW_POOL_SIZE"] {
		t.Errorf("prod-up pool size %s, compose %s", got, w["ESCROWFLOW_POOL_SIZE"])
	}
	if !strings.Contains(up, "ESCROWFLOW_LOG_FORMAT="+w["ESCROWFLOW_LOG_FORMAT"]+" ") {
		t.Errorf("prod-up workers do not log %s like compose's", w["ESCROWFLOW_LOG_FORMAT"])
	}
	if got := shellDefault(t, up, "FRONTEND_GRPC_PORT"); "127.0.0.1:"+got != published(t, temporal)[7233] {
		t.Errorf("prod-up frontend port %s, compose publishes %s", got, published(t, temporal)[7233])
	}
	if got := shellDefault(t, up, "PROD_UI_PORT"); "127.0.0.1:"+got != published(t, service(t, p, svcUI))[8080] {
		t.Errorf("prod-up UI port %s, compose publishes %s", got, published(t, service(t, p, svcUI))[8080])
	}
}
