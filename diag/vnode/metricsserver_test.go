package vnode

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

var goodFlags = []string{"--cert-dir=/tmp", "--secure-port=4443", "--kubelet-use-node-status-port", "--kubelet-insecure-tls",
	"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname", "--metric-resolution=15s"}

func msDeployment(ns, name, image string, args []string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"k8s-app": "metrics-server"}}}
	d.Spec.Template.Labels = map[string]string{"k8s-app": "metrics-server"}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "metrics-server", Image: image, Args: args}}
	return d
}

var availableAPI = &kube.APIService{Name: metricsAPIService, Service: "kube-system/metrics-server", Available: "True", Reason: "Passed", Message: "all checks passed"}

func TestMetricsServerContainer(t *testing.T) {
	sidecar := msDeployment("kube-system", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.5.2", nil)
	sidecar.Spec.Template.Spec.Containers = append([]corev1.Container{{Name: "proxy", Image: "envoyproxy/envoy:v1.31"}}, sidecar.Spec.Template.Spec.Containers...)
	helm := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: "obs-metrics-server"}}
	helm.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: "mirror.example.com/ms:0.5.2"}}
	byLabel := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "metrics"}}
	byLabel.Spec.Template.Labels = map[string]string{"app.kubernetes.io/name": "metrics-server"}
	byLabel.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: "mirror.example.com/ms:0.5.2"}}
	ksm := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-state-metrics", Labels: map[string]string{"app": "kube-state-metrics"}}}
	ksm.Spec.Template.Spec.Containers = []corev1.Container{{Name: "kube-state-metrics", Image: "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"}}
	for _, tt := range []struct {
		d    *appsv1.Deployment
		want int
	}{{sidecar, 1}, {helm, 0}, {byLabel, 0}, {ksm, -1}} {
		if got := metricsServerContainer(tt.d); got != tt.want {
			t.Errorf("metricsServerContainer(%s/%s) = %d, want %d", tt.d.Namespace, tt.d.Name, got, tt.want)
		}
	}
}

func TestFlags(t *testing.T) {
	args := []string{"--kubelet-insecure-tls=false", "--kubelet-preferred-address-types", "Hostname,InternalIP", "--secure-port=4443", "--kubelet-use-node-status-port=true"}
	fs, err := msCommandLine(args)
	if err != nil {
		t.Fatal(err)
	}
	if on, _ := fs.GetBool("kubelet-insecure-tls"); on {
		t.Error("--kubelet-insecure-tls=false read as on")
	}
	if on, _ := fs.GetBool("kubelet-use-node-status-port"); !on {
		t.Error("--kubelet-use-node-status-port=true read as off")
	}
	if v, _ := fs.GetString("kubelet-preferred-address-types"); !fs.Changed("kubelet-preferred-address-types") || v != "Hostname,InternalIP" {
		t.Errorf("space-separated value: %q", v)
	}
	// Booleans take what strconv.ParseBool takes, as metrics-server's pflag does.
	for _, a := range []string{"--kubelet-insecure-tls=TRUE", "--kubelet-insecure-tls=1", "--kubelet-insecure-tls=t"} {
		if fs, _ := msCommandLine([]string{a}); fs == nil || !fs.Changed("kubelet-insecure-tls") {
			t.Errorf("%s not read", a)
		} else if on, _ := fs.GetBool("kubelet-insecure-tls"); !on {
			t.Errorf("%s read as off", a)
		}
	}
	if problems, _ := flagProblems([]string{"--kubelet-insecure-tls=maybe"}); len(problems) != 1 || !strings.Contains(problems[0], "does not parse") {
		t.Errorf("an unparseable boolean: %q", problems)
	}
	problems, _ := flagProblems(args)
	want := "--kubelet-insecure-tls is not set; --kubelet-preferred-address-types=Hostname,InternalIP does not try InternalIP first"
	if strings.Join(problems, "; ") != want {
		t.Errorf("problems %q\nwant %q", strings.Join(problems, "; "), want)
	}
	got := strings.Join(fixedArgs(args), " ")
	if got != "--secure-port=4443 --kubelet-use-node-status-port --kubelet-insecure-tls --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname" {
		t.Errorf("fixedArgs = %s", got)
	}
	if p, _ := flagProblems([]string{"--kubelet-preferred-address-types=InternalIP,Hostname", "--kubelet-insecure-tls", "--kubelet-use-node-status-port"}); len(p) != 0 {
		t.Errorf("InternalIP first is accepted, got %v", p)
	}
}

