package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const podIPFix = "Pod IPs must come from the node's podCIDR, or the VPC route podCIDR -> instance (and the BGP route for on-prem nodes) " +
	"does not carry them. With Calico, use host-local IPAM from the node podCIDR: in the calico-config ConfigMap's cni_network_config set " +
	`"ipam": {"type": "host-local", "subnet": "usePodCidr"}, ` +
	"roll the calico-node DaemonSet, then recreate the pods listed. With Flannel, make --cluster-cidr of kube-controller-manager equal the Flannel Network. " +
	"k8s.cni-ipam judges the CNI's configuration."

type strayPod struct {
	pod *kube.Pod
	ip  string
}

// evalPodIPInPodCIDR fails every node that has pods with IPs outside its
// podCIDRs. hostNetwork pods, pods on VNodes and pods without IPs are left
// out; pods on nodes without a podCIDR are counted (podcidr-assigned fails
// those nodes).
//
// podNodes is kube.Snapshot.PodNodes (each pod's node by position) and
// facts kube.Snapshot.NodeFacts; nil to find them here.
func evalPodIPInPodCIDR(ctx context.Context, nodes []*corev1.Node, pods []kube.Pod, podNodes []int32, facts *kube.NodeFacts) []*pb.Result {
	poll := diag.NewPoll(ctx)
	type nodeInfo struct {
		node     *corev1.Node
		prefixes []netip.Prefix
		virtual  bool
	}
	if podNodes == nil {
		podNodes = kube.NodePositions(nodes, pods)
	}
	if facts == nil {
		facts = kube.FactsOf(nodes)
	}
	byPos := make([]*nodeInfo, len(nodes))
	for i, n := range nodes {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		byPos[i] = &nodeInfo{node: n, prefixes: facts.PodCIDRs[i], virtual: facts.Classes[i] == kube.ClassVirtual}
	}
	stray := map[*nodeInfo][]strayPod{}
	checked, noCIDR, unknownNode := 0, 0, 0
	var ips []netip.Addr
	for i := range pods {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		p := &pods[i]
		ips = p.AppendIPs(ips[:0])
		if p.HostNetwork || len(ips) == 0 || p.NodeName == "" {
			continue
		}
		var ni *nodeInfo
		if j := podNodes[i]; j >= 0 {
			ni = byPos[j]
		}
		switch {
		case ni == nil:
			unknownNode++
			continue
		case ni.virtual:
			continue
		case len(ni.prefixes) == 0:
			noCIDR++
			continue
		}
		checked++
		for _, ip := range ips {
			if !ip.IsValid() || !inAny(ip, ni.prefixes) {
				stray[ni] = append(stray[ni], strayPod{pod: p, ip: ipText(ip)})
			}
		}
	}
	failing := make([]*nodeInfo, 0, len(stray))
	for ni := range stray {
		failing = append(failing, ni)
	}
	sort.Slice(failing, func(i, j int) bool { return failing[i].node.Name < failing[j].node.Name })
	var out []*pb.Result
	for _, ni := range failing {
		name, sp := ni.node.Name, stray[ni]
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		sort.Slice(sp, func(i, j int) bool {
			if sp[i].pod.Namespace != sp[j].pod.Namespace {
				return sp[i].pod.Namespace < sp[j].pod.Namespace
			}
			return sp[i].pod.Name < sp[j].pod.Name
		})
		cidrs := prefixStrings(ni.prefixes)
		r := diag.Fail("node %s: %d pod IP(s) outside podCIDR %s, e.g. %s/%s (%s)",
			name, len(sp), strings.Join(cidrs, ","), sp[0].pod.Namespace, sp[0].pod.Name, sp[0].ip)
		r.Objects = []*pb.Object{nodeObj(ni.node)}
		for i, s := range sp {
			if i == diag.ListLimit {
				r.Evidence = append(r.Evidence, diag.Ev("more pods", "", fmt.Sprintf("%d more not listed", len(sp)-diag.ListLimit)))
				break
			}
			r.Objects = append(r.Objects, diag.Obj("Pod", s.pod.Namespace, s.pod.Name))
			r.Evidence = append(r.Evidence, diag.Ev("pod "+s.pod.Namespace+"/"+s.pod.Name, "in "+strings.Join(cidrs, " or "), s.ip))
		}
		r.Remediation = podIPFix
		out = append(out, r)
	}
	if len(out) == 0 {
		r := diag.Pass("all %d pod(s) with a pod-network IP lie inside their node's podCIDRs", checked)
		if noCIDR > 0 || unknownNode > 0 {
			r.Evidence = []*pb.Evidence{diag.Ev("not judged", "0",
				fmt.Sprintf("%d pod(s) on nodes without podCIDR, %d pod(s) on nodes not in the snapshot", noCIDR, unknownNode))}
		}
		out = append(out, r)
	}
	return out
}

// ipText is a pod IP as evidence.
func ipText(ip netip.Addr) string {
	if !ip.IsValid() {
		return "an IP that does not parse"
	}
	return ip.String()
}

func inAny(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func prefixStrings(ps []netip.Prefix) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}
