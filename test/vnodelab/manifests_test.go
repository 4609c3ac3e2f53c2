package vnodelab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/test/kubelab"
)

const privateImage = "registry.corp.example:5000/platform/vnodediag"

// render runs `kubectl kustomize` (the envtest assets' kubectl) on an
// overlay of deploy/agent that sets a private registry, as an air-gapped
// cluster would.
func render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	assets, err := kubelab.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("kubectl not in the envtest assets (hack/envtest-assets.sh builds it): %v", err)
	}
	overlay := t.TempDir()
	base, err := filepath.Rel(overlay, RepoFile("deploy/agent"))
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n  - " + base + "\nimages:\n  - name: vnodediag\n    newName: " + privateImage + "\n    newTag: v9.9.9\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", overlay).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	return objs
}

var resources = map[string]schema.GroupVersionResource{
	"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
	"ConfigMap":          {Version: "v1", Resource: "configmaps"},
	"Deployment":         {Group: "apps", Version: "v1", Resource: "deployments"},
	"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"Pod":                {Version: "v1", Resource: "pods"},
}

// TestAgentManifests applies deploy/agent (rendered for a private registry)
// and the RBAC for reading agents with a server-side dry run against a
// real API server, in a namespace that enforces the "restricted" Pod
// Security Standard, and creates the Deployment's pod there (dry run): PSA
// admits it. A pod that drops one of the hardening settings is refused, so
// the check is live.
func TestAgentManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no API server")
	}
	objs := render(t)
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vnodediag", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	if _, err := lab.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(lab.Config)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(RepoFile("deploy/kubernetes/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	apply := func(u *unstructured.Unstructured) error {
		gvr, ok := resources[u.GetKind()]
		if !ok {
			t.Fatalf("unexpected kind %s", u.GetKind())
		}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		force := true
		_, err = dyn.Resource(gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "vnodediag-manifest-test", DryRun: []string{metav1.DryRunAll}, Force: &force})
		return err
	}
	var dep *appsv1.Deployment
	for _, u := range objs {
		if err := apply(u); err != nil {
			t.Errorf("server-side dry-run apply of %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "Deployment" {
			dep = &appsv1.Deployment{}
			data, _ := u.MarshalJSON()
			if err := yaml.Unmarshal(data, dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dep == nil {
		t.Fatal("no Deployment rendered")
	}
	spec := dep.Spec.Template.Spec
	if got := spec.Containers[0].Image; got != privateImage+":v9.9.9" {
		t.Errorf("image %q: kustomization images: did not set the registry", got)
	}
	if spec.NodeSelector["type"] != "virtual-kubelet" || len(spec.Tolerations) != 2 || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("placement / token: nodeSelector %v, tolerations %v, automount %v", spec.NodeSelector, spec.Tolerations, spec.AutomountServiceAccountToken)
	}

	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "vnodediag", Name: "vnodediag-agent-psa", Labels: dep.Spec.Template.Labels},
		Spec:       *spec.DeepCopy()}
	podObj := func(p *corev1.Pod) *unstructured.Unstructured {
		m, err := toMap(p)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	if err := apply(podObj(pod)); err != nil {
		t.Errorf("the agent's pod is refused in a restricted namespace: %v", err)
	}
	weak := pod.DeepCopy()
	weak.Spec.SecurityContext.SeccompProfile = nil
	weak.Spec.Containers[0].SecurityContext.Capabilities = nil
	if err := apply(podObj(weak)); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a pod without seccomp and dropped capabilities was admitted (%v): the PSA check is not live", err)
	}
}

func toMap(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, yaml.Unmarshal(b, &m)
}
