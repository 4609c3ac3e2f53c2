package cloud

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Check IDs (a public contract: runbooks match on them).
const (
	CheckECSInstances    = "cloud.ecs-instances"
	CheckVPCPodRoutes    = "cloud.vpc-pod-routes"
	CheckVPCOnPremRoutes = "cloud.vpc-onprem-routes"
	CheckVBRBGP          = "cloud.vbr-bgp"
	CheckPrivateZone     = "cloud.privatezone"
	CheckSecurityGroups  = "cloud.security-groups"
	CheckECIVSwitches    = "cloud.eci-vswitches"
)

// References into the vendor documentation the checks come from.
const (
	refECSInstances = "Alibaba Cloud hybrid cluster FAQ: an ECS node's providerID <region-id>.<instance-id> must name its own Running instance, " +
		"in the cluster's region and VPC, for cloud-controller-manager (node lifecycle, routes, load balancers)"
	refPodRoutes = "Alibaba Cloud hybrid cluster FAQ and cloud-controller-manager route sync: every route table of the ECS nodes' vSwitches needs " +
		"podCIDR -> instance for each ECS node; a VPC with several route tables needs all of them (cloud-config routeTableIDs)"
	refOnPremRoutes = "Alibaba Cloud hybrid cluster FAQ: the on-prem pod CIDRs and networks must be routed from the VPC to the leased line " +
		"(Express Connect VBR), by BGP or a static route toward the VBR"
	refVBRBGP = "Alibaba Cloud hybrid cluster FAQ: connect the data center over Express Connect and exchange routes with BGP through the VBR " +
		"(on-prem pod CIDRs learned by the VBR and the VPC; VPC and pod CIDRs advertised to the on-prem router)"
	refPrivateZone = "Alibaba Cloud hybrid cluster FAQ: DNS between the IDC and the VPC (PrivateZone zones bound to the VPC, the inbound endpoint " +
		"for on-prem forwarders, outbound forwarding rules to on-prem DNS); the cluster domain must not overlap a PrivateZone zone"
	refSecurityGroups = "Alibaba Cloud hybrid cluster FAQ: the security groups of the ECS nodes and of ECI must admit the on-prem pod CIDRs and networks, " +
		"and UDP and TCP 53 from pods to CoreDNS on the nodes"
	refECIVSwitches = "Alibaba Cloud ECI FAQ: ECI pods fail to start when their vSwitches have no free IP address " +
		"(add vSwitches of other zones to vSwitchIds in the eci-profile ConfigMap)"
)

// Checks returns the cloud.* checks.
func Checks() []diag.Check {
	// kube first: when the Kubernetes source failed, the check's ERROR names
	// it (the cloud source then only says it had no nodes to read).
	needs := diag.Needs(kube.Source, Source)
	return []diag.Check{
		{ID: CheckECSInstances, Title: "each ECS node's providerID names a Running instance in the region and VPC, with the node's InternalIP",
			Needs: needs, Reference: refECSInstances,
			Run: withNodes(evalECSInstances)},
		{ID: CheckVPCPodRoutes, Title: "every route table of the ECS nodes' vSwitches routes each ECS podCIDR to its instance",
			Needs: needs, Reference: refPodRoutes,
			Run: withNodes(evalPodRoutes)},
		{ID: CheckVPCOnPremRoutes, Title: "the VPC routes on-prem pod CIDRs and networks toward the leased line",
			Needs: needs, Reference: refOnPremRoutes,
			Run: withNodes(evalOnPremRoutes)},
		{ID: CheckVBRBGP, Title: "the VBRs' BGP peers are Established, and every prefix crosses the leased line at every hop",
			Needs: needs, Optional: diag.Needs(bgp.Source), Reference: refVBRBGP,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
				var tbl *bgp.Table
				if bgp.Source.Gathered(in) {
					tbl = bgp.Source.Get(in)
				}
				return evalVBRBGP(Source.Get(in), kube.Source.Get(in).Nodes, tbl)
			}},
		{ID: CheckPrivateZone, Title: "PrivateZone zones, the inbound endpoint and the forwarding rules serve the VPC; the cluster domain overlaps no bound zone",
			Needs: needs, Optional: diag.Needs(dnsprobe.Source), Reference: refPrivateZone, Run: runPrivateZone},
		{ID: CheckSecurityGroups, Title: "the nodes' and ECI's security groups admit on-prem traffic and DNS from pods",
			Needs: needs, Reference: refSecurityGroups,
			Run: withNodes(evalSecurityGroups)},
		{ID: CheckECIVSwitches, Title: "the vSwitches ECI uses exist in the VPC and have free addresses",
			Needs: needs, Reference: refECIVSwitches,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalECIVSwitches(Source.Get(in)) }},
	}
}

