package vnode

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
)

const x509Msg = `rpc error: code = Unknown desc = failed to pull and unpack image "harbor.corp.local:8443/shop/web:1.4": failed to resolve reference "harbor.corp.local:8443/shop/web:1.4": failed to do request: Head "https://harbor.corp.local:8443/v2/shop/web/manifests/1.4": tls: failed to verify certificate: x509: certificate signed by unknown authority`

func TestCertError(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{x509Msg, true},
		{"x509: certificate has expired or is not yet valid", true},
		{"Get https://reg/v2/: X509: Certificate Signed By Unknown Authority", true},
		{"x509: certificate is valid for harbor.local, not harbor.corp.local", true},
		{`Back-off pulling image "harbor.corp.local:8443/shop/web:1.4"`, false},
		{`rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nginx:nope": not found`, false},
		{"http: server gave HTTP response to HTTPS client", false},
		{"", false},
	} {
		if got := certError(tt.msg); got != tt.want {
			t.Errorf("certError(%q) = %v", tt.msg, got)
		}
	}
}

func TestCoveredBy(t *testing.T) {
	for _, tt := range []struct {
		value, host string
		want        bool
	}{
		{"harbor.corp.local:8443", "harbor.corp.local:8443", true},
		{"harbor.corp.local", "harbor.corp.local:8443", false},
		{"a.example.com, harbor.corp.local:8443", "harbor.corp.local:8443", true},
		{"harbor*.corp.local:8443", "harbor2.corp.local:8443", true},
		{"reg*.test.com:80", "reg1.test.com:443", false},
		{"", "harbor.corp.local", false},
		{"[", "harbor.corp.local", false},
	} {
		if got := coveredBy(tt.value, tt.host); got != tt.want {
			t.Errorf("coveredBy(%q, %q) = %v", tt.value, tt.host, got)
		}
	}
}