func TestEvaluateMetricsServer(t *testing.T) {
	const upstream = "registry.k8s.io/metrics-server/metrics-server"
	tests := []struct {
		name     string
		vnodes   int
		deps     []*appsv1.Deployment
		api      *kube.APIService
		apiErr   error
		statuses string
		summary  string
		remedy   []string // substrings of the first result's remediation
		noRemedy []string
	}{
		{name: "no metrics-server", vnodes: 1, api: nil, statuses: "SKIP", summary: "no metrics-server Deployment found"},
		{name: "no VNode", vnodes: 0, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.7.2", nil)}, api: availableAPI,
			statuses: "SKIP", summary: "no VNode in the cluster, so metrics-server compatibility with VNodes does not apply"},
		{name: "v0.6.4 fails", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.6.4", goodFlags)}, api: availableAPI,
			statuses: "FAIL", summary: "metrics-server kube-system/metrics-server is v0.6.4: it scrapes /metrics/resource, which VNodes do not serve (404)",
			remedy: []string{`kubectl -n kube-system patch deployment metrics-server --type=json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.k8s.io/metrics-server/metrics-server:v0.5.2"},{"op":"add","path":"/spec/template/spec/containers/0/args","value":["--cert-dir=/tmp","--secure-port=4443","--metric-resolution=15s","--kubelet-use-node-status-port","--kubelet-insecure-tls","--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"]}]'`,
				"nodes/stats"}},
		{name: "v0.6.0 exactly fails", vnodes: 2, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.6.0", nil)}, api: availableAPI,
			statuses: "FAIL", summary: "is v0.6.0: it scrapes /metrics/resource"},
		{name: "mirror with port, tag and digest", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("ops", "metrics-server", "harbor.corp.local:8443/k8s/metrics-server:v0.7.2@sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9", nil)}, api: availableAPI,
			statuses: "FAIL", summary: "metrics-server ops/metrics-server is v0.7.2",
			remedy: []string{`"value":"harbor.corp.local:8443/k8s/metrics-server:v0.5.2"`, "push v0.5.2 to harbor.corp.local:8443/k8s/metrics-server first"}},
		{name: "v-less bitnami tag in a chart", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("monitoring", "obs-metrics-server", "bitnami/metrics-server:0.6.4-debian-12-r10", nil)}, api: availableAPI,
			statuses: "FAIL", summary: "metrics-server monitoring/obs-metrics-server is v0.6.4",
			remedy: []string{`"value":"docker.io/bitnami/metrics-server:v0.5.2"`}},
		{name: "digest only: cannot tell", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+"@sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9", goodFlags)}, api: availableAPI,
			statuses: "WARN", summary: `could not tell the version of metrics-server kube-system/metrics-server from image "registry.k8s.io/metrics-server/metrics-server@sha256:`},
		{name: "latest: cannot tell", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":latest", goodFlags)}, api: availableAPI,
			statuses: "WARN", summary: "could not tell the version"},
		{name: "latest with a version label", vnodes: 1, deps: []*appsv1.Deployment{func() *appsv1.Deployment {
			d := msDeployment("kube-system", "metrics-server", upstream+":latest", goodFlags)
			d.Spec.Template.Labels["app.kubernetes.io/version"] = "0.5.2"
			return d
		}()}, api: availableAPI, statuses: "PASS", summary: "metrics-server kube-system/metrics-server is v0.5.2 with the VNode flags"},
		{name: "v0.5.2 with the flags", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.2", goodFlags)}, api: availableAPI,
			statuses: "PASS", summary: "metrics-server kube-system/metrics-server is v0.5.2 with the VNode flags"},
		{name: "v0.5.0 with flags in command", vnodes: 1, deps: []*appsv1.Deployment{func() *appsv1.Deployment {
			d := msDeployment("kube-system", "metrics-server", upstream+":v0.5.0", nil)
			d.Spec.Template.Spec.Containers[0].Command = append([]string{"/metrics-server"}, goodFlags...)
			return d
		}()}, api: availableAPI, statuses: "PASS", summary: "is v0.5.0 with the VNode flags"},
		{name: "v0.5.2 without flags warns", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.2", []string{"--secure-port=4443"})}, api: availableAPI,
			statuses: "WARN", summary: "metrics-server kube-system/metrics-server is v0.5.2 but lacks the VNode flags: --kubelet-use-node-status-port is not set; --kubelet-insecure-tls is not set; --kubelet-preferred-address-types is not set",
			remedy:   []string{`[{"op":"add","path":"/spec/template/spec/containers/0/args","value":["--secure-port=4443","--kubelet-use-node-status-port","--kubelet-insecure-tls","--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"]}]`},
			noRemedy: []string{`"/image"`}},
		{name: "v0.5.1 with Hostname first warns", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.1",
			[]string{"--kubelet-use-node-status-port", "--kubelet-insecure-tls", "--kubelet-preferred-address-types=Hostname,InternalIP"})}, api: availableAPI,
			statuses: "WARN", summary: "does not try InternalIP first"},
		{name: "v0.4.5 is older than the tested series", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.4.5", goodFlags)}, api: availableAPI,
			statuses: "WARN", summary: "is v0.4.5, older than the v0.5.x series", remedy: []string{`metrics-server:v0.5.2"`}},
		{name: "ACK vendor tag", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", "registry-cn-hangzhou.ack.aliyuncs.com/acs/metrics-server:v0.3.8.5-307cf45-aliyun", goodFlags)}, api: availableAPI,
			statuses: "WARN", summary: "is v0.3.8.5, older than the v0.5.x series"},
		{name: "APIService missing", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.2", goodFlags)}, api: nil,
			statuses: "WARN", summary: "APIService v1beta1.metrics.k8s.io is not registered", remedy: []string{"Register the metrics API"}},
		{name: "APIService not Available", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.2", goodFlags)},
			api:      &kube.APIService{Name: metricsAPIService, Service: "kube-system/metrics-server", Available: "False", Reason: "ServiceNotFound", Message: `service/metrics-server in "kube-system" is not present`},
			statuses: "FAIL", summary: "is v0.5.2 with the VNode flags; APIService v1beta1.metrics.k8s.io is not Available (ServiceNotFound)",
			remedy: []string{"kubectl -n kube-system get endpointslices -l kubernetes.io/service-name=metrics-server"}},
		{name: "APIService unreadable", vnodes: 1, deps: []*appsv1.Deployment{msDeployment("kube-system", "metrics-server", upstream+":v0.5.2", goodFlags)},
			apiErr: errors.New("forbidden"), statuses: "PASS,ERROR", summary: "is v0.5.2 with the VNode flags"},
		{name: "two metrics-servers, sorted", vnodes: 1, deps: []*appsv1.Deployment{
			msDeployment("monitoring", "metrics-server", upstream+":v0.5.2", goodFlags),
			msDeployment("kube-system", "metrics-server", upstream+":v0.6.4", goodFlags)}, api: availableAPI,
			statuses: "FAIL,PASS", summary: "kube-system/metrics-server is v0.6.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluateMetricsServer(tt.vnodes, tt.deps, tt.api, tt.apiErr)
			if diagtest.StatusNames(got) != tt.statuses || !strings.Contains(got[0].Summary, tt.summary) {
				t.Fatalf("got %s\nwant %s with summary containing %q", diagtest.Dump(got), tt.statuses, tt.summary)
			}
			for _, s := range tt.remedy {
				if !strings.Contains(got[0].Remediation, s) {
					t.Errorf("remediation lacks %q:\n%s", s, got[0].Remediation)
				}
			}
			for _, s := range tt.noRemedy {
				if strings.Contains(got[0].Remediation, s) {
					t.Errorf("remediation has %q:\n%s", s, got[0].Remediation)
				}
			}
			if got[0].Status != pb.Status_PASS && got[0].Status != pb.Status_SKIP && got[0].Remediation == "" {
				t.Errorf("%s without remediation", got[0].Status)
			}
		})
	}
}
