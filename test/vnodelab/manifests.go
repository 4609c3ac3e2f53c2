package vnodelab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Manifests are the agent's objects as deploy/agent ships them.
type Manifests struct {
	ServiceAccount *corev1.ServiceAccount
	ConfigMap      *corev1.ConfigMap
	Deployment     *appsv1.Deployment
}

// RepoFile is a path inside the repository, found from this source file.
func RepoFile(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

// LoadManifests reads deploy/agent/agent.yaml strictly.
func LoadManifests() (*Manifests, error) {
	path := RepoFile("deploy/agent/agent.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Manifests{}
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var into any
		switch meta.Kind {
		case "ServiceAccount":
			m.ServiceAccount = &corev1.ServiceAccount{}
			into = m.ServiceAccount
		case "ConfigMap":
			m.ConfigMap = &corev1.ConfigMap{}
			into = m.ConfigMap
		case "Deployment":
			m.Deployment = &appsv1.Deployment{}
			into = m.Deployment
		case "":
			continue
		default:
			return nil, fmt.Errorf("%s: unexpected %s", path, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, meta.Kind, err)
		}
	}
	if m.ServiceAccount == nil || m.ConfigMap == nil || m.Deployment == nil {
		return nil, fmt.Errorf("%s: want a ServiceAccount, a ConfigMap and a Deployment", path)
	}
	return m, nil
}

// Pod is the pod the Deployment's ReplicaSet would create, bound to node as
// the scheduler would bind it (the lab's API server runs no controllers).
func (m *Manifests) Pod(name, node string) *corev1.Pod {
	t := m.Deployment.Spec.Template
	p := &corev1.Pod{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
	p.Namespace, p.Name = m.Deployment.Namespace, name
	p.Spec.NodeName = node
	return p
}
