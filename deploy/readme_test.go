package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/internal/testenv"
)

// section returns the text of the README section "## title", up to the next
// "## " heading.
func section(t *testing.T, readme, title string) string {
	t.Helper()
	start := strings.Index(readme, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("README.md: no section %q", title)
	}
	body := readme[start+1:]
	if end := strings.Index(body[3:], "\n## "); end >= 0 {
		body = body[:end+4]
	}
	return body
}

var envToken = regexp.MustCompile(`\b(?:ESCROWFLOW|TEMPORAL|ENABLE)_[A-Z0-9_]+\b`)

// TestReadmeDeploymentDocs checks the deployment docs against the files:
// section order, variable names, the published ports and the image
// versions they quote, and the manifests and object names the guide uses.
func TestReadmeDeploymentDocs(t *testing.T) {
	root := repoRoot(t)
	readme := readFile(t, root, "README.md")
	prod := section(t, readme, "Running in production")
	containers := section(t, readme, "Containers")
	if !strings.Contains(readme, prod+containers) {
		t.Error(`README.md: "## Running in production" must come right before "## Containers"`)
	}
	guide := readFile(t, root, "deploy", "README.md")

	known := workerEnvNames(t)
	for name, text := range map[string]string{"README.md": prod + containers, "deploy/README.md": guide} {
		for _, v := range envToken.FindAllString(text, -1) {
			if !known[v] {
				t.Errorf("%s names %s, which the worker does not read", name, v)
			}
		}
	}

	p := loadCompose(t, map[string]string{})
	// The port table of "Containers" is what docker-compose.yml publishes.
	var documented, actual []string
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(containers, -1) {
		documented = append(documented, m[1])
	}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			actual = append(actual, port.Published)
		}
	}
	sort.Strings(documented)
	sort.Strings(actual)
	if !slices.Equal(documented, actual) {
		t.Errorf("README.md port table %v, docker-compose.yml publishes %v", documented, actual)
	}
	for _, svc := range []string{svcTemporal, svcUI} {
		img := service(t, p, svc).Image
		version := img[strings.LastIndex(img, ":")+1:]
		if !strings.Contains(prod+containers, version) {
			t.Errorf("README.md does not name %s's version %s", svc, version)
		}
	}

	// The guide's files and object names exist.
	for _, m := range regexp.MustCompile(`deploy/k8s/[a-z-]+\.yaml`).FindAllString(readme+guide, -1) {
		if _, err := os.Stat(filepath.Join(root, m)); err != nil {
			t.Errorf("docs name %s: %v", m, err)
		}
	}
	k := loadK8s(t)
	names := map[string]bool{}
	for _, o := range k.all {
		names[strings.ToLower(o.Kind)+"/"+o.Metadata.Name] = true
	}
	for _, m := range regexp.MustCompile(`\b(statefulset|job)/[a-z0-9-]+`).FindAllString(readme+guide, -1) {
		if !names[m] {
			t.Errorf("docs name %s, which no manifest defines", m)
		}
	}
	if !strings.Contains(guide, "create secret generic "+k.secret.Metadata.Name) {
		t.Errorf("deploy/README.md does not create the Secret %s", k.secret.Metadata.Name)
	}
	for key := range k.secret.StringData {
		if !strings.Contains(guide, "--from-file="+key+"=secrets/"+key) {
			t.Errorf("deploy/README.md does not fill the Secret key %s from secrets/%s", key, key)
		}
	}
}

// TestSecretCommands runs the commands README.md and docker-compose.yml give
// for creating the secrets (the same lines in both) and checks that the
// worker accepts what they make.
func TestSecretCommands(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		testenv.Missing(t, "no sh")
	}
	root := repoRoot(t)
	readme := section(t, readFile(t, root, "README.md"), "Containers")
	compose := readFile(t, root, "docker-compose.yml")
	var cmds []string
	for _, l := range strings.Split(readme, "\n") {
		if strings.HasPrefix(l, "mkdir -p secrets") || strings.HasPrefix(l, "(umask 077;") {
			cmds = append(cmds, l)
			if !strings.Contains(compose, l) {
				t.Errorf("docker-compose.yml's header does not give the README's command\n%s", l)
			}
		}
	}
	if len(cmds) != 4 {
		t.Fatalf("README.md Containers: %d secret commands, want mkdir and three files:\n%v", len(cmds), cmds)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "-ec", strings.Join(cmds, "\n"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range []string{"master.key", "codec.keys", "codec.token"} {
		fi, err := os.Stat(filepath.Join(dir, "secrets", f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("secrets/%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	master, err := os.ReadFile(filepath.Join(dir, "secrets", "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	// The worker trims white space around the file's content (LoadSecret).
	if _, err := activities.NewPasswords([]byte(strings.TrimSpace(string(master)))); err != nil {
		t.Errorf("secrets/master.key: %v", err)
	}
	cd, err := codec.LoadKeys(filepath.Join(dir, "secrets", "codec.keys"))
	if err != nil {
		t.Fatalf("secrets/codec.keys: %v", err)
	}
	if cd.CurrentKeyID() != "k1" {
		t.Errorf("current codec key %q, want k1", cd.CurrentKeyID())
	}
}
