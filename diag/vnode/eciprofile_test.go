package vnode

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
)

func TestEvaluateECIProfile(t *testing.T) {
	nodes := []*corev1.Node{realNode("dc-1"), typeVNode("vk-1")}
	onVN := kube.Pod{Namespace: "shop", Name: "web-1", NodeName: "vk-1", Phase: kube.PhaseRunning, Detail: &kube.PodDetail{Labels: map[string]string{"burst": "eci"}}}
	pending := kube.Pod{Namespace: "shop", Name: "web-2", Phase: kube.PhasePending, Detail: &kube.PodDetail{Labels: map[string]string{"burst": "eci"}, Scheduling: &kube.PodScheduling{}}}
	other := kube.Pod{Namespace: "shop", Name: "db-0", NodeName: "dc-1", Phase: kube.PhaseRunning}
	inBatch := kube.Pod{Namespace: "batch", Name: "job-1", NodeName: "vk-1", Phase: kube.PhaseRunning, Detail: &kube.PodDetail{Labels: map[string]string{}}}
	pods := []kube.Pod{onVN, pending, other, inBatch}
	ns := map[string]map[string]string{"batch": {"eci": "true"}, "shop": {}}
	good := map[string]string{"vSwitchIds": "vsw-a1, vsw-b2", "securityGroupId": "sg-c3", "vpcId": "vpc-d4",
		"selectors": `[{"name": "shop-burst", "objectLabels": {"matchLabels": {"burst": "eci"}}, "policy": {"virtualNodeOnly": {}}},
		               {"name": "batch-ns", "namespaceLabels": {"matchLabels": {"eci": "true"}}}]`}
	tests := []struct {
		name string
		data map[string]string
		want string
		sum  []string // summaries' prefixes, in order
	}{
		{"absent", nil, "SKIP", []string{"no ConfigMap kube-system/eci-profile"}},
		{"complete", good, "PASS,PASS,PASS", []string{
			"eci-profile is complete: 2 vSwitch(es), security group sg-c3, 2 selector(s)",
			"eci-profile selector shop-burst matches 2 pod(s) on VNodes or meant for them: 1 running on VNodes, 1 pending",
			"eci-profile selector batch-ns matches 1 pod(s) on VNodes or meant for them: 1 running on VNodes, 0 pending"}},
		{"missing keys", map[string]string{"selectors": ""}, "FAIL", []string{
			"eci-profile does not parse or is incomplete: vSwitchIds: missing: ECI pods need at least one vSwitch of the VPC (several, in different zones, for zone failover), securityGroupId: missing"}},
		{"bad IDs", map[string]string{"vSwitchIds": "vsw-a1,subnet-9", "securityGroupId": "sg_1"}, "FAIL", []string{
			`eci-profile does not parse or is incomplete: vSwitchIds: "subnet-9" is not a vSwitch ID (vsw-...), securityGroupId: "sg_1" is not a security group ID (sg-...)`}},
		{"selectors not JSON", map[string]string{"vSwitchIds": "vsw-a1", "securityGroupId": "sg-c3", "selectors": "[\n{\"name\": \"a\",\n}]"}, "FAIL", []string{
			"eci-profile does not parse or is incomplete: selectors: not a JSON list of selectors: line 3: invalid character '}'"}},
		{"bad operator", map[string]string{"vSwitchIds": "vsw-a1", "securityGroupId": "sg-c3",
			"selectors": `[{"name": "a", "objectLabels": {"matchExpressions": [{"key": "eci", "operator": "Equals", "values": ["true"]}]}}]`}, "FAIL", []string{
			`eci-profile does not parse or is incomplete: selectors[0] (a).objectLabels: "Equals" is not a valid label selector operator`}},
		{"unknown key, match-all selector", map[string]string{"vSwitchIds": "vsw-a1", "securityGroupId": "sg-c3",
			"selectors": `[{"name": "all", "namespaceSelector": {"matchLabels": {"x": "y"}}}]`}, "WARN,WARN", []string{
			"eci-profile parses but selectors[0] (all).namespaceSelector: unknown key",
			"eci-profile selector all has no namespaceLabels and no objectLabels: it matches every pod created in the cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *kube.ECIProfile
			if tt.data != nil {
				p = kube.ParseECIProfile(tt.data)
			}
			got := evaluateECIProfile(context.Background(), p, nodes, pods, ns, nil)
			if diagtest.StatusNames(got) != tt.want {
				t.Fatalf("got %s", diagtest.Dump(got))
			}
			for i, s := range tt.sum {
				if !strings.HasPrefix(got[i].Summary, s) {
					t.Errorf("result %d: %q\nwant prefix %q", i, got[i].Summary, s)
				}
			}
		})
	}
}

