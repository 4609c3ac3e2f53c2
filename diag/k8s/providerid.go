package k8s

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const labelRegion = "topology.kubernetes.io/region"

// evalProviderIDFormat fails every ECS node whose providerID the cloud
// controller manager cannot use, and every providerID claimed by two nodes.
// On-prem nodes and VNodes are classified, not failed.
func evalProviderIDFormat(ctx context.Context, nodes []*corev1.Node) []*pb.Result {
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	ecs := 0
	owners := map[string][]string{}
	for _, n := range sortedNodes(nodes) {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		cls := kube.Classify(n)
		if cls.Class != kube.ClassECS {
			continue
		}
		ecs++
		pid, err := kube.ParseProviderID(n.Spec.ProviderID)
		if err != nil {
			r := diag.Fail("node %s: %v", n.Name, err)
			r.Objects = []*pb.Object{nodeObj(n)}
			r.Evidence = []*pb.Evidence{
				diag.Ev("classified as ECS", "", cls.Reason),
				diag.Ev("spec.providerID", "<region-id>.<instance-id> (e.g. cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1)", quoteOrEmpty(n.Spec.ProviderID)),
			}
			r.Remediation = providerIDFix(n)
			out = append(out, r)
			continue
		}
		key := pid.Region + "." + pid.Instance
		owners[key] = append(owners[key], n.Name)
	}
	keys := make([]string, 0, len(owners))
	for k := range owners {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if names := owners[k]; len(names) > 1 {
			r := diag.Fail("providerID %s is claimed by %d nodes: %s", k, len(names), diag.JoinCapped(names))
			for _, name := range names {
				r.Objects = append(r.Objects, diag.Obj("Node", "", name))
			}
			r.Evidence = []*pb.Evidence{diag.Ev("nodes with providerID "+k, "1", fmt.Sprint(len(names)))}
			r.Remediation = "Each ECS instance must be one Node. Delete the stale Node objects (kubectl delete node <name>) and make sure each kubelet runs with its own --provider-id=${REGION_ID}.${INSTANCE_ID}."
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		r := diag.Pass("%d ECS node(s) have a valid providerID; %d node(s) in all", ecs, len(nodes))
		r.Evidence = []*pb.Evidence{classCounts(nodes)}
		out = append(out, r)
	}
	return out
}

func providerIDFix(n *corev1.Node) string {
	region := n.Labels[labelRegion]
	if region == "" {
		region = "${REGION_ID}"
	}
	return fmt.Sprintf("On node %s set the kubelet flag --provider-id=%s.${INSTANCE_ID} "+
		"(on the instance: REGION_ID=$(curl -s http://100.100.100.200/latest/meta-data/region-id) "+
		"INSTANCE_ID=$(curl -s http://100.100.100.200/latest/meta-data/instance-id)). "+
		"spec.providerID cannot be changed once set: kubectl drain %s --ignore-daemonsets, kubectl delete node %s, "+
		"then restart the kubelet so it re-registers.", n.Name, region, n.Name, n.Name)
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return "(empty)"
	}
	return fmt.Sprintf("%q", s)
}

func sortedNodes(nodes []*corev1.Node) []*corev1.Node {
	s := append([]*corev1.Node(nil), nodes...)
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	return s
}
