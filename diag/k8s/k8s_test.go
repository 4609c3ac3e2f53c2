package k8s

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

func TestProviderIDFormat(t *testing.T) {
	withRegion := kubelab.ECSNode("ecs-r", "i-uf6f5lbqvn1l8dfnbzj1", "172.20.9.0/24", "192.168.9.1")
	cases := []struct {
		name   string
		nodes  []*corev1.Node
		status pb.Status
		want   string
	}{
		{"good", []*corev1.Node{kubelab.ECSNode("ecs-1", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "172.20.1.0/24", "192.168.1.1")}, pb.Status_PASS, "1 ECS node(s)"},
		{"alicloud prefix", []*corev1.Node{kubelab.ECSNode("ecs-1", "alicloud://cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "", "")}, pb.Status_PASS, "valid providerID"},
		{"missing region", []*corev1.Node{withRegion}, pb.Status_FAIL, "node ecs-r: providerID \"i-uf6f5lbqvn1l8dfnbzj1\": missing region"},
		{"empty on ECS", []*corev1.Node{kubelab.ECSNode("ecs-2", "", "", "")}, pb.Status_FAIL, "node ecs-2: providerID is empty"},
		{"slash", []*corev1.Node{kubelab.ECSNode("ecs-3", "cn-shanghai/i-uf6f5lbqvn1l8dfnbzj1", "", "")}, pb.Status_FAIL, "want <region-id>.<instance-id>"},
		{"bad instance", []*corev1.Node{kubelab.ECSNode("ecs-4", "cn-shanghai.uf6f5lbqvn", "", "")}, pb.Status_FAIL, "is not an ECS instance ID"},
		{"bad region", []*corev1.Node{kubelab.ECSNode("ecs-5", "Shanghai.i-uf6f5lbqvn1l8dfnbzj1", "", "")}, pb.Status_FAIL, "is not a region ID"},
		{"other scheme on ECS", []*corev1.Node{kubelab.ECSNode("ecs-6", "aws:///cn-shanghai/i-uf6f5lbqvn1l8dfnbzj1", "", "")}, pb.Status_FAIL, "scheme"},
		{"on-prem not failed", []*corev1.Node{kubelab.OnPremNode("dc-1", "172.21.0.0/24", "10.10.0.1")}, pb.Status_PASS, "0 ECS node(s)"},
		{"vnode not failed", []*corev1.Node{kubelab.VNode("vk-1", "type")}, pb.Status_PASS, "0 ECS node(s)"},
		{"duplicate", []*corev1.Node{
			kubelab.ECSNode("ecs-a", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "", ""),
			kubelab.ECSNode("ecs-b", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "", ""),
		}, pb.Status_FAIL, "claimed by 2 nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := evalProviderIDFormat(context.Background(), c.nodes)
			diagtest.ExpectOne(t, rs, c.status, c.want)
			for _, r := range rs {
				if r.Status == pb.Status_FAIL && !strings.Contains(r.Remediation, "--provider-id=") {
					t.Errorf("FAIL without the kubelet flag in the fix: %q", r.Remediation)
				}
			}
		})
	}
	// The fix names the region from the node's label.
	r := evalProviderIDFormat(context.Background(), []*corev1.Node{withRegion})[0]
	if !strings.Contains(r.Remediation, "--provider-id=cn-shanghai.${INSTANCE_ID}") {
		t.Errorf("remediation does not use the region label: %s", r.Remediation)
	}
}

func TestClassify(t *testing.T) {
	onpremWithOtherID := kubelab.OnPremNode("dc-2", "", "")
	onpremWithOtherID.Spec.ProviderID = "kind://docker/kind/dc-2"
	aliyunVNode := kubelab.VNode("vk-2", "aliyun")
	cases := []struct {
		node *corev1.Node
		want kube.NodeClass
	}{
		{kubelab.ECSNode("e", "cn-hangzhou.i-bp1abcdefgh12345", "", ""), kube.ClassECS},
		{kubelab.ECSNode("e", "", "", ""), kube.ClassECS}, // instance-type label
		{kubelab.OnPremNode("o", "", ""), kube.ClassOnPrem},
		{onpremWithOtherID, kube.ClassOnPrem},
		{kubelab.VNode("v", "type"), kube.ClassVirtual},
		{aliyunVNode, kube.ClassVirtual},
	}
	for _, c := range cases {
		if got := kube.Classify(c.node); got.Class != c.want || got.Reason == "" {
			t.Errorf("%s: got %v, want %s with a reason", c.node.Name, got, c.want)
		}
	}
}

func TestPodCIDRAssigned(t *testing.T) {
	mismatch := kubelab.OnPremNode("dc-m", "172.21.1.0/24", "10.10.0.2")
	mismatch.Spec.PodCIDRs = []string{"172.21.9.0/24"}
	onlyPodCIDR := kubelab.OnPremNode("dc-p", "172.21.2.0/24", "")
	onlyPodCIDR.Spec.PodCIDRs = nil
	garbage := kubelab.OnPremNode("dc-g", "", "")
	garbage.Spec.PodCIDR, garbage.Spec.PodCIDRs = "172.21.300.0/24", []string{"172.21.300.0/24"}
	cases := []struct {
		name   string
		nodes  []*corev1.Node
		status pb.Status
		want   string
	}{
		{"good", []*corev1.Node{kubelab.OnPremNode("dc-1", "172.21.0.0/24", "")}, pb.Status_PASS, "all 1"},
		{"empty", []*corev1.Node{kubelab.ECSNode("ecs-1", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "", "")}, pb.Status_FAIL, "node ecs-1: spec.podCIDR is empty"},
		{"mismatch", []*corev1.Node{mismatch}, pb.Status_FAIL, "differs from spec.podCIDR"},
		{"podCIDRs empty (a server before 1.16)", []*corev1.Node{onlyPodCIDR}, pb.Status_PASS, "all 1 non-virtual node(s) have a podCIDR"},
		{"not a CIDR", []*corev1.Node{garbage}, pb.Status_FAIL, "is not a CIDR"},
		{"vnode excluded", []*corev1.Node{kubelab.VNode("vk-1", "type")}, pb.Status_PASS, "all 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diagtest.ExpectOne(t, evalPodCIDRAssigned(context.Background(), c.nodes), c.status, c.want)
		})
	}
}

func TestPodIPInPodCIDR(t *testing.T) {
	nodes := []*corev1.Node{
		kubelab.OnPremNode("dc-1", "172.21.0.0/24", "10.10.0.1"),
		kubelab.OnPremNode("dc-2", "", "10.10.0.2"),
		kubelab.VNode("vk-1", "type"),
	}
	dual := kubelab.OnPremNode("dc-6", "172.21.6.0/24", "10.10.0.6")
	dual.Spec.PodCIDRs = []string{"172.21.6.0/24", "fd00:6::/64"}
	nodes = append(nodes, dual)
	pod := func(name, node string, ips ...string) kube.Pod {
		var addrs []netip.Addr
		for _, ip := range ips {
			a, _ := netip.ParseAddr(ip)
			addrs = append(addrs, a)
		}
		p := kube.Pod{Namespace: "shop", Name: name, NodeName: node}
		p.SetIPs(addrs)
		return p
	}
	hostNet := func(p kube.Pod) kube.Pod { p.Namespace, p.HostNetwork = "kube-system", true; return p }
	cases := []struct {
		name   string
		pods   []kube.Pod
		status pb.Status
		want   string
	}{
		{"inside", []kube.Pod{pod("a", "dc-1", "172.21.0.5")}, pb.Status_PASS, "all 1 pod(s)"},
		{"outside", []kube.Pod{pod("a", "dc-1", "172.21.0.5"), pod("b", "dc-1", "10.244.3.7")}, pb.Status_FAIL, "node dc-1: 1 pod IP(s) outside podCIDR 172.21.0.0/24, e.g. shop/b (10.244.3.7)"},
		{"hostNetwork excluded", []kube.Pod{hostNet(pod("kp", "dc-1", "10.10.0.1"))}, pb.Status_PASS, "all 0"},
		{"vnode excluded", []kube.Pod{pod("eci", "vk-1", "192.168.50.3")}, pb.Status_PASS, "all 0"},
		{"no podCIDR not judged", []kube.Pod{pod("c", "dc-2", "172.99.0.1")}, pb.Status_PASS, "all 0"},
		{"pending without IP", []kube.Pod{pod("d", "dc-1")}, pb.Status_PASS, "all 0"},
		{"dual stack inside", []kube.Pod{pod("e", "dc-6", "172.21.6.9", "fd00:6::9")}, pb.Status_PASS, "all 1"},
		{"dual stack v6 outside", []kube.Pod{pod("f", "dc-6", "172.21.6.9", "fd00:7::9")}, pb.Status_FAIL, "node dc-6: 1 pod IP(s)"},
		{"garbage IP", []kube.Pod{pod("g", "dc-1", "not-an-ip")}, pb.Status_FAIL, "(an IP that does not parse)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diagtest.ExpectOne(t, evalPodIPInPodCIDR(context.Background(), nodes, c.pods, nil, nil), c.status, c.want)
		})
	}
}

