package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// This file is the security-group evaluator: which rule decides whether
// inbound traffic reaches an instance, with Alibaba Cloud's semantics.
//
//   - The rules of every group an instance (or ECI pod) is in are merged.
//   - Priority 1 is decided first, 100 last.
//   - At equal priority a Drop rule is decided before an Accept rule.
//   - The first rule that matches a packet decides it; nothing matching
//     means dropped (inbound is denied by default).
//   - A group whose InnerAccessPolicy is Accept admits traffic between its
//     own instances. The evaluator decides that after every explicit rule,
//     so an explicit Drop is never assumed to be overridden by it.
//   - Sources are CIDR blocks or groups (group-to-group: the instances of
//     that group); a port range -1/-1 is every port.
//
// A required flow (a source, a protocol and a port range) is split into
// port segments at every rule boundary, and each segment is judged: the
// flow is admitted only when every segment is admitted, for the whole
// source, by an Accept that no Drop touching the source comes before.

// PortSpec is traffic a group must admit: a protocol and, for TCP and UDP,
// a port range.
type PortSpec struct {
	Protocol string // tcp, udp, icmp
	Lo, Hi   int
}

func (p PortSpec) String() string {
	switch {
	case p.Protocol != "tcp" && p.Protocol != "udp":
		return p.Protocol
	case p.Lo == 1 && p.Hi == 65535:
		return p.Protocol + "/all ports"
	case p.Lo == p.Hi:
		return fmt.Sprintf("%s/%d", p.Protocol, p.Lo)
	}
	return fmt.Sprintf("%s/%d-%d", p.Protocol, p.Lo, p.Hi)
}

// portRange is the API's form of a spec's ports: "lo/hi", -1/-1 for ICMP.
func (p PortSpec) portRange() string {
	if p.Protocol != "tcp" && p.Protocol != "udp" {
		return "-1/-1"
	}
	return fmt.Sprintf("%d/%d", p.Lo, p.Hi)
}

// covers reports whether p admits everything q asks.
func (p PortSpec) covers(q PortSpec) bool {
	return p.Protocol == q.Protocol && p.Lo <= q.Lo && q.Hi <= p.Hi
}

var (
	// allTraffic is what hybrid traffic needs by default.
	allTraffic = []PortSpec{{"tcp", 1, 65535}, {"udp", 1, 65535}, {"icmp", 0, 0}}
	// dnsTraffic is the FAQ's DNS rule: pods query CoreDNS on the nodes.
	dnsTraffic = []PortSpec{{"udp", 53, 53}, {"tcp", 53, 53}}
)

// parsePortSpec reads "all", "icmp", "tcp/80", "udp/8000-9000".
func parsePortSpec(s string) ([]PortSpec, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	switch low {
	case "all":
		return allTraffic, nil
	case "icmp":
		return []PortSpec{{"icmp", 0, 0}}, nil
	}
	proto, ports, ok := strings.Cut(low, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return nil, fmt.Errorf("%q: want all, icmp, tcp/<port>[-<port>] or udp/<port>[-<port>]", s)
	}
	lo, hi, err := parsePorts(ports, "-")
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return []PortSpec{{proto, lo, hi}}, nil
}

// parsePorts reads "lo<sep>hi" or a single port, 1-65535, lo <= hi.
func parsePorts(s, sep string) (lo, hi int, err error) {
	a, b, found := strings.Cut(s, sep)
	if !found {
		b = a
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("ports %q are not a range within 1-65535", s)
	}
	return lo, hi, nil
}

