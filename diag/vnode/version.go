package vnode

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
	kversion "k8s.io/apimachinery/pkg/version"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// minVNodeVersion is the first Kubernetes release whose scheduler places
// pods on VNodes by label (nodeSelector / node affinity with the VNode
// labels and tolerations of the VNode taint), as the vendor requires.
var minVNodeVersion = version.MajorMinor(1, 16)

func runK8sVersion(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := canceled(ctx); r != nil {
		return r
	}
	return []*pb.Result{evaluateVersion(s.Version)}
}

func evaluateVersion(v *kversion.Info) *pb.Result {
	pv, shown, err := kube.ServerVersion(v)
	if err != nil {
		// A development build or a vendor's odd version string is not an
		// old cluster: say what was reported, never FAIL on it.
		res := diag.Warn("cannot tell whether the API server is v1.16 or later: %v", err)
		if shown == "" {
			shown = "not reported"
		}
		res.Evidence = []*pb.Evidence{diag.Ev("API server version", ">= v1.16", shown)}
		res.Remediation = "Check the control plane's Kubernetes version by other means (the kube-apiserver image tag or binary's --version); " +
			"label-based VNode scheduling needs v1.16 or later."
		return res
	}
	ev := []*pb.Evidence{diag.Ev("API server version", ">= v1.16", shown)}
	if !pv.AtLeast(minVNodeVersion) {
		res := diag.Fail("API server %s is older than v1.16: label-based VNode scheduling is not supported", shown)
		res.Evidence = ev
		res.Remediation = fmt.Sprintf("Upgrade the cluster's control plane to Kubernetes v1.16 or later (one minor version at a time, from %d.%d) "+
			"before scheduling pods to VNodes by label.", pv.Major(), pv.Minor())
		return res
	}
	res := diag.Pass("API server %s supports label-based VNode scheduling (>= v1.16)", shown)
	res.Evidence = ev
	return res
}