func TestEvaluateRegistryTLS(t *testing.T) {
	nodes := []*corev1.Node{realNode("ecs-1"), typeVNode("vn-1")}
	pullPod := func(ns, name, node, reason, msg string) kube.Pod {
		return kube.Pod{Namespace: ns, Name: name, NodeName: node, Phase: kube.PhasePending,
			OwnerKind: "ReplicaSet", OwnerName: "web-7c9f8d6b5",
			Detail: &kube.PodDetail{Images: []string{"harbor.corp.local:8443/shop/web:1.4"}, Waiting: []kube.ContainerWaiting{{Container: "web", Image: "harbor.corp.local:8443/shop/web:1.4", Reason: reason, Message: msg}}}}
	}
	deps := []*appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}}

	t.Run("no VNode", func(t *testing.T) {
		got := evaluateRegistryTLS(context.Background(), nodes[:1], nil, nil, nil, nil)
		if diagtest.StatusNames(got) != "SKIP" {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("nothing failing", func(t *testing.T) {
		pods := []kube.Pod{
			pullPod("shop", "web-1", "vn-1", "ImagePullBackOff", `Back-off pulling image "docker.io/library/nginx:nope"`),
			pullPod("shop", "web-2", "ecs-1", "ErrImagePull", x509Msg), // not on a VNode
		}
		got := evaluateRegistryTLS(context.Background(), nodes, pods, nil, deps, nil)
		if diagtest.StatusNames(got) != "PASS" || !hasEvidence(got[0], "VNode pods failing image pulls for other reasons", "1") {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("message in status", func(t *testing.T) {
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{pullPod("shop", "web-7c9f8d6b5-abcde", "vn-1", "ErrImagePull", x509Msg)}, nil, deps, nil)
		if diagtest.StatusNames(got) != "WARN" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		r := got[0]
		want := `pod shop/web-7c9f8d6b5-abcde on VNode vn-1 fails to pull from harbor.corp.local:8443 on a certificate error: add annotation k8s.aliyun.com/insecure-registry: "harbor.corp.local:8443"`
		if r.Summary != want {
			t.Errorf("summary\n got %s\nwant %s", r.Summary, want)
		}
		wantFix := `kubectl -n shop patch deployment web --type=merge -p '{"spec":{"template":{"metadata":{"annotations":{"k8s.aliyun.com/insecure-registry":"harbor.corp.local:8443"}}}}}'`
		if !strings.HasPrefix(r.Remediation, wantFix) {
			t.Errorf("remediation\n got %s\nwant prefix %s", r.Remediation, wantFix)
		}
	})
	t.Run("message only in events, backoff in status", func(t *testing.T) {
		p := pullPod("shop", "web-7c9f8d6b5-abcde", "vn-1", "ImagePullBackOff", `Back-off pulling image "harbor.corp.local:8443/shop/web:1.4"`)
		p.Detail.Waiting[0].Image = ""
		evs := []kube.Event{
			{Namespace: "shop", Pod: "web-7c9f8d6b5-abcde", Reason: "Failed", Message: `Failed to pull image "harbor.corp.local:8443/shop/web:1.4": ` + x509Msg, Count: 4},
			{Namespace: "shop", Pod: "web-7c9f8d6b5-abcde", Reason: "BackOff", Message: `Back-off pulling image "harbor.corp.local:8443/shop/web:1.4"`, Count: 9},
			{Namespace: "shop", Pod: "other", Reason: "Failed", Message: x509Msg},
		}
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{p}, evs, nil, nil)
		if diagtest.StatusNames(got) != "WARN" || !hasEvidence(got[0], "event Failed (count 4)", "x509") || hasEvidence(got[0], "event BackOff (count 9)", "") {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		// Without the Deployment list, the ReplicaSet is patched.
		if !strings.HasPrefix(got[0].Remediation, "kubectl -n shop patch replicaset web-7c9f8d6b5 --type=merge") {
			t.Errorf("remediation %s", got[0].Remediation)
		}
	})
	t.Run("annotation present for another host", func(t *testing.T) {
		p := pullPod("shop", "web-1", "vn-1", "ErrImagePull", x509Msg)
		p.Detail.Annotations = map[string]string{annotationInsecureRegistry: "old.corp.local"}
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{p}, nil, deps, nil)
		want := `add annotation k8s.aliyun.com/insecure-registry: "old.corp.local,harbor.corp.local:8443" (it carries "old.corp.local", which does not list harbor.corp.local:8443)`
		if diagtest.StatusNames(got) != "WARN" || !strings.HasSuffix(got[0].Summary, want) {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("annotation already covers the host", func(t *testing.T) {
		p := pullPod("shop", "web-1", "vn-1", "ErrImagePull", x509Msg)
		p.Detail.Annotations = map[string]string{annotationInsecureRegistry: "harbor*.corp.local:8443"}
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{p}, nil, deps, nil)
		if diagtest.StatusNames(got) != "WARN" || !strings.Contains(got[0].Summary, `although it already carries k8s.aliyun.com/insecure-registry: "harbor*.corp.local:8443"`) ||
			!strings.Contains(got[0].Remediation, "kubectl -n shop delete pod web-1") {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("bare pod, Docker Hub image, init container", func(t *testing.T) {
		p := kube.Pod{Namespace: "ci", Name: "job-x", NodeName: "vn-1",
			Detail: &kube.PodDetail{Images: []string{"team/runner:3"}, Waiting: []kube.ContainerWaiting{{Container: "init", Reason: "ErrImagePull", Message: "x509: certificate signed by unknown authority"}}}}
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{p}, nil, nil, nil)
		if diagtest.StatusNames(got) != "WARN" || !strings.Contains(got[0].Summary, `pull from docker.io`) ||
			!strings.HasPrefix(got[0].Remediation, `Recreate pod ci/job-x with metadata.annotations k8s.aliyun.com/insecure-registry: "docker.io"`) {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("image not known", func(t *testing.T) {
		p := kube.Pod{Namespace: "ci", Name: "two", NodeName: "vn-1", OwnerKind: "Job", OwnerName: "j",
			Detail: &kube.PodDetail{Images: []string{"a.example.com/x:1", "b.example.com/y:1"}, Waiting: []kube.ContainerWaiting{{Container: "x", Reason: "ErrImagePull", Message: "x509: certificate signed by unknown authority"}}}}
		got := evaluateRegistryTLS(context.Background(), nodes, []kube.Pod{p}, nil, nil, nil)
		if diagtest.StatusNames(got) != "WARN" || !strings.Contains(got[0].Summary, "the image could not be told") {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("sorted by pod", func(t *testing.T) {
		pods := []kube.Pod{pullPod("shop", "web-b", "vn-1", "ErrImagePull", x509Msg), pullPod("shop", "web-a", "vn-1", "ErrImagePull", x509Msg)}
		got := evaluateRegistryTLS(context.Background(), nodes, pods, nil, deps, nil)
		if len(got) != 2 || got[0].Objects[0].Name != "web-a" {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
}
