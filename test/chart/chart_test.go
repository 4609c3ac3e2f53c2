package chart

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// repoFile is a path inside the repository, found from this source file.
func repoFile(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

var (
	chartDir   = repoFile("deploy/helm/vnodediag")
	fullValues = repoFile("deploy/helm/vnodediag/ci/full-values.yaml")
)

// helm finds the pinned helm CLI: $HELM, bin/tools/helm (`make helm`), or
// PATH. Without one the chart tests skip, except in CI, where `make test`
// builds it and its absence is a failure.
func helm(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("HELM"), repoFile("bin/tools/helm")} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("helm not found: `make helm` builds the pinned helm into bin/tools (make test does)")
	}
	t.Skip("helm not found: `make helm` builds the pinned helm into bin/tools, or set HELM")
	return ""
}

func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// render is `helm template` of the chart into namespace ns, parsed.
func render(t *testing.T, ns string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "vnodediag", chartDir, "--namespace", ns}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func parse(text string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.UnmarshalStrict(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			return u
		}
	}
	return nil
}

func as[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatalf("no %T rendered", new(T))
	}
	b, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	v := new(T)
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return v
}

func kinds(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, u := range objs {
		ks = append(ks, u.GetKind()+"/"+u.GetName())
	}
	return ks
}

// TestLint: helm lint, strict, with the defaults and with every option on.
func TestLint(t *testing.T) {
	if out, err := runHelm(t, "lint", "--strict", chartDir); err != nil {
		t.Error(err)
	} else if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("helm lint: %s", out)
	}
	if out, err := runHelm(t, "lint", "--strict", chartDir, "--values", fullValues); err != nil {
		t.Error(err)
	} else if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("helm lint (full values): %s", out)
	}
}

