package cloud

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// evalECSInstances is cloud.ecs-instances: every node whose providerID
// names an ECS instance maps to an instance that exists in that region, is
// Running, whose primary private IP is the node's InternalIP, and which
// sits in the cluster's VPC.
func evalECSInstances(s *Snapshot, nodes []*corev1.Node) []*pb.Result {
	all := ecsNodes(s, nodes)
	if len(all) == 0 {
		return []*pb.Result{diag.Skip("no ECS node: no node's providerID names an ECS instance")}
	}
	witness := routedInstances(s)
	var out []*pb.Result
	for _, n := range all {
		if r := ecsNodeResult(s, n, witness); r != nil {
			out = append(out, r)
		}
	}
	if e := s.Errors[PartVPC]; e != nil && s.VPCID == "" {
		r := partResult(e)
		r.Summary = "the cluster's VPC is unknown, so no instance's VPC was judged: " + e.Err.Error()
		out = append(out, r)
	}
	if len(out) == 0 {
		vpc := ""
		if s.VPCID != "" {
			vpc = ", in VPC " + s.VPCID
		}
		r := diag.Pass("all %d ECS node(s) map to Running instances in their region with the node's InternalIP as primary private IP%s", len(all), vpc)
		r.Evidence = []*pb.Evidence{diag.Ev("ECS nodes checked", fmt.Sprint(len(all)), fmt.Sprint(len(all)))}
		out = append(out, r)
	}
	return out
}

// routedInstances maps an instance ID to a route that names it as next
// hop: evidence that the instance exists even when DescribeInstances does
// not show it (a RAM policy limited by resource or condition filters
// lists silently, and its DryRun still passes).
func routedInstances(s *Snapshot) map[string]string {
	out := map[string]string{}
	for _, t := range s.Tables {
		for _, e := range t.Entries {
			for _, h := range e.NextHops {
				if h.Type == "Instance" && out[h.ID] == "" {
					out[h.ID] = fmt.Sprintf("%s in route table %s", e, t.ID)
				}
			}
		}
	}
	return out
}

const providerIDFix = "Set the kubelet's --provider-id to %s (region-id and instance-id from the metadata server: " +
	"curl -s 100.100.100.200/latest/meta-data/region-id and .../instance-id). providerID is immutable: " +
	"kubectl drain %s --ignore-daemonsets, kubectl delete node %s, restart the kubelet so the node re-registers."

