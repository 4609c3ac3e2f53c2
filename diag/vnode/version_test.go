package vnode

import (
	"testing"

	kversion "k8s.io/apimachinery/pkg/version"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestEvaluateVersion(t *testing.T) {
	tests := []struct {
		v       *kversion.Info
		status  pb.Status
		summary string
	}{
		{&kversion.Info{Major: "1", Minor: "14", GitVersion: "v1.14.8-aliyun.1"}, pb.Status_FAIL, "API server v1.14.8-aliyun.1 is older than v1.16: label-based VNode scheduling is not supported"},
		{&kversion.Info{Major: "1", Minor: "15", GitVersion: "v1.15.12"}, pb.Status_FAIL, "API server v1.15.12 is older than v1.16: label-based VNode scheduling is not supported"},
		{&kversion.Info{Major: "1", Minor: "16", GitVersion: "v1.16.0"}, pb.Status_PASS, "API server v1.16.0 supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{Major: "1", Minor: "30", GitVersion: "v1.30.4+k3s1"}, pb.Status_PASS, "API server v1.30.4+k3s1 supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{Major: "1", Minor: "28+", GitVersion: "v1.28.9-eks-036c24b"}, pb.Status_PASS, "API server v1.28.9-eks-036c24b supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"}, pb.Status_PASS, "API server v1.37.2 supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{Major: "2", Minor: "0", GitVersion: "v2.0.0"}, pb.Status_PASS, "API server v2.0.0 supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{Major: "1", Minor: "15+"}, pb.Status_FAIL, "API server 1.15+ is older than v1.16: label-based VNode scheduling is not supported"},
		{&kversion.Info{Major: "1", Minor: "20", GitVersion: "custom-build"}, pb.Status_PASS, "API server custom-build supports label-based VNode scheduling (>= v1.16)"},
		{&kversion.Info{GitVersion: "custom-build"}, pb.Status_WARN, `cannot tell whether the API server is v1.16 or later: API server version gitVersion="custom-build" major="" minor="": not a Kubernetes version`},
		{nil, pb.Status_WARN, "cannot tell whether the API server is v1.16 or later: the API server reported no version"},
		// A server built without version information (go build of
		// k8s.io/kubernetes without its ldflags) is not Kubernetes 0.0.
		{&kversion.Info{GitVersion: "v0.0.0-master+$Format:%H$"}, pb.Status_WARN,
			`cannot tell whether the API server is v1.16 or later: API server version "v0.0.0-master+$Format:%H$" is a build without version information (a development build: gitVersion v0.0.0, major "", minor "")`},
		{&kversion.Info{GitVersion: "v0.0.0-master+$Format:%H$", Major: "1", Minor: "37"}, pb.Status_PASS,
			"API server v0.0.0-master+$Format:%H$ supports label-based VNode scheduling (>= v1.16)"},
	}
	for _, tt := range tests {
		got := evaluateVersion(tt.v)
		if got.Status != tt.status || got.Summary != tt.summary {
			t.Errorf("evaluateVersion(%+v) = %s %q\nwant %s %q", tt.v, got.Status, got.Summary, tt.status, tt.summary)
		}
		if got.Status != pb.Status_PASS && got.Remediation == "" {
			t.Errorf("evaluateVersion(%+v): %s without remediation", tt.v, got.Status)
		}
	}
}
