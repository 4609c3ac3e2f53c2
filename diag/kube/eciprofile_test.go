package kube

import (
	"strings"
	"testing"

	kversion "k8s.io/apimachinery/pkg/version"
)

func TestParseECIProfile(t *testing.T) {
	p := ParseECIProfile(map[string]string{
		"vpcId": "vpc-uf6v1", "vSwitchIds": " vsw-a1 ,vsw-b2,vsw-a1,", "securityGroupId": "sg-c3", "enableClusterIp": "true",
		"selectors": `[
		  {"name": "ns", "namespaceLabels": {"matchLabels": {"eci": "true"}}, "effect": {"annotations": {"k8s.aliyun.com/eci-use-specs": "2-4Gi"}}},
		  {"name": "pods", "objectLabels": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["burst"]}]}, "policy": {"virtualNodeOnly": {}}, "priority": 2},
		  {"name": "pods", "objectLabels": {"matchLabels": {"a": "b"}}},
		  {"objectLabels": {"matchLabels": {"a": "b"}}, "policy": {"sometimes": {}}},
		  {"name": "typo", "objectLabel": {"matchLabels": {"a": "b"}}}
		]`,
	})
	if p.VPCID != "vpc-uf6v1" || strings.Join(p.VSwitchIDs, ",") != "vsw-a1,vsw-b2" || p.SecurityGroupID != "sg-c3" {
		t.Errorf("ids: %+v", p)
	}
	var issues []string
	for _, is := range p.Issues {
		issues = append(issues, is.Key+": "+is.Problem)
	}
	want := []string{
		`vSwitchIds: vsw-a1 is listed twice`,
		`vSwitchIds: " vsw-a1 ,vsw-b2,vsw-a1," has an empty entry`,
		`selectors[2] (pods).name: "pods" is used by two selectors`,
		`selectors[3].name: missing: every selector needs a unique name`,
		`selectors[3].policy: unknown policy "sometimes" (want fair, normalNodeOnly, normalNodePrefer, virtualNodeOnly)`,
		`selectors[4] (typo).objectLabel: unknown key: the ECI webhook ignores it (it reads name, namespaceLabels, objectLabels, effect, policy, priority)`,
	}
	if strings.Join(issues, "\n") != strings.Join(want, "\n") {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(issues, "\n"), strings.Join(want, "\n"))
	}
	if len(p.Selectors) != 5 {
		t.Fatalf("selectors: %d", len(p.Selectors))
	}
	ns, pods := &p.Selectors[0], &p.Selectors[1]
	if !ns.Matches(map[string]string{"eci": "true"}, nil) || ns.Matches(map[string]string{}, map[string]string{"eci": "true"}) {
		t.Error("namespaceLabels selector")
	}
	if !pods.Matches(nil, map[string]string{"app": "burst"}) || pods.Matches(nil, map[string]string{"app": "web"}) || pods.Policy != "virtualNodeOnly" {
		t.Error("objectLabels selector")
	}
	if ns.EffectAnnotations["k8s.aliyun.com/eci-use-specs"] != "2-4Gi" {
		t.Error("effect")
	}
	if !(&p.Selectors[4]).MatchesAll() || pods.MatchesAll() {
		t.Error("MatchesAll")
	}
}

func TestServerVersion(t *testing.T) {
	tests := []struct {
		v     *kversion.Info
		minor int
		err   string
	}{
		{&kversion.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"}, 37, ""},
		{&kversion.Info{Major: "1", Minor: "28+", GitVersion: "v1.28.9-eks-036c24b"}, 28, ""},
		{&kversion.Info{Major: "1", Minor: "15+"}, 15, ""},
		{&kversion.Info{GitVersion: "v0.0.0-master+$Format:%H$"}, 0, "is a build without version information"},
		{&kversion.Info{GitVersion: "v0.0.0-master+$Format:%H$", Major: "1", Minor: "36"}, 36, ""},
		{&kversion.Info{GitVersion: "custom"}, 0, "not a Kubernetes version"},
		{nil, 0, "reported no version"},
	}
	for _, tt := range tests {
		pv, _, err := ServerVersion(tt.v)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%+v: err %v, want %q", tt.v, err, tt.err)
		case tt.err == "" && (err != nil || int(pv.Minor()) != tt.minor):
			t.Errorf("%+v: %v %v, want minor %d", tt.v, pv, err, tt.minor)
		}
	}
	for s, ok := range map[string]bool{"v1.30.4-vk-v2.11.0": true, "v1.36.3": true, "": false, "v0.0.0": false, "vk-2.11": false} {
		if _, err := KubeletVersion(s); (err == nil) != ok {
			t.Errorf("KubeletVersion(%q): %v", s, err)
		}
	}
}