// TestManifestsAreFresh: deploy/kubernetes and deploy/agent are what the
// chart renders now (`make manifests`), and the chart's alert rules are
// deploy/prometheus/rules.yaml where that file exists.
func TestManifestsAreFresh(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, repoFile("hack/render-manifests.sh"), helm(t), out)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("render-manifests.sh: %v\n%s", err, b)
	}
	for _, f := range []string{"deploy/kubernetes/deployment.yaml", "deploy/kubernetes/rbac.yaml", "deploy/agent/agent.yaml"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(repoFile(f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make manifests` and commit it", f)
		}
	}
	if rules, err := os.ReadFile(repoFile("deploy/prometheus/rules.yaml")); err == nil {
		chart, err := os.ReadFile(filepath.Join(chartDir, "files/rules.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rules, chart) {
			t.Error("deploy/helm/vnodediag/files/rules.yaml differs from deploy/prometheus/rules.yaml: run `make manifests`")
		}
	}
}

// TestRenderDefaults: the defaults render the daemon, its read-only RBAC,
// config, NetworkPolicy, PDB and the agent; no Secret; hardened pods. The
// daemon has no TLS, so its gRPC API listens on the pod's loopback only:
// no --insecure-listen, no gRPC port on the pod, the Service or the
// NetworkPolicy, and no probe of it (the kubelet probes the pod's address).
func TestRenderDefaults(t *testing.T) {
	objs := render(t, "vnodediag")
	for _, want := range []string{"ServiceAccount/vnodediag", "ServiceAccount/vnodediag-agent", "ClusterRole/vnodediag-read",
		"ClusterRoleBinding/vnodediag-read", "Role/vnodediag-agent-logs", "RoleBinding/vnodediag-agent-logs", "ConfigMap/vnodediag",
		"ConfigMap/vnodediag-agent", "Deployment/vnodediag", "Deployment/vnodediag-agent",
		"NetworkPolicy/vnodediag", "PodDisruptionBudget/vnodediag"} {
		if !slices.Contains(kinds(objs), want) {
			t.Errorf("default render lacks %s (has %v)", want, kinds(objs))
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "Secret", "CronJob", "ServiceMonitor", "PrometheusRule", "Namespace", "Service":
			t.Errorf("default render has %s %s", u.GetKind(), u.GetName())
		}
	}
	dep := as[appsv1.Deployment](t, find(objs, "Deployment", "vnodediag"))
	// serve's --shutdown-grace (30 s) and up to 5 s each for the metrics
	// listener and the BGP speaker: the kubelet must not kill it sooner.
	if g := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g < 40 {
		t.Errorf("terminationGracePeriodSeconds %v, want above 40 (serve's grace and its closing)", g)
	}
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if spec.HostNetwork || len(spec.Volumes) != 1 {
		t.Errorf("default daemon: hostNetwork %v, volumes %v", spec.HostNetwork, spec.Volumes)
	}
	checkLoopback(t, "default render", objs)
	if c.ReadinessProbe != nil || c.LivenessProbe != nil {
		t.Errorf("default daemon probes: %+v %+v, want none (nothing listens on the pod's address)", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.Image != "vnodediag:0.1.0" {
		t.Errorf("image %q, want the chart's appVersion", c.Image)
	}
	checkHardened(t, "daemon", &spec)
	agent := as[appsv1.Deployment](t, find(objs, "Deployment", "vnodediag-agent"))
	checkHardened(t, "agent", &agent.Spec.Template.Spec)
	if agent.Spec.Template.Labels["app.kubernetes.io/name"] != "vnodediag-agent" {
		t.Errorf("agent pod labels %v: the agent source selects app.kubernetes.io/name=vnodediag-agent", agent.Spec.Template.Labels)
	}
	cfg := as[corev1.ConfigMap](t, find(objs, "ConfigMap", "vnodediag")).Data["config.yaml"]
	if !strings.Contains(cfg, "agent:\n  namespace: vnodediag") {
		t.Errorf("config lacks the agents' namespace:\n%s", cfg)
	}
	// The kustomize base, as committed, is the same secure default.
	b, err := os.ReadFile(repoFile("deploy/kubernetes/deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	checkLoopback(t, "deploy/kubernetes", base)
}

// listenArgs are the daemon's --listen values and whether it has
// --insecure-listen and any --tls- flag.
func listenArgs(c corev1.Container) (listen []string, insecure, tls bool) {
	for _, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--listen"):
			listen = append(listen, a)
		case strings.HasPrefix(a, "--insecure-listen"):
			insecure = true
		case strings.HasPrefix(a, "--tls-"):
			tls = true
		}
	}
	return listen, insecure, tls
}

// checkLoopback: the daemon's gRPC API listens in plaintext on the pod's
// loopback only, and nothing (container port, Service, NetworkPolicy)
// offers it on the pod's address.
func checkLoopback(t *testing.T, what string, objs []*unstructured.Unstructured) {
	t.Helper()
	dep := as[appsv1.Deployment](t, find(objs, "Deployment", "vnodediag"))
	c := dep.Spec.Template.Spec.Containers[0]
	listen, insecure, tls := listenArgs(c)
	if !slices.Equal(listen, []string{"--listen=127.0.0.1:7443"}) || insecure || tls {
		t.Errorf("%s: daemon args %v: want --listen=127.0.0.1:7443 only, no --insecure-listen, no TLS", what, c.Args)
	}
	for _, p := range c.Ports {
		if p.Name == "grpc" || p.ContainerPort == 7443 {
			t.Errorf("%s: container port %+v leads nowhere: the API listens on loopback", what, p)
		}
	}
	if svc := find(objs, "Service", "vnodediag"); svc != nil {
		for _, p := range as[corev1.Service](t, svc).Spec.Ports {
			if p.Name == "grpc" || p.Port == 7443 {
				t.Errorf("%s: Service port %+v leads nowhere: the API listens on loopback", what, p)
			}
		}
	}
	if np := find(objs, "NetworkPolicy", "vnodediag"); np != nil {
		if rules := fmt.Sprint(np.Object["spec"]); strings.Contains(rules, "grpc") || strings.Contains(rules, "7443") {
			t.Errorf("%s: NetworkPolicy opens the gRPC port: %s", what, rules)
		}
	}
}

// TestRenderListen: how the gRPC API listens with TLS (0.0.0.0, TLS, a TCP
// probe), with the explicit opt-in daemon.insecureListen (0.0.0.0,
// plaintext, --insecure-listen, the kubelet's gRPC probe of the API's own
// health: the overall one is NOT_SERVING while a source fails, and a
// daemon restarted or taken out of its Service then could not say why),
// and on loopback with metrics (probes through the metrics listener).
func TestRenderListen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		listen string
		// insecure, tls: --insecure-listen and the --tls- flags wanted.
		insecure, tls bool
		// svcPorts: the Service's ports (nil: no Service); probe: the readiness probe's kind.
		svcPorts []string
		probe    string
	}{
		{"tls", []string{"--set", "tls.enabled=true", "--set", "tls.secretName=vnodediag-tls"}, "--listen=0.0.0.0:7443", false, true, []string{"grpc"}, "tcpSocket grpc"},
		{"insecure listen", []string{"--set", "daemon.insecureListen=true"}, "--listen=0.0.0.0:7443", true, false, []string{"grpc"}, "grpc 7443 vnodediag.v1.DiagnosticsService"},
		{"insecure listen with metrics", []string{"--set", "daemon.insecureListen=true", "--set", "metrics.enabled=true", "--set", "daemon.port=9443"},
			"--listen=0.0.0.0:9443", true, false, []string{"grpc", "metrics"}, "grpc 9443 vnodediag.v1.DiagnosticsService"},
		{"insecure listen false as a string", []string{"--set-string", "daemon.insecureListen=false"}, "--listen=127.0.0.1:7443", false, false, nil, ""},
		{"loopback on another port", []string{"--set", "daemon.port=9443"}, "--listen=127.0.0.1:9443", false, false, nil, ""},
		{"loopback with metrics", []string{"--set", "metrics.enabled=true"}, "--listen=127.0.0.1:7443", false, false, []string{"metrics"}, "httpGet metrics /"},
		{"loopback with metrics and web config", []string{"--set", "metrics.enabled=true", "--set", "metrics.webConfigSecretName=web"},
			"--listen=127.0.0.1:7443", false, false, []string{"metrics"}, "tcpSocket metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "vnodediag", tc.args...)
			dep := as[appsv1.Deployment](t, find(objs, "Deployment", "vnodediag"))
			c := dep.Spec.Template.Spec.Containers[0]
			listen, insecure, tls := listenArgs(c)
			if !slices.Equal(listen, []string{tc.listen}) || insecure != tc.insecure || tls != tc.tls {
				t.Errorf("daemon args %v: want %s, --insecure-listen %v, TLS %v", c.Args, tc.listen, tc.insecure, tc.tls)
			}
			var svcPorts []string
			if svc := find(objs, "Service", "vnodediag"); svc != nil {
				for _, p := range as[corev1.Service](t, svc).Spec.Ports {
					svcPorts = append(svcPorts, p.Name)
				}
			}
			if !slices.Equal(svcPorts, tc.svcPorts) {
				t.Errorf("Service ports %v, want %v", svcPorts, tc.svcPorts)
			}
			var ports []string
			for _, p := range c.Ports {
				ports = append(ports, p.Name)
			}
			if !slices.Equal(ports, tc.svcPorts) {
				t.Errorf("container ports %v, want %v", ports, tc.svcPorts)
			}
			np := as[networkingv1.NetworkPolicy](t, find(objs, "NetworkPolicy", "vnodediag"))
			var open []string
			for _, r := range np.Spec.Ingress {
				for _, p := range r.Ports {
					open = append(open, p.Port.String())
				}
			}
			if !slices.Equal(open, tc.svcPorts) {
				t.Errorf("NetworkPolicy opens %v, want %v", open, tc.svcPorts)
			}
			if got := probeKind(c.ReadinessProbe); got != tc.probe {
				t.Errorf("readiness probe %q, want %q", got, tc.probe)
			}
			if got := probeKind(c.LivenessProbe); got != tc.probe {
				t.Errorf("liveness probe %q, want %q", got, tc.probe)
			}
			if tc.insecure {
				notes, err := runHelm(t, append([]string{"install", "vnodediag", chartDir, "--namespace", "vnodediag", "--dry-run=client"}, tc.args...)...)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(notes, "WARNING (daemon.insecureListen)") {
					t.Errorf("the notes do not warn of the plaintext API:\n%s", notes)
				}
			}
		})
	}
}

func probeKind(p *corev1.Probe) string {
	switch {
	case p == nil:
		return ""
	case p.GRPC != nil:
		service := `""`
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc %d %s", p.GRPC.Port, service)
	case p.TCPSocket != nil:
		return "tcpSocket " + p.TCPSocket.Port.String()
	case p.HTTPGet != nil:
		return "httpGet " + p.HTTPGet.Port.String() + " " + p.HTTPGet.Path
	}
	return fmt.Sprintf("%+v", p.ProbeHandler)
}

func checkHardened(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %+v: want non-root, seccomp RuntimeDefault", what, psc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
			!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s securityContext %+v", what, c.Name, sc)
		}
	}
}

// TestRenderFull: every option on — host network and read-only host
// mounts, TLS, mTLS, token, metrics with web config, secrets by reference,
// RRSA annotations, ServiceMonitor, PrometheusRule, CronJob.
func TestRenderFull(t *testing.T) {
	objs := render(t, "vnodediag", "--values", fullValues)
	for _, u := range objs {
		if u.GetKind() == "Secret" {
			t.Errorf("the chart renders Secret %s: secrets are referenced, never made from values", u.GetName())
		}
	}
	dep := as[appsv1.Deployment](t, find(objs, "Deployment", "vnodediag"))
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v, dnsPolicy %q", spec.HostNetwork, spec.DNSPolicy)
	}
	for _, want := range []string{"--tls-cert-file=/etc/vnodediag/tls/tls.crt", "--tls-key-file=/etc/vnodediag/tls/tls.key",
		"--client-ca-file=/etc/vnodediag/client-ca/ca.crt", "--token-file=/etc/vnodediag/token/token", "--metrics-address=0.0.0.0:9090",
		"--web-config-file=/etc/vnodediag/web-config/web-config.yml"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("daemon args lack %s: %v", want, c.Args)
		}
	}
	if slices.Contains(c.Args, "--insecure-listen") {
		t.Errorf("daemon with TLS has --insecure-listen: %v", c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil {
		t.Errorf("with TLS the probe connects (the kubelet's gRPC probe has no TLS): %+v", c.ReadinessProbe)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.MountPath)
		}
	}
	for _, p := range []string{"/host/proc", "/host/etc", "/etc/vnodediag/secrets/bgp", "/etc/vnodediag/tls", "/etc/vnodediag/token"} {
		if _, ok := mounts[p]; !ok {
			t.Errorf("no mount at %s", p)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "vnodediag-cloud" {
		t.Errorf("cloud credentials: envFrom %+v", c.EnvFrom)
	}
	sa := as[corev1.ServiceAccount](t, find(objs, "ServiceAccount", "vnodediag"))
	if sa.Annotations["pod-identity.alibabacloud.com/role-name"] != "vnodediag-read" {
		t.Errorf("RRSA annotation: %v", sa.Annotations)
	}
	cfg := as[corev1.ConfigMap](t, find(objs, "ConfigMap", "vnodediag")).Data["config.yaml"]
	if !strings.Contains(cfg, "hostRoot: /host") || strings.Contains(cfg, "password:") {
		t.Errorf("config:\n%s", cfg)
	}
	cj := as[batchv1.CronJob](t, find(objs, "CronJob", ""))
	cjc := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if cj.Spec.Schedule != "0 * * * *" || !slices.Equal(cjc.Args[:3], []string{"diagnose", "--config=/etc/vnodediag/config.yaml", "--output=json"}) {
		t.Errorf("CronJob %q %v", cj.Spec.Schedule, cjc.Args)
	}
	checkHardened(t, "cronjob", &cj.Spec.JobTemplate.Spec.Template.Spec)
	rule := find(objs, "PrometheusRule", "")
	if rule == nil {
		t.Fatal("no PrometheusRule")
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	text := fmt.Sprint(groups)
	for _, metric := range []string{"vnodediag_check_status", "vnodediag_source_not_serving_info", "vnodediag_bgp_session_established", "VnodediagSlowRun"} {
		if !strings.Contains(text, metric) {
			t.Errorf("PrometheusRule lacks %s", metric)
		}
	}
	if find(objs, "ServiceMonitor", "") == nil || find(objs, "Namespace", "vnodediag") == nil {
		t.Errorf("no ServiceMonitor or Namespace: %v", kinds(objs))
	}
}

// TestRefusals: values that would put a secret in a ConfigMap, TLS
// without its Secret, daemon.insecureListen with TLS (contradictory: the
// daemon refuses --insecure-listen with TLS) or with a token (it would
// cross the network in clear) fail the render with the value named.
func TestRefusals(t *testing.T) {
	const secret = "Pq2-inline-secret"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"inline bgp password", []string{"--set-json", `config={"bgp":{"localASN":65010,"routerID":"192.0.2.10","peers":[{"address":"192.0.2.1","asn":65001,"password":"` + secret + `"}]}}`},
			"config.bgp.peers[0].password: no password in values"},
		{"tls without secret", []string{"--set", "tls.enabled=true"}, "tls.secretName: a kubernetes.io/tls Secret is needed"},
		{"tls and insecure listen", []string{"--set", "tls.enabled=true", "--set", "tls.secretName=vnodediag-tls", "--set", "daemon.insecureListen=true"},
			"daemon.insecureListen and tls.enabled contradict each other"},
		{"token and insecure listen", []string{"--set", "token.secretName=vnodediag-token", "--set", "daemon.insecureListen=true"},
			"token.secretName with daemon.insecureListen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runHelm(t, append([]string{"template", "vnodediag", chartDir}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(strings.ReplaceAll(err.Error(), strings.Join(tc.args, " "), ""), secret) {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
}

// TestConfigLoads: the config.yaml the chart renders (defaults and every
// section) is a configuration vnodediag accepts, decoded strictly and
// validated — the BGP password read from its file as the mounted Secret
// would provide it.
func TestConfigLoads(t *testing.T) {
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "core-1"), []byte("from-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"defaults": nil, "full": {"--values", fullValues}} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, "vnodediag", args...)
			cfg := as[corev1.ConfigMap](t, find(objs, "ConfigMap", "vnodediag")).Data["config.yaml"]
			cfg = strings.ReplaceAll(cfg, "/etc/vnodediag/secrets/bgp", secrets)
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := app.Load(path, app.Overrides{}); err != nil {
				t.Errorf("the chart's config does not load: %v\n%s", err, cfg)
			}
		})
	}
}

// Minimal CRDs of the Prometheus Operator's two kinds, so that the API
// server accepts the objects: their specs are not validated (the
// operator's full schemas are not vendored here); everything else is
// validated against the real built-in schemas.
func operatorCRD(kind, plural string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + ".monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com", "scope": "Namespaced",
			"names": map[string]any{"kind": kind, "plural": plural, "singular": strings.ToLower(kind), "listKind": kind + "List"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{
				"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
					"spec": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}},
		},
	}}
}

// TestServerSideDryRun applies every object the chart renders, with the
// defaults, with daemon.insecureListen, on loopback with metrics and with
// every option on, to a real API server (envtest) as a
// server-side apply with strict field validation and a dry run: schema,
// unknown fields and admission are the API server's own. The pods of the
// default render are admitted in a namespace that enforces Pod Security
// "restricted".
func TestServerSideDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no API server")
	}
	helm(t)
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(lab.Config)
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, crd := range []*unstructured.Unstructured{operatorCRD("ServiceMonitor", "servicemonitors"), operatorCRD("PrometheusRule", "prometheusrules")} {
		if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(lab.Config)
	if err != nil {
		t.Fatal(err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	for try := 0; ; try++ {
		cached.Invalidate()
		_, err1 := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1")
		_, err2 := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "PrometheusRule"}, "v1")
		if err1 == nil && err2 == nil {
			break
		}
		if try == 100 {
			t.Fatalf("the CRDs are not served: %v, %v", err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	apply := func(u *unstructured.Unstructured) error {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return err
		}
		data, err := u.MarshalJSON()
		if err != nil {
			return err
		}
		force := true
		_, err = dyn.Resource(m.Resource).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "vnodediag-chart-test", DryRun: []string{metav1.DryRunAll}, Force: &force, FieldValidation: "Strict"})
		return err
	}
	// The kustomize bases, as committed (namespace vnodediag).
	t.Run("kustomize bases", func(t *testing.T) {
		var objs []*unstructured.Unstructured
		for _, f := range []string{"deploy/kubernetes/deployment.yaml", "deploy/kubernetes/rbac.yaml", "deploy/agent/agent.yaml"} {
			b, err := os.ReadFile(repoFile(f))
			if err != nil {
				t.Fatal(err)
			}
			o, err := parse(string(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o...)
		}
		if _, err := lab.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vnodediag"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if err := apply(u); err != nil {
				t.Errorf("server-side dry-run apply of %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	})
	for _, tc := range []struct {
		name       string
		args       []string
		restricted bool
	}{
		{"defaults", nil, true},
		{"insecure listen", []string{"--set", "daemon.insecureListen=true"}, true},
		{"loopback with metrics", []string{"--set", "metrics.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"}, true},
		{"full", []string{"--values", fullValues}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := uniqueName(t, "vnodediag-chart")
			labels := map[string]string{}
			if tc.restricted {
				labels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}
			}
			if _, err := lab.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = lab.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
			})
			objs := render(t, ns, tc.args...)
			if len(objs) < 10 {
				t.Fatalf("only %d objects rendered", len(objs))
			}
			for _, u := range objs {
				if err := apply(u); err != nil {
					t.Errorf("server-side dry-run apply of %s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			if !tc.restricted {
				return
			}
			// The pods the Deployments would create, admitted by PSA "restricted".
			for _, name := range []string{"vnodediag", "vnodediag-agent"} {
				dep := as[appsv1.Deployment](t, find(objs, "Deployment", name))
				pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-psa", Labels: dep.Spec.Template.Labels},
					Spec:       *dep.Spec.Template.Spec.DeepCopy()}
				b, err := yaml.Marshal(pod)
				if err != nil {
					t.Fatal(err)
				}
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal(b, &u.Object); err != nil {
					t.Fatal(err)
				}
				if err := apply(u); err != nil {
					t.Errorf("the %s pod is refused in a restricted namespace: %v", name, err)
				}
			}
		})
	}
}
