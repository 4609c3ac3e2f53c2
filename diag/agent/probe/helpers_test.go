package probe

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/test/kubelab"
)

// exampleConfig is the plan of the ConfigMap in deploy/agent/agent.yaml.
func exampleConfig(t *testing.T) string {
	t.Helper()
	objs, err := kubelab.ReadManifests("../../../deploy/agent/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range kubelab.ObjectsOf[*corev1.ConfigMap](objs) {
		if p, ok := cm.Data["plan.yaml"]; ok {
			return p
		}
	}
	t.Fatal("deploy/agent/agent.yaml has no ConfigMap with plan.yaml")
	return ""
}
