package kube_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

const rbacFile = "../../deploy/kubernetes/rbac.yaml"

func readClusterRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	b, err := os.ReadFile(rbacFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "ClusterRole" {
			cr := &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict([]byte(doc), cr); err != nil {
				t.Fatal(err)
			}
			return cr
		}
	}
	t.Fatalf("%s has no ClusterRole", rbacFile)
	return nil
}

// TestShippedRBACIsReadOnly: the shipped role grants get/list/watch only.
func TestShippedRBACIsReadOnly(t *testing.T) {
	for _, r := range readClusterRole(t).Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("rule %v grants verb %q; vnodediag must only read", r.Resources, v)
			}
		}
	}
}

// TestSnapshotWithShippedRBAC gathers the snapshot as a user that has only
// the shipped read-only role, against a real API server: every list the
// source makes must be allowed by it, so nothing it does can write.
func TestSnapshotWithShippedRBAC(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	cr := readClusterRole(t)
	if _, err := lab.Client.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vnodediag-read-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "vnodediag-ro"}},
	}
	if _, err := lab.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := lab.UserConfig("vnodediag-ro")
	if err != nil {
		t.Fatal(err)
	}
	p, err := kube.NewProviderForConfig(kube.Config{}, rc, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatalf("gather as read-only user: %v", err)
	}
	s := v.(*kube.Snapshot)
	for part, err := range s.PartErrors {
		t.Errorf("part %s failed under the shipped role: %v", part, err)
	}
	if len(s.Nodes) != 9 || len(s.Pods) != 14 || s.ClusterUID == "" || len(s.ServiceCIDRs) == 0 {
		t.Errorf("snapshot: %d nodes, %d pods, uid %q, service CIDRs %v", len(s.Nodes), len(s.Pods), s.ClusterUID, s.ServiceCIDRs)
	}

	// The same user cannot write: the role really is read-only on the server.
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	err = cs.CoreV1().Nodes().Delete(ctx, "dc-1", metav1.DeleteOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("delete as read-only user: %v, want forbidden", err)
	}
}