// parseRule reads one inbound permission as the API answers it. Priority
// defaults to 1 and Policy to Accept, as the API does when they are left
// out.
func parseRule(id, priority, policy, proto, portRange, srcCIDR, srcGroup, prefixList, desc string) (SGRule, error) {
	r := SGRule{ID: id, Description: desc, Priority: 1, Protocol: strings.ToLower(proto), SourceGroup: srcGroup, PrefixList: prefixList}
	if priority != "" {
		n, err := strconv.Atoi(priority)
		if err != nil || n < 1 || n > 100 {
			return r, fmt.Errorf("rule %s: priority %q is not 1-100", id, priority)
		}
		r.Priority = n
	}
	switch strings.ToLower(policy) {
	case "", "accept":
	case "drop":
		r.Drop = true
	default:
		return r, fmt.Errorf("rule %s: policy %q is neither Accept nor Drop", id, policy)
	}
	switch r.Protocol {
	case "tcp", "udp":
		if portRange == "-1/-1" || portRange == "" {
			r.Ports = [2]int{1, 65535}
			break
		}
		lo, hi, err := parsePorts(portRange, "/")
		if err != nil {
			return r, fmt.Errorf("rule %s: %w", id, err)
		}
		r.Ports = [2]int{lo, hi}
	case "all", "icmp", "icmpv6", "gre":
	default:
		return r, fmt.Errorf("rule %s: protocol %q is unknown", id, proto)
	}
	if srcCIDR != "" {
		p, err := netip.ParsePrefix(srcCIDR)
		if err != nil {
			a, aerr := netip.ParseAddr(srcCIDR)
			if aerr != nil {
				return r, fmt.Errorf("rule %s: source %q is not a CIDR block", id, srcCIDR)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.Source = p.Masked()
	}
	r.Raw = r.String()
	return r, nil
}

// String is the rule as the console shows it: "priority 1 Drop UDP 53/53
// from 0.0.0.0/0".
func (r SGRule) String() string {
	policy := "Accept"
	if r.Drop {
		policy = "Drop"
	}
	ports := "-1/-1"
	if (r.Protocol == "tcp" || r.Protocol == "udp") && (r.Ports != [2]int{1, 65535}) {
		ports = fmt.Sprintf("%d/%d", r.Ports[0], r.Ports[1])
	}
	src := r.Source.String()
	switch {
	case r.SourceGroup != "":
		src = "security group " + r.SourceGroup
	case r.PrefixList != "":
		src = "prefix list " + r.PrefixList
	}
	return fmt.Sprintf("priority %d %s %s %s from %s", r.Priority, policy, strings.ToUpper(r.Protocol), ports, src)
}

// flowSource is where required traffic comes from: address ranges and,
// for pods that sit in security groups themselves (ECI), those groups.
type flowSource struct {
	Label    string
	Prefixes []netip.Prefix
	Groups   []string
}

// flow is one piece of required traffic.
type flow struct {
	Src  flowSource
	Spec PortSpec
}

// groupRule is a rule with the group it belongs to.
type groupRule struct {
	SGRule
	group string
	// inner marks the implicit rule of an Accept inner-access policy.
	inner bool
}

// segmentVerdict is how one port segment of a flow is decided.
type segmentVerdict struct {
	Lo, Hi   int
	Admitted bool
	// Rule decided it: the Accept that admits it, the Drop that drops it;
	// nil when no rule admits it.
	Rule *groupRule
	// Partial: Rule (a Drop) matches only part of the source.
	Partial bool
	// PartlyAdmitted is an Accept that admits only part of the source.
	PartlyAdmitted *groupRule
	// Shadowed is the first Accept after a deciding Drop that would have
	// admitted the segment.
	Shadowed *groupRule
	// Unjudged are prefix-list rules ahead of the decision, which the
	// evaluator cannot expand.
	Unjudged []*groupRule
}

func (v segmentVerdict) same(w segmentVerdict) bool {
	return v.Admitted == w.Admitted && v.Rule == w.Rule && v.Partial == w.Partial && v.PartlyAdmitted == w.PartlyAdmitted
}

// evaluateFlow judges f against the merged rules of groups; the verdicts
// are the flow's port segments with distinct outcomes, in port order.
func evaluateFlow(groups []*SecurityGroup, f flow) []segmentVerdict {
	var rules []*groupRule
	for _, g := range groups {
		for _, r := range g.Rules {
			rules = append(rules, &groupRule{SGRule: r, group: g.ID})
		}
	}
	sort.SliceStable(rules, func(i, j int) bool {
		if rules[i].Priority != rules[j].Priority {
			return rules[i].Priority < rules[j].Priority
		}
		return rules[i].Drop && !rules[j].Drop
	})
	for _, g := range groups {
		if strings.EqualFold(g.InnerAccessPolicy, "Accept") && containsString(f.Src.Groups, g.ID) {
			rules = append(rules, &groupRule{SGRule: SGRule{ID: "inner-access policy Accept", Priority: 101, Protocol: "all",
				SourceGroup: g.ID, Raw: "inner-access policy Accept (instances of " + g.ID + " reach each other)"}, group: g.ID, inner: true})
		}
	}
	var relevant []*groupRule
	for _, r := range rules {
		if protocolMatches(r.Protocol, f.Spec.Protocol) && (r.PrefixList != "" || touches(r, f.Src)) {
			relevant = append(relevant, r)
		}
	}
	var out []segmentVerdict
	for _, seg := range segments(f.Spec, relevant) {
		v := decide(relevant, f, seg)
		if n := len(out); n > 0 && out[n-1].same(v) && out[n-1].Hi+1 == v.Lo {
			out[n-1].Hi = v.Hi
			continue
		}
		out = append(out, v)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func protocolMatches(rule, want string) bool { return rule == "all" || rule == want }

// portful reports whether a protocol has ports.
func portful(proto string) bool { return proto == "tcp" || proto == "udp" }

// touches reports whether the rule's source matches part of the flow's.
func touches(r *groupRule, src flowSource) bool {
	if r.SourceGroup != "" {
		return containsString(src.Groups, r.SourceGroup)
	}
	for _, p := range src.Prefixes {
		if r.Source.IsValid() && r.Source.Overlaps(p) {
			return true
		}
	}
	return false
}

// coversSource reports whether the rule's source matches all of the flow's.
func coversSource(r *groupRule, src flowSource) bool {
	if r.SourceGroup != "" {
		return containsString(src.Groups, r.SourceGroup)
	}
	if !r.Source.IsValid() || len(src.Prefixes) == 0 {
		return false
	}
	for _, p := range src.Prefixes {
		if !(r.Source.Bits() <= p.Bits() && r.Source.Contains(p.Addr())) {
			return false
		}
	}
	return true
}

// segments splits the flow's ports at every boundary of the relevant
// rules, so that each segment lies wholly inside or outside every rule.
func segments(spec PortSpec, rules []*groupRule) [][2]int {
	if !portful(spec.Protocol) {
		return [][2]int{{0, 0}}
	}
	cuts := map[int]bool{spec.Lo: true, spec.Hi + 1: true}
	for _, r := range rules {
		if !portful(r.Protocol) {
			continue
		}
		if r.Ports[0] > spec.Lo && r.Ports[0] <= spec.Hi {
			cuts[r.Ports[0]] = true
		}
		if r.Ports[1] >= spec.Lo && r.Ports[1] < spec.Hi {
			cuts[r.Ports[1]+1] = true
		}
	}
	points := make([]int, 0, len(cuts))
	for c := range cuts {
		points = append(points, c)
	}
	sort.Ints(points)
	out := make([][2]int, 0, len(points)-1)
	for i := 0; i+1 < len(points); i++ {
		out = append(out, [2]int{points[i], points[i+1] - 1})
	}
	return out
}

// decide walks the sorted rules for one port segment.
func decide(rules []*groupRule, f flow, seg [2]int) segmentVerdict {
	v := segmentVerdict{Lo: seg[0], Hi: seg[1]}
	for _, r := range rules {
		if portful(f.Spec.Protocol) && portful(r.Protocol) && (r.Ports[0] > seg[0] || r.Ports[1] < seg[1]) {
			continue // by construction the segment is then outside the rule
		}
		if r.PrefixList != "" {
			v.Unjudged = append(v.Unjudged, r)
			continue
		}
		covers := coversSource(r, f.Src)
		switch {
		case r.Drop:
			v.Rule, v.Partial = r, !covers
			v.Shadowed = nextAccept(rules, r, f, seg)
			return v
		case covers:
			v.Admitted, v.Rule = true, r
			return v
		case v.PartlyAdmitted == nil:
			v.PartlyAdmitted = r
		}
	}
	return v
}

// nextAccept is the first Accept after rule drop that admits the segment
// for the whole source.
func nextAccept(rules []*groupRule, drop *groupRule, f flow, seg [2]int) *groupRule {
	after := false
	for _, r := range rules {
		if r == drop {
			after = true
			continue
		}
		if !after || r.Drop || r.PrefixList != "" {
			continue
		}
		if portful(f.Spec.Protocol) && portful(r.Protocol) && (r.Ports[0] > seg[0] || r.Ports[1] < seg[1]) {
			continue
		}
		if coversSource(r, f.Src) {
			return r
		}
	}
	return nil
}

// describe says how a segment of f is decided, for evidence.
func (v segmentVerdict) describe() string {
	switch {
	case v.Admitted:
		return fmt.Sprintf("admitted by %s rule %s (%s)", v.Rule.group, v.Rule.ID, v.Rule.Raw)
	case v.Rule != nil:
		part := ""
		if v.Partial {
			part = " (for part of the source)"
		}
		s := fmt.Sprintf("dropped%s by %s rule %s (%s)", part, v.Rule.group, v.Rule.ID, v.Rule.Raw)
		switch a := v.Shadowed; {
		case a != nil && a.Priority == v.Rule.Priority:
			s += fmt.Sprintf("; the Accept %s (%s) has the same priority, and Drop wins at equal priority", a.ID, a.Raw)
		case a != nil:
			s += fmt.Sprintf("; the Accept %s (%s) comes after it", a.ID, a.Raw)
		}
		return s
	case v.PartlyAdmitted != nil:
		return fmt.Sprintf("only part of the source is admitted (%s rule %s: %s); no rule admits the rest", v.PartlyAdmitted.group, v.PartlyAdmitted.ID, v.PartlyAdmitted.Raw)
	}
	return "no rule admits it"
}

// segmentSpec is the part of spec a verdict is about.
func segmentSpec(spec PortSpec, v segmentVerdict) PortSpec {
	if !portful(spec.Protocol) {
		return spec
	}
	return PortSpec{spec.Protocol, v.Lo, v.Hi}
}
