package vnode

import (
	"context"
	"fmt"
	"strings"

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

// serverVersion parses the API server's version: gitVersion first (it
// carries vendor suffixes such as -aliyun.1 or +k3s1), then major.minor,
// which some vendors suffix with "+".
func serverVersion(v *kversion.Info) (*version.Version, string, error) {
	if v == nil {
		return nil, "", fmt.Errorf("the API server reported no version")
	}
	if v.GitVersion != "" {
		if pv, err := version.ParseGeneric(v.GitVersion); err == nil {
			return pv, v.GitVersion, nil
		}
	}
	mm := strings.TrimSuffix(v.Major, "+") + "." + strings.TrimSuffix(v.Minor, "+")
	pv, err := version.ParseGeneric(mm)
	if err != nil {
		return nil, v.GitVersion, fmt.Errorf("API server version gitVersion=%q major=%q minor=%q: not a Kubernetes version", v.GitVersion, v.Major, v.Minor)
	}
	shown := v.GitVersion
	if shown == "" {
		shown = v.Major + "." + v.Minor
	}
	return pv, shown, nil
}

func evaluateVersion(v *kversion.Info) *pb.Result {
	pv, shown, err := serverVersion(v)
	if err != nil {
		res := diag.Errorf("could not tell the API server version: %v", err)
		res.Evidence = []*pb.Evidence{diag.Ev("API server version", ">= v1.16", "unknown")}
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