func TestEvaluateNASFSGroup(t *testing.T) {
	nodes := []*corev1.Node{realNode("dc-1"), typeVNode("vk-1")}
	pvs := []kube.PersistentVolume{
		{Name: "pv-nas", Phase: corev1.VolumeBound, ClaimNamespace: "shop", ClaimName: "shared", CSIDriver: nasCSIDriver, Server: "0a1b-x1.cn-shanghai.nas.aliyuncs.com"},
		{Name: "pv-disk", Phase: corev1.VolumeBound, ClaimNamespace: "shop", ClaimName: "disk", CSIDriver: "diskplugin.csi.alibabacloud.com"},
		{Name: "pv-old", Phase: corev1.VolumeReleased, ClaimNamespace: "shop", ClaimName: "gone", CSIDriver: nasCSIDriver},
	}
	pod := func(name, node string, policy corev1.PodFSGroupChangePolicy, vols ...kube.PodVolume) kube.Pod {
		return kube.Pod{Namespace: "shop", Name: name, NodeName: node, Phase: kube.PhaseRunning, OwnerKind: "ReplicaSet", OwnerName: "files-7c9d",
			Detail: &kube.PodDetail{Storage: &kube.PodStorage{FSGroup: 1000, FSGroupChangePolicy: policy, Volumes: vols}}}
	}
	tests := []struct {
		name string
		pods []kube.Pod
		want string
		sum  string
		fix  string
	}{
		{"nas claim", []kube.Pod{pod("a", "vk-1", "", kube.PodVolume{Name: "data", ClaimName: "shared"})}, "WARN",
			"pod shop/a on VNode vk-1 mounts NAS volume(s) data with fsGroup 1000 and fsGroupChangePolicy unset (Always)",
			`kubectl -n shop patch replicaset files-7c9d --type=strategic -p '{"spec":{"template":{"spec":{"securityContext":{"fsGroupChangePolicy":"OnRootMismatch"}}}}}'`},
		{"flexvolume", []kube.Pod{pod("b", "vk-1", corev1.FSGroupChangeAlways, kube.PodVolume{Name: "nas", FlexDriver: nasFlexDriver, Server: "x.nas.aliyuncs.com"})}, "WARN",
			"pod shop/b on VNode vk-1 mounts NAS volume(s) nas with fsGroup 1000 and fsGroupChangePolicy Always", ""},
		{"nfs to nas", []kube.Pod{pod("c", "vk-1", "", kube.PodVolume{Name: "nfs", Server: "0a1b-x1.cn-shanghai.NAS.aliyuncs.com"})}, "WARN", "pod shop/c", ""},
		{"nfs elsewhere", []kube.Pod{pod("d", "vk-1", "", kube.PodVolume{Name: "nfs", Server: "filer.corp.example"})}, "PASS", "no pod on the 1 VNode(s)", ""},
		{"disk claim", []kube.Pod{pod("e", "vk-1", "", kube.PodVolume{Name: "d", ClaimName: "disk"})}, "PASS", "no pod", ""},
		{"released pv", []kube.Pod{pod("f", "vk-1", "", kube.PodVolume{Name: "d", ClaimName: "gone"})}, "PASS", "no pod", ""},
		{"not on a vnode", []kube.Pod{pod("g", "dc-1", "", kube.PodVolume{Name: "data", ClaimName: "shared"})}, "PASS", "no pod", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluateNASFSGroup(context.Background(), nodes, tt.pods, pvs, nil, nil)
			if diagtest.StatusNames(got) != tt.want || !strings.HasPrefix(got[0].Summary, tt.sum) || !strings.Contains(got[0].Remediation, tt.fix) {
				t.Fatalf("got %s\n%s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
	if got := evaluateNASFSGroup(context.Background(), []*corev1.Node{realNode("dc-1")}, nil, nil, nil, nil); diagtest.StatusNames(got) != "SKIP" {
		t.Errorf("no vnode: %s", diagtest.Dump(got))
	}
}