func ecsNodeResult(s *Snapshot, n ecsNode, witness map[string]string) *pb.Result {
	id, name := n.ref.instance, n.node.Name
	region := n.ref.region
	if region == "" {
		region = s.Region
	}
	objs := []*pb.Object{nodeObj(name), instanceObj(id)}
	pid := diag.Ev("providerID", "<region-id>.<instance-id>", n.node.Spec.ProviderID)
	if !s.Queried[id] {
		r := diag.Errorf("node %s joined after the cloud source read the node list; instance %s was not looked up", name, id)
		r.Objects, r.Remediation = objs, "Re-run the diagnosis."
		return r
	}
	if e := s.InstanceErrs[id]; e != nil {
		r := diag.Errorf("node %s: instance %s could not be looked up: %v", name, id, e.Err)
		r.Objects, r.Remediation = objs, e.Fix()
		r.Evidence = []*pb.Evidence{pid, diag.Ev("RAM action "+e.Action, "allowed and answered", e.Err.Error())}
		return r
	}
	if n.inst == nil {
		if w := witness[id]; w != "" {
			r := diag.Errorf("node %s: instance %s is not visible to this credential, yet the VPC routes to it: the RAM policy limits ecs:DescribeInstances by resource or condition", name, id)
			r.Objects = objs
			r.Evidence = []*pb.Evidence{pid,
				diag.Ev("DescribeInstances "+region, "instance "+id, "not in the answer (its DryRun passed: the action itself is allowed)"),
				diag.Ev("VPC route naming the instance", "none if the instance is gone", w)}
			r.Remediation = `Allow ecs:DescribeInstances on every instance: {"Effect": "Allow", "Action": ["ecs:DescribeInstances"], "Resource": "*"} without a Condition (deploy/cloud/ram-policy.json).`
			return r
		}
		r := diag.Fail("node %s: instance %s does not exist in region %s", name, id, region)
		r.Objects = objs
		r.Evidence = []*pb.Evidence{pid,
			diag.Ev("DescribeInstances "+region, "instance "+id, "not found (a DryRun confirmed the credential may list instances, so the instance is absent, not hidden)")}
		r.Remediation = fmt.Sprintf("If the instance was released, remove the node: kubectl drain %[1]s --ignore-daemonsets --delete-emptydir-data; kubectl delete node %[1]s. "+
			"If the providerID names the wrong instance: ", name) + fmt.Sprintf(providerIDFix, "<region-id>.<instance-id>", name, name)
		return r
	}

	in := n.inst
	status := pb.Status_PASS
	raise := func(st pb.Status) {
		if st == pb.Status_FAIL || status == pb.Status_PASS {
			status = st
		}
	}
	var problems, fixes []string
	// Evidence: the providerID, then only what differs.
	ev := []*pb.Evidence{pid}

	switch {
	case n.ref.region == "":
		raise(pb.Status_WARN)
		problems = append(problems, fmt.Sprintf("providerID has no region; the instance is in %s", in.Region))
		fixes = append(fixes, fmt.Sprintf(providerIDFix, in.Region+"."+id, name, name)+" (k8s.providerid-format fails this node too.)")
	case in.Region != n.ref.region:
		raise(pb.Status_FAIL)
		problems = append(problems, fmt.Sprintf("the instance is in region %s, not %s as the providerID says", in.Region, n.ref.region))
		fixes = append(fixes, fmt.Sprintf(providerIDFix, in.Region+"."+id, name, name))
	}
	if in.Region != region {
		ev = append(ev, diag.Ev("region", region, in.Region))
	}

	switch in.Status {
	case "Running":
	case "Starting", "Pending":
		raise(pb.Status_WARN)
		problems = append(problems, "the instance is "+in.Status)
		fixes = append(fixes, "Wait for the instance to reach Running, then re-run.")
	default:
		raise(pb.Status_FAIL)
		problems = append(problems, fmt.Sprintf("the instance is %s, not Running", in.Status))
		fixes = append(fixes, fmt.Sprintf("Start the instance (ECS console > Instances > %s > Start, or: aliyun ecs StartInstance --RegionId %s --InstanceId %s), "+
			"or remove the node: kubectl delete node %s.", id, in.Region, id, name))
	}
	if in.Status != "Running" {
		ev = append(ev, diag.Ev("instance status", "Running", in.Status))
	}

	ip := internalIP(n.node)
	switch {
	case ip == "":
		raise(pb.Status_FAIL)
		problems = append(problems, "the node has no InternalIP")
		fixes = append(fixes, fmt.Sprintf("Start the kubelet with --node-ip=%s.", in.PrimaryIP))
	case ip != in.PrimaryIP:
		raise(pb.Status_FAIL)
		what := fmt.Sprintf("InternalIP %s is not the instance's primary private IP %s", ip, in.PrimaryIP)
		if slices.Contains(in.PrivateIPs, ip) {
			what += " (it is a secondary IP of the instance)"
		}
		problems = append(problems, what)
		fixes = append(fixes, fmt.Sprintf("Make the node report its instance's primary private IP: kubelet --node-ip=%s (ECS console > Instances > %s > Network information shows it); "+
			"if the providerID names another machine's instance, fix the providerID instead.", in.PrimaryIP, id))
	}
	if ip != in.PrimaryIP {
		ev = append(ev, diag.Ev("private IP", "node InternalIP "+orNone(ip), "instance primary IP "+in.PrimaryIP))
	}

	if s.VPCID != "" {
		if in.VPCID != s.VPCID {
			raise(pb.Status_FAIL)
			problems = append(problems, fmt.Sprintf("the instance is in VPC %s, not the cluster's VPC %s", in.VPCID, s.VPCID))
			fixes = append(fixes, fmt.Sprintf("Pod routes and the leased line live in %s: run the node on an instance in that VPC "+
				"(a stopped instance can be moved: aliyun ecs ModifyInstanceVpcAttribute), or set cloud.vpcId if %s is the cluster's VPC.", s.VPCID, in.VPCID))
		}
		if in.VPCID != s.VPCID {
			ev = append(ev, diag.Ev("VPC", s.VPCID, in.VPCID+" (vSwitch "+in.VSwitchID+")"))
		}
	}
	if status == pb.Status_PASS {
		return nil
	}
	r := diag.Res(status, "node %s: instance %s: %s", name, id, strings.Join(problems, "; "))
	r.Objects, r.Evidence, r.Remediation = objs, ev, strings.Join(fixes, " ")
	return r
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
