package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// sgTarget is what required traffic must reach: the ECS nodes that share
// one set of security groups, or the ECI pods.
type sgTarget struct {
	label  string
	groups []string
	flows  []flow
	objs   []*pb.Object
}

// evalSecurityGroups is cloud.security-groups: the security groups of the
// ECS nodes and of ECI admit, with Alibaba Cloud's rule semantics, every
// on-prem pod CIDR and configured on-prem network (all traffic, or
// cloud.requiredPorts), and the nodes admit DNS (UDP and TCP 53) from
// every pod: the cluster's pod CIDRs and the ECI pods. One result per
// target; a FAIL names the group, the flow and the rule that drops it.
func evalSecurityGroups(s *Snapshot, nodes []*corev1.Node) []*pb.Result {
	if e := s.Errors[PartInstances]; e != nil {
		return []*pb.Result{partResult(e)}
	}
	onprem := onPremSources(s, nodes)
	required := s.Expect.RequiredPorts
	var targets []*sgTarget
	byGroups := map[string]*sgTarget{}
	var podSources []flowSource
	for _, n := range nodes {
		for _, c := range kube.PodCIDRs(n) {
			if kube.ClassOf(n) != kube.ClassOnPrem || !coveredByAll(required, dnsTraffic) {
				podSources = append(podSources, flowSource{Label: fmt.Sprintf("pod CIDR %s (node %s)", c, n.Name), Prefixes: []netip.Prefix{c}})
			}
		}
	}
	var eci *flowSource
	if len(s.ECI.SecurityGroups) > 0 {
		eci = &flowSource{Label: "ECI pods (security group " + strings.Join(s.ECI.SecurityGroups, ", ") + ")", Groups: s.ECI.SecurityGroups}
		for _, id := range s.ECI.VSwitches {
			if v := s.VSwitches[id]; v != nil {
				if p, err := netip.ParsePrefix(v.CIDR); err == nil {
					eci.Prefixes = append(eci.Prefixes, p.Masked())
				}
			}
		}
	}
	for _, n := range ecsNodes(s, nodes) {
		if n.inst == nil || n.inst.VPCID != s.VPCID || len(n.inst.SecurityGroupIDs) == 0 {
			continue
		}
		ids := append([]string(nil), n.inst.SecurityGroupIDs...)
		sort.Strings(ids)
		key := strings.Join(ids, ",")
		t := byGroups[key]
		if t == nil {
			t = &sgTarget{groups: ids}
			byGroups[key] = t
			targets = append(targets, t)
		}
		t.objs = append(t.objs, nodeObj(n.node.Name))
	}
	for _, t := range targets {
		names := make([]string, len(t.objs))
		for i, o := range t.objs {
			names[i] = o.Name
		}
		t.label = fmt.Sprintf("ECS nodes %s (security groups %s)", diag.JoinFirst(names, 5), strings.Join(t.groups, ", "))
		t.flows = append(flowsFrom(onprem, required), flowsFrom(podSources, dnsTraffic)...)
		if eci != nil {
			t.flows = append(t.flows, flowsFrom([]flowSource{*eci}, dnsTraffic)...)
		}
	}
	var out []*pb.Result
	switch {
	case s.ECI.Err != nil && len(s.ECI.SecurityGroups) == 0:
		out = append(out, eciUnread(s.ECI.Err))
	case len(s.ECI.SecurityGroups) > 0:
		targets = append(targets, &sgTarget{label: "ECI pods (" + s.ECI.From + ": security groups " + strings.Join(s.ECI.SecurityGroups, ", ") + ")",
			groups: s.ECI.SecurityGroups, flows: flowsFrom(onprem, required)})
	}
	if len(targets) == 0 {
		return append(out, diag.Skip("no ECS node instance in the VPC and no ECI security group (no eci-profile ConfigMap in kube-system, no cloud.eciSecurityGroupIds)"))
	}
	for _, t := range targets {
		out = append(out, judgeTarget(s, t))
	}
	return out
}

