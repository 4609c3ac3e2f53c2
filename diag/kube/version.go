package kube

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
	kversion "k8s.io/apimachinery/pkg/version"
)

// ServerVersion parses the API server's version: gitVersion first (it
// carries vendor suffixes such as -aliyun.1 or +k3s1), then major.minor,
// which some vendors suffix with "+". shown is the version as the server
// reports it, for the report. A build without version information
// (gitVersion v0.0.0-master+$Format:%H$, major and minor empty) is an
// error that says so: it is not Kubernetes 0.0, and judging it as such
// would turn every version check into a false FAIL.
func ServerVersion(v *kversion.Info) (parsed *version.Version, shown string, err error) {
	if v == nil {
		return nil, "", fmt.Errorf("the API server reported no version")
	}
	shown = v.GitVersion
	if shown == "" {
		shown = v.Major + "." + v.Minor
	}
	if v.GitVersion != "" {
		if pv, err := version.ParseGeneric(v.GitVersion); err == nil && pv.Major() > 0 {
			return pv, shown, nil
		}
	}
	mm := strings.TrimSuffix(v.Major, "+") + "." + strings.TrimSuffix(v.Minor, "+")
	pv, err := version.ParseGeneric(mm)
	if err == nil && pv.Major() > 0 {
		return pv, shown, nil
	}
	if strings.HasPrefix(v.GitVersion, "v0.0.0") {
		return nil, shown, fmt.Errorf("API server version %q is a build without version information (a development build: gitVersion v0.0.0, major %q, minor %q)", v.GitVersion, v.Major, v.Minor)
	}
	return nil, shown, fmt.Errorf("API server version gitVersion=%q major=%q minor=%q: not a Kubernetes version", v.GitVersion, v.Major, v.Minor)
}

// KubeletVersion parses a node's status.nodeInfo.kubeletVersion; a VNode's
// virtual-kubelet reports the Kubernetes version it implements first
// (v1.30.4-vk-v2.11.0).
func KubeletVersion(s string) (*version.Version, error) {
	if s == "" {
		return nil, fmt.Errorf("no kubelet version reported")
	}
	pv, err := version.ParseGeneric(s)
	if err != nil || pv.Major() == 0 {
		return nil, fmt.Errorf("kubelet version %q is not a Kubernetes version", s)
	}
	return pv, nil
}
