// Package k8s holds the k8s.* checks: providerID format, podCIDR assignment,
// pod IPs inside their node's podCIDRs, podCIDR overlaps and capacity, the
// CNI's IPAM, ECS nodes' network, kube-proxy's settings, the kubelets'
// version skew and reserved pod annotations. Each check
// gathers nothing itself: it evaluates the run's Kubernetes snapshot with a
// pure function that the tests drive with small tables.
package k8s

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// References into the vendor documentation the checks come from.
const (
	refProviderID = "Alibaba Cloud ACK One / registered clusters FAQ: set the node providerID to <region-id>.<instance-id> for cloud-controller-manager"
	refPodCIDR    = "Alibaba Cloud hybrid cluster networking notes: host-local IPAM from node podCIDR, CCM route sync podCIDR -> instance"
	refCGNAT      = "Alibaba Cloud VPC FAQ: 100.64.0.0/10 carries cloud service addresses (VPC DNS 100.100.2.136/138, OSS, SLS, RDS)"
	refKubeProxy  = "Alibaba Cloud container network FAQ: IPVS UDP timeout after CoreDNS changes; conntrack table full"
	refSkew       = "https://kubernetes.io/releases/version-skew-policy/"
	refReserved   = "https://kubernetes.io/docs/reference/labels-annotations-taints/"
	refCCMRoutes  = "Alibaba Cloud hybrid cluster networking notes: the cloud controller manager creates the VPC route podCIDR -> instance and clears NetworkUnavailable"
)

// The check IDs of this package (a public contract: runbooks match on them).
const (
	CheckProviderIDFormat = "k8s.providerid-format"
	CheckPodCIDRAssigned  = "k8s.podcidr-assigned"
	CheckPodIPInPodCIDR   = "k8s.pod-ip-in-podcidr"
	CheckPodCIDROverlap   = "k8s.podcidr-overlap"
	CheckCNIIPAM          = "k8s.cni-ipam"
	CheckNodeNetwork      = "k8s.node-network"
	CheckPodCIDRCapacity  = "k8s.podcidr-capacity"
	CheckKubeProxy        = "k8s.kube-proxy"
	CheckVersionSkew      = "k8s.version-skew"
	CheckReserved         = "k8s.reserved-annotations"
)

// Family is the k8s.* checks, read from the Kubernetes source.
func Family() diag.Family { return diag.Family{Name: "k8s", Checks: Checks} }

// Checks returns the k8s.* checks.
func Checks() []diag.Check {
	kubeOnly := diag.Needs(kube.Source)
	return []diag.Check{
		{ID: CheckProviderIDFormat, Title: "ECS nodes carry providerID <region-id>.<instance-id>", Needs: kubeOnly, Reads: []string{kube.PartNodes}, Reference: refProviderID,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				return evalProviderIDFormat(ctx, kube.Source.Get(in).Nodes)
			}},
		{ID: CheckPodCIDRAssigned, Title: "every non-virtual node has spec.podCIDR and podCIDRs[0] equals it", Needs: kubeOnly, Reads: []string{kube.PartNodes}, Reference: refPodCIDR,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				return evalPodCIDRAssigned(ctx, kube.Source.Get(in).Nodes)
			}},
		{ID: CheckPodIPInPodCIDR, Title: "every pod IP lies inside its node's podCIDRs", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods}, Reference: refPodCIDR,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				return evalPodIPInPodCIDR(ctx, s.Nodes, s.Pods, s.PodNodes(), s.NodeFacts())
			}},
		{ID: CheckPodCIDROverlap, Title: "node podCIDRs overlap neither each other, Service CIDRs nor 100.64.0.0/10", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartServiceCIDRs}, Reference: refCGNAT,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				res := evalPodCIDROverlap(ctx, s.Nodes, s.ServiceCIDRs)
				if err := s.PartErrors[kube.PartServiceCIDRs]; err != nil && len(s.ServiceCIDRs) == 0 {
					// Node-to-node overlaps were still judged; say what could not be.
					w := diag.Warn("Service CIDRs unknown (%v); set kubernetes.serviceCIDRs to check podCIDRs against them", err)
					w.Remediation = "Add kubernetes.serviceCIDRs (the kube-apiserver --service-cluster-ip-range) to the config."
					if apierrors.IsForbidden(err) {
						w.Remediation += " Or grant list on servicecidrs.networking.k8s.io."
					}
					res = append(res, w)
				}
				return res
			}},
		{ID: CheckCNIIPAM, Title: "The CNI's IPAM allocates from each node's podCIDR", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartCNIConfig, kube.PartVersion}, Reference: refPodCIDR, Run: runCNIIPAM},
		{ID: CheckNodeNetwork, Title: "ECS nodes have their network (no NetworkUnavailable)", Needs: kubeOnly, Reads: []string{kube.PartNodes}, Reference: refCCMRoutes,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				return evalNodeNetwork(ctx, kube.Source.Get(in).Nodes)
			}},
		{ID: CheckPodCIDRCapacity, Title: "Each node's podCIDR holds its pods and its max pods", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartPods}, Reference: refPodCIDR,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				return evalPodCIDRCapacity(ctx, s.Nodes, s.Pods, s.PodNodes(), s.NodeFacts())
			}},
		{ID: CheckKubeProxy, Title: "kube-proxy's IPVS UDP timeout and conntrack limits", Needs: kubeOnly, Reads: []string{kube.PartKubeProxyConfig}, Reference: refKubeProxy,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				if r := s.Unread(kube.PartKubeProxyConfig); r != nil {
					return []*pb.Result{r}
				}
				return evalKubeProxy(s.KubeProxyConfigs)
			}},
		{ID: CheckVersionSkew, Title: "Kubelets and VNodes are within the version skew policy of the API server", Needs: kubeOnly, Reads: []string{kube.PartNodes, kube.PartVersion}, Reference: refSkew,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				return evalVersionSkew(ctx, s.Version, s.Nodes)
			}},
		{ID: CheckReserved, Title: "Pod templates set no undefined kubernetes.io or k8s.io annotation", Needs: kubeOnly, Reads: []string{kube.PartDeployments, kube.PartDaemonSets}, Reference: refReserved,
			Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
				s := kube.Source.Get(in)
				var unread []*pb.Result
				for _, part := range []string{kube.PartDeployments, kube.PartDaemonSets} {
					if r := s.Unread(part); r != nil {
						unread = append(unread, r)
					}
				}
				return append(evalReservedAnnotations(ctx, s.Deployments, s.DaemonSets), unread...)
			}},
	}
}

func nodeObj(n *corev1.Node) *pb.Object { return diag.Obj("Node", "", n.Name) }

// classCounts describes a classification of nodes as evidence.
func classCounts(nodes []*corev1.Node) *pb.Evidence {
	byClass := map[kube.NodeClass][]string{}
	for _, n := range nodes {
		c := kube.ClassOf(n)
		byClass[c] = append(byClass[c], n.Name)
	}
	var parts []string
	for _, c := range []kube.NodeClass{kube.ClassECS, kube.ClassOnPrem, kube.ClassVirtual} {
		names := byClass[c]
		sort.Strings(names)
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", c, len(names), diag.JoinCapped(names)))
		}
	}
	return diag.Ev("node classes", "ECS / on-prem / VNode", strings.Join(parts, "; "))
}
