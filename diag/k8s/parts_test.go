package k8s

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kversion "k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestChecksSeeTheirParts: each check below judges a part that no lab
// scenario makes matter, run as a run runs it (diagtest.Run hands it the
// parts it names alone): a check that stopped naming that part would see
// it empty and give another status.
func TestChecksSeeTheirParts(t *testing.T) {
	node := kubelab.OnPremNode("dc-1", "10.96.0.0/24", "10.10.0.1")
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/made-up": "x"}}}}}
	for _, c := range []struct {
		id, part, want string
		s              *kube.Snapshot
	}{
		{CheckPodCIDROverlap, "Service CIDRs", "FAIL", &kube.Snapshot{Nodes: []*corev1.Node{node}, ServiceCIDRs: []string{"10.96.0.0/12"}}},
		{CheckCNIIPAM, "the server version", "PASS", &kube.Snapshot{Nodes: []*corev1.Node{node},
			CNIConfigs: []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "0.0.0.0/0", kubelab.FlannelCNIConf(""))},
			Version:    &kversion.Info{Major: "1", Minor: "15", GitVersion: "v1.15.12"}}},
		{CheckReserved, "DaemonSets", "WARN", &kube.Snapshot{DaemonSets: []*appsv1.DaemonSet{ds}}},
	} {
		got := diagtest.Run(t, context.Background(), Checks(), c.id, diag.NewInputs(kube.Source.With(c.s)))
		if diagtest.StatusNames(got) != c.want {
			t.Errorf("%s, which reads %s: got %s, want %s", c.id, c.part, diagtest.Dump(got), c.want)
		}
	}
}
