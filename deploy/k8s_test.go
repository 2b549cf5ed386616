package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/worker"
)

// The parts of Kubernetes objects the tests read. Unknown fields are
// ignored; field names are those of the Kubernetes API.
type (
	object struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   metadata        `json:"metadata"`
		Data       map[string]any  `json:"data"`
		StringData map[string]any  `json:"stringData"`
		Spec       json.RawMessage `json:"spec"`
		Resources  []string        `json:"resources"` // Kustomization
		file       string
	}
	metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	}
	statefulSetSpec struct {
		ServiceName          string            `json:"serviceName"`
		Replicas             *int              `json:"replicas"`
		Selector             labelSelector     `json:"selector"`
		Template             podTemplate       `json:"template"`
		VolumeClaimTemplates []json.RawMessage `json:"volumeClaimTemplates"`
		PVCRetention         map[string]string `json:"persistentVolumeClaimRetentionPolicy"`
	}
	jobSpec struct {
		Template podTemplate `json:"template"`
	}
	serviceSpec struct {
		ClusterIP string            `json:"clusterIP"`
		Selector  map[string]string `json:"selector"`
		Ports     []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
	}
	labelSelector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	podTemplate struct {
		Metadata metadata `json:"metadata"`
		Spec     podSpec  `json:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool  `json:"runAsNonRoot"`
			RunAsUser    *int64 `json:"runAsUser"`
			FSGroup      *int64 `json:"fsGroup"`
		} `json:"securityContext"`
		Containers     []container `json:"containers"`
		InitContainers []container `json:"initContainers"`
		Volumes        []struct {
			Name   string `json:"name"`
			Secret *struct {
				SecretName  string `json:"secretName"`
				DefaultMode *int   `json:"defaultMode"`
				Items       []struct {
					Key  string `json:"key"`
					Path string `json:"path"`
				} `json:"items"`
			} `json:"secret"`
			EmptyDir *json.RawMessage `json:"emptyDir"`
		} `json:"volumes"`
	}
	container struct {
		Name    string `json:"name"`
		Image   string `json:"image"`
		EnvFrom []struct {
			ConfigMapRef *struct {
				Name string `json:"name"`
			} `json:"configMapRef"`
			SecretRef *json.RawMessage `json:"secretRef"`
		} `json:"envFrom"`
		Env []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				ConfigMapKeyRef *struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"configMapKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		Command []string `json:"command"`
		Args    []string `json:"args"`
		Ports   []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		LivenessProbe  *probe `json:"livenessProbe"`
		ReadinessProbe *probe `json:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `json:"drop"`
			} `json:"capabilities"`
		} `json:"securityContext"`
		VolumeMounts []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
			ReadOnly  bool   `json:"readOnly"`
		} `json:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `json:"path"`
			Port any    `json:"port"`
		} `json:"httpGet"`
		TimeoutSeconds int `json:"timeoutSeconds"`
	}
)

// manifests parses every document of every deploy/k8s/*.yaml file.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/k8s/*.yaml: %v", err)
	}
	var objs []object
	for _, f := range files {
		for i, doc := range splitYAML(readFile(t, f)) {
			var o object
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s document %d: %v", filepath.Base(f), i+1, err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Fatalf("%s document %d: no apiVersion or kind", filepath.Base(f), i+1)
			}
			if o.Kind != "Kustomization" && o.Metadata.Name == "" {
				t.Fatalf("%s document %d: %s without a name", filepath.Base(f), i+1, o.Kind)
			}
			o.file = filepath.Base(f)
			objs = append(objs, o)
		}
	}
	return objs
}

// splitYAML splits a multi-document YAML stream on "---" lines, as
// kubectl does, dropping documents that hold only comments.
func splitYAML(s string) []string {
	var docs []string
	var cur bytes.Buffer
	flush := func() {
		content := false
		for _, l := range strings.Split(cur.String(), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				content = true
			}
		}
		if content {
			docs = append(docs, cur.String())
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	flush()
	return docs
}

// k8s holds the manifests by kind.
type k8s struct {
	all         []object
	configMap   object
	secret      object
	statefulSet statefulSetSpec
	stsMeta     metadata
	job         jobSpec
	services    map[string]serviceSpec
	kustomize   object
}

func loadK8s(t *testing.T) k8s {
	t.Helper()
	k := k8s{all: manifests(t), services: map[string]serviceSpec{}}
	count := map[string]int{}
	for _, o := range k.all {
		count[o.Kind]++
		decode := func(v any) {
			if err := json.Unmarshal(o.Spec, v); err != nil {
				t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
			}
		}
		switch o.Kind {
		case "ConfigMap":
			k.configMap = o
		case "Secret":
			k.secret = o
		case "StatefulSet":
			k.stsMeta = o.Metadata
			decode(&k.statefulSet)
		case "Job":
			decode(&k.job)
		case "Service":
			var s serviceSpec
			decode(&s)
			k.services[o.Metadata.Name] = s
		case "Kustomization":
			k.kustomize = o
		default:
			t.Errorf("%s: unexpected kind %s", o.file, o.Kind)
		}
	}
	want := map[string]int{"ConfigMap": 1, "Secret": 1, "StatefulSet": 1, "Job": 1, "Service": 2, "Kustomization": 1}
	for kind, n := range want {
		if count[kind] != n {
			t.Errorf("%d %s objects, want %d", count[kind], kind, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return k
}

// config returns the ConfigMap's data as strings.
func (k k8s) config(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for key, v := range k.configMap.Data {
		s, ok := v.(string)
		if !ok {
			t.Errorf("ConfigMap key %s: value %v is not a string (quote it)", key, v)
		}
		m[key] = s
	}
	return m
}

func (k k8s) worker(t *testing.T) container {
	t.Helper()
	cs := k.statefulSet.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet: %d containers, want 1", len(cs))
	}
	return cs[0]
}

func TestK8sManifestsParse(t *testing.T) {
	k := loadK8s(t)
	// Every image is pinned.
	for _, o := range k.all {
		var spec struct {
			Template podTemplate `json:"template"`
		}
		if o.Kind != "StatefulSet" && o.Kind != "Job" {
			continue
		}
		if err := json.Unmarshal(o.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		for _, c := range append(spec.Template.Spec.InitContainers, spec.Template.Spec.Containers...) {
			checkPinned(t, o.file+" container "+c.Name, c.Image)
		}
	}
	// The kustomization applies every manifest but the placeholder Secret.
	var want []string
	for _, o := range k.all {
		if o.Kind != "Kustomization" && o.Kind != "Secret" && !slices.Contains(want, o.file) {
			want = append(want, o.file)
		}
	}
	got := slices.Clone(k.kustomize.Resources)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources %v, want %v (every manifest but secret.yaml)", got, want)
	}
	if slices.Contains(k.kustomize.Resources, k.secret.file) {
		t.Errorf("kustomization.yaml applies %s: its placeholders would replace the real Secret", k.secret.file)
	}
}

func TestK8sConfigAndSecrets(t *testing.T) {
	k := loadK8s(t)
	cfg := k.config(t)
	known := workerEnvNames(t)
	for key := range cfg {
		if !known[key] {
			t.Errorf("ConfigMap key %s: not a variable the worker reads (worker/*.go)", key)
		}
	}
	for _, name := range []string{"ESCROWFLOW_MASTER_SECRET", "ESCROWFLOW_CODEC_KEYS", "ESCROWFLOW_CODEC_TOKEN"} {
		if _, ok := cfg[name]; ok {
			t.Errorf("ConfigMap holds the secret %s", name)
		}
	}
	for _, must := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "ESCROWFLOW_WALLET_DIR", "ESCROWFLOW_MASTER_SECRET_FILE", "ESCROWFLOW_CODEC_KEYS_FILE", "ESCROWFLOW_METRICS_ADDRESS", "ESCROWFLOW_MAX_CONCURRENT_CALLS", "ESCROWFLOW_POOL_SIZE"} {
		if cfg[must] == "" {
			t.Errorf("ConfigMap: no %s", must)
		}
	}

	// The Secret only shows the shape: placeholders, clearly marked, that
	// the worker refuses.
	if len(k.secret.Data) != 0 {
		t.Error("secret.yaml has data: (base64); keep only marked placeholders in stringData")
	}
	keys := map[string]string{}
	for key, v := range k.secret.StringData {
		s, _ := v.(string)
		keys[key] = s
		if !strings.Contains(s, "REPLACE-ME") {
			t.Errorf("secret.yaml %s=%q: not a marked placeholder", key, s)
		}
	}
	if _, err := activities.NewPasswords([]byte(strings.TrimSpace(keys["master.key"]))); err == nil {
		t.Error("the placeholder master.key is accepted as a master secret")
	}
	if _, err := codec.ParseKeys(keys["codec.keys"]); err == nil {
		t.Error("the placeholder codec.keys is accepted as a key ring")
	}

	// The worker gets the ConfigMap as its environment and the Secret as
	// files, exactly where the *_FILE variables point.
	w := k.worker(t)
	fromConfigMap := false
	for _, ef := range w.EnvFrom {
		if ef.SecretRef != nil {
			t.Error("worker: envFrom a Secret; secrets must be files")
		}
		if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == k.configMap.Metadata.Name {
			fromConfigMap = true
		}
	}
	if !fromConfigMap {
		t.Errorf("worker: no envFrom configMapRef %s", k.configMap.Metadata.Name)
	}
	for _, e := range w.Env {
		if !known[e.Name] {
			t.Errorf("worker env %s: not a variable the worker reads", e.Name)
		}
	}
	mounts := map[string]string{}
	for _, m := range w.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	files := map[string]bool{}
	for _, v := range k.statefulSet.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != k.secret.Metadata.Name {
			t.Errorf("volume %s: Secret %s, want %s", v.Name, v.Secret.SecretName, k.secret.Metadata.Name)
		}
		// 0440 (YAML 1.1 octal, as kubectl reads it): owner and fsGroup.
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
			t.Errorf("volume %s: defaultMode %s, want 0440 (%d)", v.Name, deref(v.Secret.DefaultMode), 0o440)
		}
		if mounts[v.Name] == "" {
			t.Errorf("secret volume %s is not mounted", v.Name)
		}
		for _, it := range v.Secret.Items {
			if _, ok := keys[it.Key]; !ok {
				t.Errorf("secret volume item %s: not a key of the Secret", it.Key)
			}
			files[path.Join(mounts[v.Name], it.Path)] = true
		}
	}
	for _, name := range []string{"ESCROWFLOW_MASTER_SECRET_FILE", "ESCROWFLOW_CODEC_KEYS_FILE"} {
		if !files[cfg[name]] {
			t.Errorf("%s=%s is not a mounted Secret file (%v)", name, cfg[name], files)
		}
	}
	if len(files) != len(keys) {
		t.Errorf("Secret keys %v, mounted files %v: want each key mounted once", keys, files)
	}
	if d := parseDockerfile(t); d.env["ESCROWFLOW_WALLET_DIR"] != cfg["ESCROWFLOW_WALLET_DIR"] {
		t.Errorf("deploy/Dockerfile wallet dir %s, ConfigMap %s", d.env["ESCROWFLOW_WALLET_DIR"], cfg["ESCROWFLOW_WALLET_DIR"])
	}
}

func TestK8sStatefulSet(t *testing.T) {
	k := loadK8s(t)
	cfg := k.config(t)
	sts := k.statefulSet
	pod := sts.Template.Spec
	w := k.worker(t)

	// Wallets are local state: a claim per replica, mounted so that the
	// wallet dir (and its .worker-id) is on it.
	var claims []string
	for _, raw := range sts.VolumeClaimTemplates {
		var c struct {
			Metadata metadata `json:"metadata"`
			Spec     struct {
				AccessModes []string `json:"accessModes"`
				Resources   struct {
					Requests map[string]string `json:"requests"`
				} `json:"resources"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		claims = append(claims, c.Metadata.Name)
		if c.Spec.Resources.Requests["storage"] == "" || !slices.Contains(c.Spec.AccessModes, "ReadWriteOnce") {
			t.Errorf("volumeClaimTemplate %s: want ReadWriteOnce and a storage request", c.Metadata.Name)
		}
	}
	if len(claims) != 1 {
		t.Fatalf("volumeClaimTemplates %v, want one", claims)
	}
	var walletMount string
	for _, m := range w.VolumeMounts {
		if m.Name == claims[0] {
			walletMount = m.MountPath
		}
	}
	if walletMount == "" || !under(cfg["ESCROWFLOW_WALLET_DIR"], walletMount) {
		t.Errorf("wallet dir %s is not on the claim %s (mounted at %q)", cfg["ESCROWFLOW_WALLET_DIR"], claims[0], walletMount)
	}
	// The worker chmods the wallet dir, so it must own it: a folder it
	// creates inside the mount, not the volume's root.
	if cfg["ESCROWFLOW_WALLET_DIR"] == walletMount {
		t.Errorf("wallet dir is the volume's root %s; use a folder inside it", walletMount)
	}
	if sts.PVCRetention["whenScaled"] != "Retain" || sts.PVCRetention["whenDeleted"] != "Retain" {
		t.Errorf("persistentVolumeClaimRetentionPolicy %v: want Retain (wallets outlive pods)", sts.PVCRetention)
	}

	// Labels and the governing headless Service.
	for key, v := range sts.Selector.MatchLabels {
		if sts.Template.Metadata.Labels[key] != v {
			t.Errorf("selector %s=%s does not match the pod template", key, v)
		}
	}
	headless, ok := k.services[sts.ServiceName]
	if !ok || headless.ClusterIP != "None" {
		t.Errorf("serviceName %q: want a headless Service of that name", sts.ServiceName)
	}
	for name, s := range k.services {
		for key, v := range s.Selector {
			if sts.Template.Metadata.Labels[key] != v {
				t.Errorf("Service %s selects %s=%s, which the pods do not carry", name, key, v)
			}
		}
	}

	// Metrics: on the pod's network, a named container port, a Service,
	// and the liveness probe.
	host, port := hostPort(t, cfg["ESCROWFLOW_METRICS_ADDRESS"])
	if host != "0.0.0.0" {
		t.Errorf("ESCROWFLOW_METRICS_ADDRESS=%s: want 0.0.0.0 (probes and Prometheus reach the pod IP)", cfg["ESCROWFLOW_METRICS_ADDRESS"])
	}
	portName := ""
	for _, p := range w.Ports {
		if p.ContainerPort == port {
			portName = p.Name
		}
	}
	if portName == "" || port != 9464 {
		t.Errorf("no container port for metrics port %d (want 9464)", port)
	}
	metricsSvc := false
	for _, s := range k.services {
		for _, p := range s.Ports {
			if p.Port == 9464 && p.TargetPort == portName && s.ClusterIP != "None" {
				metricsSvc = true
			}
		}
	}
	if !metricsSvc {
		t.Error("no (non-headless) Service for the metrics port 9464")
	}
	for _, pr := range []struct {
		which, path string
		p           *probe
	}{{"liveness", worker.LivePath, w.LivenessProbe}, {"readiness", worker.ReadyPath, w.ReadinessProbe}} {
		p := pr.p
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != pr.path || (p.HTTPGet.Port != portName && p.HTTPGet.Port != float64(port)) {
			t.Errorf("%s probe %+v: want httpGet %s on the metrics port", pr.which, p, pr.path)
		}
	}

	// Shutdown grace.
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= minGrace(t) {
		t.Errorf("terminationGracePeriodSeconds %s: want more than %v (2 × shutdown timeout + pool stop)", deref(g), minGrace(t))
	}

	// Security context.
	sc := pod.SecurityContext
	d := parseDockerfile(t)
	uid, _, _ := strings.Cut(d.user, ":")
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || strconv.FormatInt(*sc.RunAsUser, 10) != uid || sc.FSGroup == nil {
		t.Errorf("pod securityContext: want runAsNonRoot, runAsUser %s (the image's USER) and fsGroup", uid)
	}
	csc := w.SecurityContext
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Error("worker securityContext: want readOnlyRootFilesystem, no privilege escalation, drop ALL")
	}

	// Resources: a pool of ESCROWFLOW_POOL_SIZE wallet-rpc processes at
	// about 40 MB each plus the worker; the CPU request bounds the wallet
	// calls that run at once.
	pool, err := strconv.Atoi(cfg["ESCROWFLOW_POOL_SIZE"])
	if err != nil {
		t.Fatal(err)
	}
	mem := quantity(t, w.Resources.Requests["memory"])
	if need := int64(pool)*40<<20 + 128<<20; mem < need {
		t.Errorf("memory request %s: want at least %d MiB for a pool of %d", w.Resources.Requests["memory"], need>>20, pool)
	}
	if cpu := w.Resources.Requests["cpu"]; cpu == "" || cpu != cfg["ESCROWFLOW_MAX_CONCURRENT_CALLS"] {
		t.Errorf("cpu request %q: want it equal to ESCROWFLOW_MAX_CONCURRENT_CALLS (%s)", cpu, cfg["ESCROWFLOW_MAX_CONCURRENT_CALLS"])
	}
	if lim := w.Resources.Limits["memory"]; lim != "" && quantity(t, lim) < mem {
		t.Errorf("memory limit %s below the request", lim)
	}
}

