package probe

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// exampleConfig is the plan of the ConfigMap in deploy/agent/agent.yaml.
func exampleConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../deploy/agent/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "ConfigMap" {
			continue
		}
		cm := &corev1.ConfigMap{}
		if err := yaml.UnmarshalStrict([]byte(doc), cm); err != nil {
			t.Fatal(err)
		}
		if p, ok := cm.Data["plan.yaml"]; ok {
			return p
		}
	}
	t.Fatal("deploy/agent/agent.yaml has no ConfigMap with plan.yaml")
	return ""
}
