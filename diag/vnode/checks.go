package vnode

import (
	"context"
	"sort"
	"strconv"

	"github.com/vnodediag/vnodediag/diag"
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
)

// Parts of the snapshot the checks read besides nodes and pods.
const (
	partDaemonSets  = "daemonsets"
	partDeployments = "deployments"
	partAPIService  = "apiservice v1beta1.metrics.k8s.io"
	partEvents      = "events"
)

// Checks returns the vnode.* checks, sorted by ID.
func Checks() []diag.Check {
	kubeOnly := []diag.SourceName{diag.SourceKube}
	return []diag.Check{
		{ID: "vnode.daemonset-affinity", Title: "DaemonSets keep off VNodes", Needs: kubeOnly, Reference: refSelfManaged, Run: runDaemonSetAffinity},
		{ID: "vnode.k8s-version", Title: "API server supports label-based VNode scheduling (>= 1.16)", Needs: kubeOnly, Reference: refSelfManaged, Run: runK8sVersion},
		{ID: "vnode.metrics-server", Title: "metrics-server works with VNodes", Needs: kubeOnly, Reference: refVNodeFAQ, Run: runMetricsServer},
		{ID: "vnode.present", Title: "VNodes present and Ready", Needs: kubeOnly, Reference: refSelfManaged, Run: runPresent},
		{ID: "vnode.registry-tls", Title: "VNode pods failing image pulls on certificate errors", Needs: kubeOnly, Reference: refRegistry, Run: runRegistryTLS},
	}
}

// snapshotOf returns the run's snapshot, or the ERROR result that replaces
// every other result when it is missing.
func snapshotOf(in *diag.Inputs) (*kube.Snapshot, []*pb.Result) {
	s := kube.From(in)
	if s == nil {
		return nil, []*pb.Result{diag.Errorf("the Kubernetes snapshot is missing from this run")}
	}
	return s, nil
}

// partError is the ERROR result for a part of the snapshot that failed to
// list, nil when it was read.
func partError(s *kube.Snapshot, part string) *pb.Result {
	err := s.PartErrors[part]
	if err == nil {
		return nil
	}
	res := diag.Errorf("could not read %s: %v", part, err)
	res.Evidence = []*pb.Evidence{diag.Ev(part, "listed", err.Error())}
	return res
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