// withNodes runs eval on the cloud snapshot and the cluster's nodes.
func withNodes(eval func(*Snapshot, []*corev1.Node) []*pb.Result) func(context.Context, *diag.Inputs) []*pb.Result {
	return func(_ context.Context, in *diag.Inputs) []*pb.Result {
		return eval(Source.Get(in), kube.Source.Get(in).Nodes)
	}
}

// runPrivateZone reads the cluster domain as the dns checks do (the
// CoreDNS Corefile in the Kubernetes snapshot, then dns.clusterDomain) and
// evaluates cloud.privatezone; a Corefile that cannot be read is its own
// ERROR, and the rest is still judged.
func runPrivateZone(_ context.Context, in *diag.Inputs) []*pb.Result {
	var c *dnsprobe.Config
	if dnsprobe.Source.Gathered(in) {
		c = &dnsprobe.Source.Get(in).Config
	}
	domains, source, failed := dnsprobe.ClusterDomains(kube.Source.Get(in), c)
	out := evalPrivateZone(Source.Get(in), c, domains, source)
	if failed != nil {
		out = append(out, failed)
	}
	return out
}

// partResult is the ERROR of a check that needs a part that was not read.
func partResult(e *PartError) *pb.Result {
	r := diag.Errorf("could not read the %s: %v", e.Part, e.Err)
	r.Evidence = []*pb.Evidence{diag.Ev("RAM action "+e.Action, "allowed and answered", e.Err.Error())}
	r.Remediation = e.Fix()
	return r
}

func nodeObj(name string) *pb.Object { return diag.Obj("Node", "", name) }

func instanceObj(id string) *pb.Object { return diag.Obj("EcsInstance", "", id) }

func tableObj(id string) *pb.Object { return diag.Obj("RouteTable", "", id) }

// internalIP is a node's first InternalIP.
func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// noRouteCreated reports the NetworkUnavailable condition the cloud
// controller manager sets while a node's route is missing.
func noRouteCreated(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue {
			return true, fmt.Sprintf("NetworkUnavailable=True (%s: %s)", c.Reason, c.Message)
		}
	}
	return false, ""
}

// ecsNode is an ECS node with its instance as the snapshot has it.
type ecsNode struct {
	ref  nodeRef
	node *corev1.Node
	inst *Instance // nil: not found or not read
}

// ecsNodes are the ECS nodes whose instance the snapshot holds, sorted by
// name.
func ecsNodes(s *Snapshot, nodes []*corev1.Node) []ecsNode {
	var out []ecsNode
	for _, n := range nodes {
		if r, ok := ecsRef(n); ok {
			out = append(out, ecsNode{ref: r, node: n, inst: s.Instances[r.instance]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Name < out[j].node.Name })
	return out
}

// clusterTables are the route tables of the vSwitches of the ECS nodes'
// instances (in the cluster's VPC): the table DescribeVSwitches names for
// the vSwitch, else the custom table that lists it, else the VPC's system
// table. The map holds the nodes behind each table.
func clusterTables(s *Snapshot, nodes []ecsNode) ([]*RouteTable, map[string][]string) {
	byID := map[string]*RouteTable{}
	var system *RouteTable
	for _, t := range s.Tables {
		byID[t.ID] = t
		if t.Type == "System" {
			system = t
		}
	}
	tableOf := func(vsw string) *RouteTable {
		if v := s.VSwitches[vsw]; v != nil && byID[v.RouteTableID] != nil {
			return byID[v.RouteTableID]
		}
		for _, t := range s.Tables {
			for _, id := range t.VSwitchIDs {
				if id == vsw {
					return t
				}
			}
		}
		return system
	}
	behind := map[string][]string{}
	var out []*RouteTable
	for _, n := range nodes {
		if n.inst == nil || n.inst.VPCID != s.VPCID {
			continue
		}
		t := tableOf(n.inst.VSwitchID)
		if t == nil {
			continue
		}
		if _, seen := behind[t.ID]; !seen {
			out = append(out, t)
		}
		behind[t.ID] = append(behind[t.ID], n.node.Name)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Type == "System") != (out[j].Type == "System") {
			return out[i].Type == "System"
		}
		return out[i].ID < out[j].ID
	})
	return out, behind
}

// tableLabel names a table, its type and the nodes behind it:
// "route table vtb-x (system, vSwitches of ecs-1, ecs-2)".
func tableLabel(t *RouteTable, nodes []string) string {
	kind := strings.ToLower(t.Type)
	if kind == "" {
		kind = "unknown type"
	}
	if len(nodes) == 0 {
		return fmt.Sprintf("route table %s (%s)", t.ID, kind)
	}
	return fmt.Sprintf("route table %s (%s, vSwitches of %s)", t.ID, kind, diag.JoinFirst(nodes, 5))
}
