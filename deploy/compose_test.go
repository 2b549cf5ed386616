package deploy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Services of docker-compose.yml.
const (
	svcPostgres   = "postgresql"
	svcTemporal   = "temporal"
	svcAdminTools = "temporal-admin-tools"
	svcUI         = "temporal-ui"
	svcWorker     = "escrow-worker"
)

// composeWorkerEnv is the worker's environment in docker-compose.yml, as
// README.md ("Running in production", "Containers") describes it.
var composeWorkerEnv = map[string]string{
	"TEMPORAL_ADDRESS":              "temporal:7233",
	"TEMPORAL_NAMESPACE":            "default",
	"ESCROWFLOW_WALLET_DIR":         "/var/lib/escrowflow/data/wallets",
	"ESCROWFLOW_POOL_SIZE":          "9",
	"ESCROWFLOW_NETWORK":            "testnet",
	"ESCROWFLOW_LOG_FORMAT":         "json",
	"ESCROWFLOW_MASTER_SECRET_FILE": "/run/secrets/master_key",
	"ESCROWFLOW_CODEC_KEYS_FILE":    "/run/secrets/codec_keys",
	"ESCROWFLOW_CODEC_ADDRESS":      "0.0.0.0:8234",
	"ESCROWFLOW_CODEC_TOKEN_FILE":   "/run/secrets/codec_token",
	"ESCROWFLOW_CODEC_HOSTS":        "127.0.0.1,localhost",
	"ESCROWFLOW_CODEC_ORIGIN":       "http://127.0.0.1:8233",
	"ESCROWFLOW_METRICS_ADDRESS":    "0.0.0.0:9464",
	// Off unless .env sets them (files under ./secrets/temporal/).
	"TEMPORAL_TLS_CERT":        "",
	"TEMPORAL_TLS_KEY":         "",
	"TEMPORAL_TLS_CA":          "",
	"TEMPORAL_TLS_SERVER_NAME": "",
	"TEMPORAL_API_KEY_FILE":    "",
}

// loadCompose loads docker-compose.yml as `docker compose` would, with env
// as the only environment (the secret files need not exist).
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	path := filepath.Join(root, "docker-compose.yml")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: []byte(readFile(t, path))}},
		Environment: env,
	})
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

// env returns a service's environment as plain strings.
func env(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		} else {
			m[k] = ""
		}
	}
	return m
}

// published maps a service's container ports to their "hostIP:port".
func published(t *testing.T, s types.ServiceConfig) map[uint32]string {
	t.Helper()
	m := map[uint32]string{}
	for _, p := range s.Ports {
		m[p.Target] = p.HostIP + ":" + p.Published
	}
	return m
}

func TestComposeServicesAndImages(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	if p.Name != "escrowflow" {
		t.Errorf("project name %q, want escrowflow", p.Name)
	}
	want := []string{svcPostgres, svcTemporal, svcAdminTools, svcUI, svcWorker}
	got := p.ServiceNames()
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for name, s := range p.Services {
		if s.Build != nil {
			// Built here: its image name is a local tag, never latest.
			if s.Image != "" && (strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":")) {
				t.Errorf("%s: built image %q: want an explicit tag other than latest", name, s.Image)
			}
			continue
		}
		checkPinned(t, "docker-compose.yml service "+name, s.Image)
	}
	images := map[string]string{}
	for name, s := range p.Services {
		images[name] = s.Image
	}
	if !strings.HasPrefix(images[svcTemporal], "temporalio/auto-setup:") ||
		!strings.HasPrefix(images[svcAdminTools], "temporalio/admin-tools:") ||
		!strings.HasPrefix(images[svcUI], "temporalio/ui:") ||
		!strings.HasPrefix(images[svcPostgres], "postgres:") {
		t.Errorf("images %v: want temporalio/auto-setup, admin-tools, ui and postgres", images)
	}
	// Server and admin tools of the same Temporal release.
	server := strings.TrimPrefix(images[svcTemporal], "temporalio/auto-setup:")
	tools := strings.TrimPrefix(images[svcAdminTools], "temporalio/admin-tools:")
	if !strings.HasPrefix(tools, server+"-") && tools != server {
		t.Errorf("admin-tools %s does not match the server %s", tools, server)
	}
	if got, want := images[svcUI], "temporalio/ui:2.42.1"; got != want {
		t.Errorf("UI image %s, want %s (the pinned CLI's UI)", got, want)
	}

	w := service(t, p, svcWorker)
	root := repoRoot(t)
	if w.Build == nil || filepath.Clean(w.Build.Context) != root || w.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("worker build %+v: want context %s and dockerfile deploy/Dockerfile", w.Build, root)
	}
}

