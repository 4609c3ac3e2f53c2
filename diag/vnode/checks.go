package vnode

import (
	"context"
	"sort"
	"strconv"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Vendor notes the checks come from.
const (
	refVNodeFAQ = "https://www.alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/virtual-node-faq"
	// refSelfManaged is the note on connecting a self-managed cluster to ECI
	// through VNodes: its limits (no DaemonSet) and scheduling.
	refSelfManaged = "https://help.aliyun.com/document_detail/363065.html"
	refRegistry    = "https://www.alibabacloud.com/help/en/eci/user-guide/use-self-managed-image-repositories"
	refECIProfile  = "https://www.alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/configure-an-eci-profile"
	refNAS         = "https://www.alibabacloud.com/help/en/eci/user-guide/mount-a-nas-file-system"
)

// The check IDs of this package (a public contract: runbooks match on them).
const (
	CheckAgent             = "vnode.agent"
	CheckDaemonSetAffinity = "vnode.daemonset-affinity"
	CheckECIProfile        = "vnode.eci-profile"
	CheckK8sVersion        = "vnode.k8s-version"
	CheckMetricsServer     = "vnode.metrics-server"
	CheckNASFSGroup        = "vnode.nas-fsgroup"
	CheckPodPlacement      = "vnode.pod-placement"
	CheckPresent           = "vnode.present"
	CheckRegistryTLS       = "vnode.registry-tls"
)

// Family is the vnode.* checks, read from the Kubernetes source.
func Family() diag.Family { return diag.Family{Name: "vnode", Checks: Checks} }

// Checks returns the vnode.* checks, sorted by ID.
func Checks() []diag.Check {
	kubeOnly := diag.Needs(kube.Source)
	return []diag.Check{
		// The nodes are needed only when the agents were found as pods,
		// and the agent source then read the Kubernetes source itself.
		{ID: CheckAgent, Title: "A cloud-side agent runs on each VNode, Ready, same version, fresh", Needs: diag.Needs(agent.Source), Optional: kubeOnly, Reads: []string{kube.PartNodes}, Reference: refSelfManaged, Run: runAgent},
		{ID: CheckDaemonSetAffinity, Title: "DaemonSets keep off VNodes", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods, kube.PartDaemonSets}, Reference: refSelfManaged, Run: runDaemonSetAffinity},
		{ID: CheckECIProfile, Title: "The eci-profile parses, is complete, and its selectors pick the intended pods", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods, kube.PartECIProfile, kube.PartNamespaces}, Reference: refECIProfile, Run: runECIProfile},
		{ID: CheckK8sVersion, Title: "API server supports label-based VNode scheduling (>= 1.16)", Needs: kubeOnly, Reads: []string{kube.PartVersion}, Reference: refSelfManaged, Run: runK8sVersion},
		{ID: CheckMetricsServer, Title: "metrics-server works with VNodes", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartDeployments, kube.PartMetricsAPIService}, Reference: refVNodeFAQ, Run: runMetricsServer},
		{ID: CheckNASFSGroup, Title: "VNode pods mounting NAS set fsGroupChangePolicy OnRootMismatch", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods, kube.PartPersistentVolumes, kube.PartDeployments}, Reference: refNAS, Run: runNASFSGroup},
		{ID: CheckPodPlacement, Title: "Pending pods meant for a VNode can be placed on one", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods, kube.PartEvents, kube.PartDeployments, kube.PartECIProfile, kube.PartNamespaces}, Reference: refSelfManaged, Run: runPodPlacement},
		{ID: CheckPresent, Title: "VNodes present and Ready", Needs: kubeOnly, Reads: []string{kube.PartNodes}, Reference: refSelfManaged, Run: runPresent},
		{ID: CheckRegistryTLS, Title: "VNode pods failing image pulls on certificate errors", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods, kube.PartEvents, kube.PartDeployments}, Reference: refRegistry, Run: runRegistryTLS},
	}
}

// canceled is the ERROR result for a check whose context ended.
func canceled(ctx context.Context) []*pb.Result {
	if ctx.Err() != nil {
		return diag.Stopped(ctx)
	}
	return nil
}

// noVNode is the SKIP of the checks that apply only when VNodes exist.
func noVNode(nodes int) *pb.Result {
	res := diag.Skip("no VNode in the cluster: %s", noVNodeReason)
	res.Evidence = []*pb.Evidence{diag.Ev("VNodes", "at least one", "0 of "+strconv.Itoa(nodes)+" nodes")}
	return res
}

const noVNodeReason = "no node is labelled type=virtual-kubelet or k8s.aliyun.com/vnode=true, " +
	"or tainted virtual-kubelet.io/provider or k8s.aliyun.com/vnode=true"

// sortResults orders results by their first object; results without an
// object (summaries) come last, in the order they were made.
func sortResults(rs []*pb.Result) []*pb.Result {
	key := func(r *pb.Result) (bool, string) {
		if len(r.Objects) == 0 {
			return true, ""
		}
		o := r.Objects[0]
		return false, o.Kind + "\x00" + o.Namespace + "\x00" + o.Name
	}
	sort.SliceStable(rs, func(i, j int) bool {
		ei, ki := key(rs[i])
		ej, kj := key(rs[j])
		if ei != ej {
			return !ei
		}
		return ki < kj
	})
	return rs
}

// worst is the more severe of two statuses among PASS, WARN and FAIL.
func worst(a, b pb.Status) pb.Status {
	rank := map[pb.Status]int{pb.Status_PASS: 0, pb.Status_WARN: 1, pb.Status_FAIL: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