func TestPodCIDROverlap(t *testing.T) {
	n := func(name, cidr string) *corev1.Node { return kubelab.OnPremNode(name, cidr, "") }
	cases := []struct {
		name     string
		nodes    []*corev1.Node
		services []string
		status   pb.Status
		want     string
		results  int
	}{
		{"disjoint", []*corev1.Node{n("a", "172.21.0.0/24"), n("b", "172.21.1.0/24")}, []string{"10.96.0.0/12"}, pb.Status_PASS, "2 node podCIDR(s)", 1},
		{"same CIDR twice", []*corev1.Node{n("a", "172.21.0.0/24"), n("b", "172.21.0.0/24")}, nil, pb.Status_FAIL, "podCIDR 172.21.0.0/24 is shared by 2 nodes: a, b", 1},
		{"nested", []*corev1.Node{n("a", "172.21.0.0/16"), n("b", "172.21.5.0/24")}, nil, pb.Status_FAIL, "node a podCIDR 172.21.0.0/16 overlaps node b podCIDR 172.21.5.0/24", 1},
		{"service", []*corev1.Node{n("a", "10.96.4.0/24")}, []string{"10.96.0.0/12"}, pb.Status_FAIL, "node a podCIDR 10.96.4.0/24 overlaps Service CIDR 10.96.0.0/12", 1},
		{"cgnat", []*corev1.Node{n("a", "100.100.0.0/24")}, nil, pb.Status_FAIL, "node a podCIDR 100.100.0.0/24 overlaps 100.64.0.0/10", 1},
		{"service in cgnat is not ours", []*corev1.Node{n("a", "172.21.0.0/24")}, []string{"100.64.0.0/16"}, pb.Status_PASS, "", 1},
		{"three in a chain", []*corev1.Node{n("a", "172.0.0.0/8"), n("b", "172.21.0.0/16"), n("c", "172.21.3.0/24")}, nil, pb.Status_FAIL,
			"node a podCIDR 172.0.0.0/8 encloses the podCIDRs of 2 other nodes: b (172.21.0.0/16), c (172.21.3.0/24)", 1},
		{"node encloses 100.64.0.0/10", []*corev1.Node{n("a", "100.0.0.0/8")}, nil, pb.Status_FAIL, "node a podCIDR 100.0.0.0/8 overlaps 100.64.0.0/10", 1},
		{"node equals the Service CIDR", []*corev1.Node{n("a", "10.96.0.0/12")}, []string{"10.96.0.0/12"}, pb.Status_FAIL, "node a podCIDR 10.96.0.0/12 overlaps Service CIDR 10.96.0.0/12", 1},
		{"many in 100.64.0.0/10", []*corev1.Node{n("a", "100.100.1.0/24"), n("b", "100.100.2.0/24"), n("c", "100.100.3.0/24"), n("d", "100.100.4.0/24")}, nil, pb.Status_FAIL,
			"4 node podCIDRs overlap 100.64.0.0/10 (Alibaba Cloud service addresses): a (100.100.1.0/24), b (100.100.2.0/24), c (100.100.3.0/24) ... and 1 more", 1},
		{"shared inside another node's", []*corev1.Node{n("a", "172.21.0.0/16"), n("b", "172.21.5.0/24"), n("c", "172.21.5.0/24")}, nil, pb.Status_FAIL,
			"podCIDR 172.21.5.0/24 is shared by 2 nodes: b, c", 2},
		{"v6 disjoint from v4", []*corev1.Node{n("a", "fd00::/64"), n("b", "172.21.0.0/24")}, []string{"fd00:1::/108"}, pb.Status_PASS, "", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := evalPodCIDROverlap(context.Background(), c.nodes, c.services)
			diagtest.ExpectOne(t, rs, c.status, c.want)
			if len(rs) != c.results {
				t.Errorf("got %d results, want %d:\n  %s", len(rs), c.results, strings.Join(diagtest.Statuses(rs), "\n  "))
			}
		})
	}
}

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }
