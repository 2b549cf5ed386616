// Package deploy_test checks the deployment files that no test can run here
// (no container engine on the development machines): docker-compose.yml,
// deploy/Dockerfile and the Kubernetes manifests in deploy/k8s. It loads
// them as Compose and kubectl would (compose-go; sigs.k8s.io/yaml, kubectl's
// YAML library) and asserts what the README and deploy/README.md promise:
// pinned images, ports on 127.0.0.1 only, the worker's environment made only
// of variables the worker reads, secrets as files, a persistent wallet
// volume, and a shutdown grace longer than the worker's.
package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository root: tests run in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

func readFile(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// envPrefixes are the prefixes of the worker's environment variables.
var envPrefixes = []string{"ESCROWFLOW_", "TEMPORAL_", "ENABLE_"}

// workerEnvNames returns every environment variable name the worker reads:
// the string constants starting with an envPrefix in the non-test Go files
// of the worker package (worker/config.go, codec.go, metrics.go,
// instrumentation.go, …) and of temporalconn (TLS and API key).
func workerEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	var files []string
	for _, dir := range []string{"worker", "temporalconn"} {
		fs, err := filepath.Glob(filepath.Join(repoRoot(t), dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range envPrefixes {
						if strings.HasPrefix(s, p) {
							names[s] = true
						}
					}
				}
			}
		}
	}
	for _, must := range []string{"TEMPORAL_ADDRESS", "ESCROWFLOW_WALLET_DIR", "ESCROWFLOW_MASTER_SECRET_FILE", "ESCROWFLOW_CODEC_KEYS_FILE", "ESCROWFLOW_METRICS_ADDRESS", "ENABLE_INSTRUMENTATION", "TEMPORAL_TLS_CERT", "TEMPORAL_API_KEY_FILE"} {
		if !names[must] {
			t.Fatalf("parsing worker/*.go found no constant %s; found %v", must, names)
		}
	}
	return names
}

// shutdownTimeout returns the ShutdownTimeout of worker.DefaultConfig, read
// from worker/config.go (a "N * time.Unit" expression).
func shutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	path := filepath.Join(repoRoot(t), "worker", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var found time.Duration
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "DefaultConfig" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if id, ok := kv.Key.(*ast.Ident); !ok || id.Name != "ShutdownTimeout" {
				return true
			}
			found = evalDuration(t, kv.Value)
			return false
		})
		return false
	})
	if found <= 0 {
		t.Fatal("no ShutdownTimeout in worker.DefaultConfig")
	}
	return found
}

func evalDuration(t *testing.T, e ast.Expr) time.Duration {
	t.Helper()
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute}
	switch e := e.(type) {
	case *ast.BinaryExpr:
		if e.Op == token.MUL {
			return evalDuration(t, e.X) * evalDuration(t, e.Y)
		}
	case *ast.BasicLit:
		if e.Kind == token.INT {
			n, err := strconv.Atoi(e.Value)
			if err == nil {
				return time.Duration(n)
			}
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
			if u, ok := units[e.Sel.Name]; ok {
				return u
			}
		}
	case *ast.ParenExpr:
		return evalDuration(t, e.X)
	}
	t.Fatalf("ShutdownTimeout: cannot evaluate %T", e)
	return 0
}

// poolStopBound is how long worker.Run waits for the wallet-rpc pool to stop
// after the Temporal workers have stopped (worker/worker.go).
const poolStopBound = 20 * time.Second

// minGrace is the shortest stop grace period the deployments may give the
// worker: up to ShutdownTimeout for running activities on each of its two
// task queues (the shared one and its own), then the pool's stop.
func minGrace(t *testing.T) time.Duration {
	return 2*shutdownTimeout(t) + poolStopBound
}

var (
	// imageRef is repository[:tag]; the tag is what pinning is about.
	imageRef = regexp.MustCompile(`^([a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9._/-]+:([A-Za-z0-9._+-]+)(@sha256:[0-9a-f]{64})?$`)
	// floatingTags are tags that move: not pins.
	floatingTags = regexp.MustCompile(`^(latest|stable|main|master|edge|nightly|dev|[0-9]+|[a-z]+)$`)
)

// checkPinned fails unless image names an explicit, non-floating tag.
func checkPinned(t *testing.T, where, image string) {
	t.Helper()
	m := imageRef.FindStringSubmatch(image)
	switch {
	case m == nil:
		t.Errorf("%s: image %q has no explicit tag", where, image)
	case floatingTags.MatchString(m[2]):
		t.Errorf("%s: image %q uses the floating tag %q; pin a version", where, image, m[2])
	}
}

// hostPort splits a listen address and returns its port as a number.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return h, n
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// dockerfile is what the tests need from deploy/Dockerfile.
type dockerfile struct {
	args    map[string]string // ARG defaults
	froms   []string          // FROM images, ARGs expanded
	runs    []string          // RUN commands, continuation lines joined
	env     map[string]string
	user    string
	text    string
	ignores []string // deploy/Dockerfile.dockerignore patterns
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	root := repoRoot(t)
	d := dockerfile{args: map[string]string{}, env: map[string]string{}, text: readFile(t, root, "deploy", "Dockerfile")}
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(d.text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return d.args[k] })
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				d.args[k] = v
			}
		case "FROM":
			d.froms = append(d.froms, expand(f[1]))
		case "ENV":
			for _, kv := range f[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					d.env[k] = v
				}
			}
		case "USER":
			d.user = f[1]
		case "RUN":
			d.runs = append(d.runs, strings.Join(f[1:], " "))
		}
	}
	for _, l := range strings.Split(readFile(t, root, "deploy", "Dockerfile.dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			d.ignores = append(d.ignores, strings.Trim(l, "/"))
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	if len(d.froms) != 2 {
		t.Fatalf("FROM lines: %v, want a build and a runtime stage", d.froms)
	}
	for _, img := range d.froms {
		checkPinned(t, "deploy/Dockerfile FROM", img)
	}
	if !strings.HasPrefix(d.froms[1], "debian:") {
		t.Errorf("runtime stage %q: want a Debian base (the monero package)", d.froms[1])
	}
	monero := false
	for _, r := range d.runs {
		monero = monero || strings.Contains(r, "apt-get install") && strings.Contains(r, `"monero=${MONERO_VERSION}"`)
	}
	if !monero || d.args["MONERO_VERSION"] == "" {
		t.Error(`deploy/Dockerfile: want apt-get install of "monero=${MONERO_VERSION}" with a pinned default`)
	}
	if uid, _, _ := strings.Cut(d.user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot checks it)", d.user)
	} else if _, err := strconv.Atoi(uid); err != nil {
		t.Errorf("USER %q: want numeric", d.user)
	}
	if d.env["ESCROWFLOW_WALLET_DIR"] == "" {
		t.Error("deploy/Dockerfile: no ENV ESCROWFLOW_WALLET_DIR")
	}
	known := workerEnvNames(t)
	for k := range d.env {
		if !known[k] {
			t.Errorf("deploy/Dockerfile ENV %s: not a variable the worker reads", k)
		}
	}
	// Secrets, wallets and local state never reach the build context.
	ignored := map[string]bool{}
	for _, p := range d.ignores {
		ignored[p] = true
	}
	for _, must := range []string{".git", ".escrowflow", "secrets", "testnet-wallets", "bin"} {
		if !ignored[must] {
			t.Errorf("deploy/Dockerfile.dockerignore does not exclude %s", must)
		}
	}
}