func TestComposePortsOnLoopbackOnly(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
	}
	want := map[string]map[uint32]string{
		svcTemporal: {7233: "127.0.0.1:7233"},
		svcUI:       {8080: "127.0.0.1:8233"},
		svcWorker:   {9464: "127.0.0.1:9464", 8234: "127.0.0.1:8234"},
	}
	for name, s := range p.Services {
		got := published(t, s)
		if fmt.Sprint(got) != fmt.Sprint(want[name]) && !(len(got) == 0 && len(want[name]) == 0) {
			t.Errorf("%s publishes %v, want %v", name, got, want[name])
		}
	}
}

func TestComposeWorker(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	w := service(t, p, svcWorker)
	got := env(w)
	known := workerEnvNames(t)
	for k := range got {
		if !known[k] {
			t.Errorf("worker environment %s: not a variable the worker reads (worker/*.go)", k)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(composeWorkerEnv) {
		t.Errorf("worker environment\n got %v\nwant %v", got, composeWorkerEnv)
	}
	for _, name := range []string{"ESCROWFLOW_MASTER_SECRET", "ESCROWFLOW_CODEC_KEYS", "ESCROWFLOW_CODEC_TOKEN"} {
		if _, ok := got[name]; ok {
			t.Errorf("worker environment holds the secret %s; secrets come as files", name)
		}
	}

	// Metrics and codec listen on the container's network, and exactly
	// those ports are published (on 127.0.0.1, checked above).
	ports := published(t, w)
	for _, name := range []string{"ESCROWFLOW_METRICS_ADDRESS", "ESCROWFLOW_CODEC_ADDRESS"} {
		h, port := hostPort(t, got[name])
		if h != "0.0.0.0" {
			t.Errorf("%s=%s: want 0.0.0.0 inside the container", name, got[name])
		}
		if _, ok := ports[uint32(port)]; !ok {
			t.Errorf("%s port %d is not published", name, port)
		}
	}

	// The UI's codec endpoint is the published codec port (the browser
	// calls it), and the worker allows the UI's published origin.
	ui := service(t, p, svcUI)
	_, codecPort := hostPort(t, got["ESCROWFLOW_CODEC_ADDRESS"])
	if want := "http://" + ports[uint32(codecPort)]; env(ui)["TEMPORAL_CODEC_ENDPOINT"] != want {
		t.Errorf("UI TEMPORAL_CODEC_ENDPOINT=%q, want %q", env(ui)["TEMPORAL_CODEC_ENDPOINT"], want)
	}
	if want := "http://" + published(t, ui)[8080]; got["ESCROWFLOW_CODEC_ORIGIN"] != want {
		t.Errorf("ESCROWFLOW_CODEC_ORIGIN=%q, want the UI's origin %q", got["ESCROWFLOW_CODEC_ORIGIN"], want)
	}
	for _, s := range []string{svcUI, svcAdminTools, svcWorker} {
		if a := env(service(t, p, s))["TEMPORAL_ADDRESS"]; a != svcTemporal+":7233" {
			t.Errorf("%s: TEMPORAL_ADDRESS=%q, want %s:7233", s, a, svcTemporal)
		}
	}

	// Secrets: files under ./secrets/ (git-ignored), mounted where the
	// *_FILE variables point.
	root := repoRoot(t)
	files := map[string]string{"master_key": "secrets/master.key", "codec_keys": "secrets/codec.keys", "codec_token": "secrets/codec.token"}
	if len(p.Secrets) != len(files) {
		t.Errorf("secrets %v, want %v", p.Secrets, files)
	}
	for name, file := range files {
		sec, ok := p.Secrets[name]
		if !ok {
			t.Errorf("no secret %s", name)
			continue
		}
		if sec.File != filepath.Join(root, file) {
			t.Errorf("secret %s from %q, want ./%s", name, sec.File, file)
		}
	}
	mounted := map[string]string{}
	for _, s := range w.Secrets {
		target := s.Target
		if target == "" {
			target = "/run/secrets/" + s.Source
		} else if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		mounted[s.Source] = target
	}
	for envName, secret := range map[string]string{"ESCROWFLOW_MASTER_SECRET_FILE": "master_key", "ESCROWFLOW_CODEC_KEYS_FILE": "codec_keys", "ESCROWFLOW_CODEC_TOKEN_FILE": "codec_token"} {
		if mounted[secret] == "" || got[envName] != mounted[secret] {
			t.Errorf("%s=%q, but secret %s is mounted at %q", envName, got[envName], secret, mounted[secret])
		}
	}
	gitignore := strings.Fields(readFile(t, root, ".gitignore"))
	if !slices.Contains(gitignore, "secrets/") && !slices.Contains(gitignore, "/secrets/") {
		t.Error(".gitignore does not ignore secrets/")
	}

	// Wallets: a named volume holding the wallet dir (and .worker-id).
	if _, ok := p.Volumes["wallets"]; !ok {
		t.Error("no named volume wallets")
	}
	var walletMount string
	for _, v := range w.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "wallets" {
			walletMount = v.Target
		}
	}
	if walletMount == "" || !under(got["ESCROWFLOW_WALLET_DIR"], walletMount) {
		t.Errorf("wallet dir %s is not on the wallets volume (mounted at %q)", got["ESCROWFLOW_WALLET_DIR"], walletMount)
	}
	if d := parseDockerfile(t); d.env["ESCROWFLOW_WALLET_DIR"] != got["ESCROWFLOW_WALLET_DIR"] {
		t.Errorf("deploy/Dockerfile wallet dir %s, compose %s", d.env["ESCROWFLOW_WALLET_DIR"], got["ESCROWFLOW_WALLET_DIR"])
	}
	if _, ok := p.Volumes["postgres"]; !ok {
		t.Error("no named volume postgres for Temporal's database")
	}

	// Hardening and shutdown.
	if !w.ReadOnly || !slices.Contains(w.CapDrop, "ALL") || !slices.Contains(w.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("worker: want read_only, cap_drop ALL and no-new-privileges (got %v %v %v)", w.ReadOnly, w.CapDrop, w.SecurityOpt)
	}
	if w.StopGracePeriod == nil || time.Duration(*w.StopGracePeriod) <= minGrace(t) {
		t.Errorf("worker stop_grace_period %v: want more than %v (2 × shutdown timeout + pool stop)", w.StopGracePeriod, minGrace(t))
	}
	if dep, ok := w.DependsOn[svcAdminTools]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("worker must start after %s registered the search attribute: %+v", svcAdminTools, w.DependsOn)
	}
}

func TestComposeRegistersSearchAttribute(t *testing.T) {
	p := loadCompose(t, map[string]string{})
	a := service(t, p, svcAdminTools)
	script := strings.Join(append(append([]string{}, a.Entrypoint...), a.Command...), " ")
	for _, want := range []string{
		"temporal operator search-attribute create",
		"--name EscrowState --type Keyword",
		"grep -qw EscrowState", // idempotent: create only when missing
	} {
		if !strings.Contains(script, want) {
			t.Errorf("admin tools do not run %q:\n%s", want, script)
		}
	}
	if a.Restart != types.RestartPolicyOnFailure {
		t.Errorf("admin tools restart %q, want on-failure (retry until Temporal answers)", a.Restart)
	}
}

func TestComposeNetworkOverride(t *testing.T) {
	p := loadCompose(t, map[string]string{"ESCROWFLOW_NETWORK": "mainnet"})
	if got := env(service(t, p, svcWorker))["ESCROWFLOW_NETWORK"]; got != "mainnet" {
		t.Errorf("ESCROWFLOW_NETWORK=mainnet in the environment gave %q", got)
	}
}
