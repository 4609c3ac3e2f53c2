package vnodelab

import (
	"fmt"
	"path/filepath"
	"runtime"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/test/kubelab"
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
	objs, err := kubelab.ReadManifests(path)
	if err != nil {
		return nil, err
	}
	sas, cms, deps := kubelab.ObjectsOf[*corev1.ServiceAccount](objs), kubelab.ObjectsOf[*corev1.ConfigMap](objs), kubelab.ObjectsOf[*appsv1.Deployment](objs)
	if len(objs) != 3 || len(sas) != 1 || len(cms) != 1 || len(deps) != 1 {
		return nil, fmt.Errorf("%s: want a ServiceAccount, a ConfigMap and a Deployment", path)
	}
	return &Manifests{ServiceAccount: sas[0], ConfigMap: cms[0], Deployment: deps[0]}, nil
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