// deref formats *p, or "unset".
func deref[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// quantity parses the memory quantities the manifests use (Mi, Gi).
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	for suffix, mul := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("quantity %q: %v", q, err)
			}
			return v * mul
		}
	}
	t.Fatalf("quantity %q: want Ki, Mi or Gi", q)
	return 0
}

func TestK8sRegistersSearchAttribute(t *testing.T) {
	k := loadK8s(t)
	cfg := k.config(t)
	cs := k.job.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Job: %d containers, want 1", len(cs))
	}
	c := cs[0]
	script := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	for _, want := range []string{
		"temporal operator search-attribute create",
		"--name EscrowState --type Keyword",
		"grep -qw EscrowState",
		`--namespace "$TEMPORAL_NAMESPACE"`,
		`--address "$TEMPORAL_ADDRESS"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("Job does not run %q:\n%s", want, script)
		}
	}
	known := workerEnvNames(t)
	for _, e := range c.Env {
		ref := e.ValueFrom
		if ref == nil || ref.ConfigMapKeyRef == nil || ref.ConfigMapKeyRef.Name != k.configMap.Metadata.Name || ref.ConfigMapKeyRef.Key != e.Name {
			t.Errorf("Job env %s: want it from the worker's ConfigMap key of the same name", e.Name)
		}
		if _, ok := cfg[e.Name]; !ok || !known[e.Name] {
			t.Errorf("Job env %s: not a ConfigMap key the worker reads", e.Name)
		}
	}
	// The same admin tools as docker-compose.yml.
	p := loadCompose(t, map[string]string{})
	if img := service(t, p, svcAdminTools).Image; img != c.Image {
		t.Errorf("Job image %s, docker-compose.yml admin tools %s", c.Image, img)
	}
}