// coveredByAll reports whether the required specs already include every
// one of want (then on-prem sources need no separate DNS flows).
func coveredByAll(required, want []PortSpec) bool {
	for _, w := range want {
		ok := false
		for _, r := range required {
			if r.covers(w) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// onPremSources are the on-prem pod CIDRs (one source per CIDR, naming
// its nodes) and the configured on-prem networks.
func onPremSources(s *Snapshot, nodes []*corev1.Node) []flowSource {
	who := map[netip.Prefix][]string{}
	var order []netip.Prefix
	for _, n := range nodes {
		if kube.ClassOf(n) != kube.ClassOnPrem {
			continue
		}
		for _, c := range kube.PodCIDRs(n) {
			if _, seen := who[c]; !seen {
				order = append(order, c)
			}
			who[c] = append(who[c], n.Name)
		}
	}
	var out []flowSource
	for _, c := range order {
		out = append(out, flowSource{Label: fmt.Sprintf("on-prem pod CIDR %s (node %s)", c, strings.Join(who[c], ", ")), Prefixes: []netip.Prefix{c}})
	}
	for _, c := range s.OnPremCIDRs {
		out = append(out, flowSource{Label: fmt.Sprintf("on-prem network %s (cloud.onPremCIDRs)", c), Prefixes: []netip.Prefix{c}})
	}
	return out
}

func flowsFrom(srcs []flowSource, specs []PortSpec) []flow {
	var out []flow
	for _, src := range srcs {
		for _, sp := range specs {
			out = append(out, flow{Src: src, Spec: sp})
		}
	}
	return out
}

func eciUnread(err error) *pb.Result {
	r := kube.UnreadPart(kube.PartECIProfile, err)
	r.Remediation = "Grant get on configmaps/eci-profile in kube-system (deploy/kubernetes/rbac.yaml), or set cloud.eciSecurityGroupIds and cloud.eciVSwitchIds."
	return r
}

// judgeTarget evaluates every flow of t against its groups.
func judgeTarget(s *Snapshot, t *sgTarget) *pb.Result {
	var groups []*SecurityGroup
	var missing, unread []string
	var unreadErr *PartError
	for _, id := range t.groups {
		switch g := s.SecurityGroups[id]; {
		case g != nil:
			groups = append(groups, g)
		case s.ResourceErrs[id] != nil && !s.ResourceErrs[id].Absent:
			unread, unreadErr = append(unread, id), s.ResourceErrs[id]
		default:
			missing = append(missing, id)
		}
	}
	objs := append([]*pb.Object(nil), t.objs...)
	for _, id := range t.groups {
		objs = append(objs, diag.Obj("SecurityGroup", "", id))
	}
	if len(unread) > 0 {
		r := partResult(unreadErr)
		r.Summary = fmt.Sprintf("%s: security group %s could not be read: %v", t.label, strings.Join(unread, ", "), unreadErr.Err)
		r.Objects = objs
		return r
	}
	if len(missing) > 0 {
		r := diag.Fail("%s: security group %s does not exist in %s", t.label, strings.Join(missing, ", "), s.Region)
		r.Objects = objs
		r.Evidence = []*pb.Evidence{diag.Ev("security groups", strings.Join(missing, ", "), "not found (InvalidSecurityGroupId.NotFound)")}
		r.Remediation = fmt.Sprintf("Point ECI at an existing group of VPC %s: set securityGroupId in ConfigMap kube-system/eci-profile "+
			"(kubectl -n kube-system edit configmap eci-profile), or create the group (ECS console > Network & Security > Security Groups > Create).", s.VPCID)
		return r
	}
	type bad struct {
		f flow
		v segmentVerdict
	}
	var fails []bad
	var notes []string
	var fixes []string
	seenFix := map[string]bool{}
	for _, f := range t.flows {
		var failing []segmentVerdict
		for _, v := range evaluateFlow(groups, f) {
			for _, u := range v.Unjudged {
				notes = append(notes, fmt.Sprintf("rule %s of %s uses prefix list %s, which is not expanded", u.ID, u.group, u.PrefixList))
			}
			if !v.Admitted {
				fails = append(fails, bad{f, v})
				failing = append(failing, v)
			}
		}
		for _, fx := range sgFix(s, t, f, failing) {
			if !seenFix[fx] {
				seenFix[fx] = true
				fixes = append(fixes, fx)
			}
		}
	}
	if len(fails) == 0 {
		r := diag.Pass("%s admit all %d required flows", t.label, len(t.flows))
		r.Objects = objs
		r.Evidence = []*pb.Evidence{diag.Ev("required flows", fmt.Sprint(len(t.flows)), "all admitted")}
		if len(notes) > 0 {
			r.Status = pb.Status_WARN
			r.Summary += ", as far as rules with prefix lists allow judging"
			r.Evidence = append(r.Evidence, diag.Ev("not judged", "", diag.JoinCapped(dedupe(notes))))
			r.Remediation = "Check the prefix lists' entries by hand (VPC console > Prefix Lists)."
		}
		return r
	}
	var names []string
	r := diag.Fail("")
	for _, b := range fails {
		name := fmt.Sprintf("%s %s", b.f.Src.Label, segmentSpec(b.f.Spec, b.v))
		names = append(names, name)
		if len(r.Evidence) < diag.ListLimit {
			r.Evidence = append(r.Evidence, diag.Ev(name, "admitted", b.v.describe()))
		}
	}
	r.Summary = fmt.Sprintf("%s: %d required flow(s) not admitted: %s", t.label, len(fails), diag.JoinFirst(names, 5))
	r.Objects = objs
	r.Remediation = "Add or re-order inbound rules (ECS console > Network & Security > Security Groups > group > Inbound rules; " +
		"a smaller priority number is decided first, and at equal priority Drop beats Accept): " + diag.JoinFirst(fixes, 6) + "."
	return r
}

// sgFix is the change that admits flow f, whose failing port segments
// are failing: an Accept for the whole required traffic, decided before
// every Drop that drops part of it. Nothing is decided before priority 1,
// so Drops of priority 1 move to 2 first (and then an Accept of priority 1
// already there may be enough).
func sgFix(s *Snapshot, t *sgTarget, f flow, failing []segmentVerdict) []string {
	if len(failing) == 0 {
		return nil
	}
	group, prio := t.groups[0], 101
	var out []string
	acceptFirst := true // every failing segment has an Accept of priority 1 behind a priority-1 Drop
	for _, v := range failing {
		d := v.Rule
		if d == nil {
			prio, acceptFirst = 1, false
			continue
		}
		group = d.group
		if d.Priority == 1 {
			out = append(out, fmt.Sprintf("aliyun ecs ModifySecurityGroupRule --RegionId %s --SecurityGroupId %s --SecurityGroupRuleId %s --Priority 2", s.Region, d.group, d.ID))
		}
		prio = min(prio, max(1, d.Priority-1))
		if d.Priority != 1 || v.Shadowed == nil || v.Shadowed.Priority != 1 {
			acceptFirst = false
		}
	}
	if acceptFirst {
		return out
	}
	src := ""
	switch {
	case len(f.Src.Groups) > 0:
		src = "--SourceGroupId " + f.Src.Groups[0]
	case len(f.Src.Prefixes) > 0:
		src = "--SourceCidrIp " + f.Src.Prefixes[0].String()
	}
	return append(out, fmt.Sprintf("aliyun ecs AuthorizeSecurityGroup --RegionId %s --SecurityGroupId %s --IpProtocol %s --PortRange %s %s --Priority %d --Policy accept",
		s.Region, group, f.Spec.Protocol, f.Spec.portRange(), src, prio))
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
