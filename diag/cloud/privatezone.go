package cloud

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func zoneObj(name string) *pb.Object { return diag.Obj("DNSZone", "", strings.TrimSuffix(name, ".")) }

func trim(name string) string { return strings.TrimSuffix(name, ".") }

// evalPrivateZone is cloud.privatezone. With the dns section (c, canonical;
// nil without it): each of dns.privateZones exists and is bound to the
// VPC; the VPC's inbound endpoint exists and its addresses are what
// dns.forwarders sends the PrivateZone zones to; each of dns.onPremZones
// has an outbound forwarding rule bound to the VPC whose forward IPs are
// the on-prem resolvers. Always: the cluster domain (domains, from the
// CoreDNS Corefile as the dns checks read it) overlaps none of the zones
// bound to the VPC, configured or not — the FAQ's ClusterDomain trap.
func evalPrivateZone(s *Snapshot, c *dnsprobe.Config, domains []string, domainSource string) []*pb.Result {
	if s.VPCID == "" {
		if e := s.Errors[PartVPC]; e != nil {
			return []*pb.Result{partResult(e)}
		}
	}
	var out []*pb.Result
	if e := s.Errors[PartZones]; e != nil {
		out = append(out, partResult(e))
	} else {
		out = append(out, clusterDomainResults(s, domains, domainSource)...)
		if c != nil {
			out = append(out, zoneBindingResults(s, c)...)
		}
	}
	if c == nil {
		return append(out, diag.Skip("no dns section: zone bindings, the inbound endpoint and the forwarding rules are judged against dns.privateZones, dns.onPremZones and dns.forwarders"))
	}
	if e := s.Errors[PartEndpoints]; e != nil {
		out = append(out, partResult(e))
	} else if e := s.Errors[PartRules]; e != nil {
		out = append(out, partResult(e))
	} else {
		out = append(out, inboundResult(s, c))
		out = append(out, outboundResults(s, c)...)
	}
	return out
}

// clusterDomainResults: no zone bound to the VPC equals, contains or lies
// inside the cluster domain.
func clusterDomainResults(s *Snapshot, domains []string, source string) []*pb.Result {
	var out []*pb.Result
	for _, d := range domains {
		for _, z := range s.Zones {
			rel := dnsprobe.Overlap(d, z.Name)
			if rel == "" {
				continue
			}
			r := diag.Fail("cluster domain %s %s the PrivateZone zone %s bound to VPC %s: the VPC's resolver answers those names from PrivateZone, and pods and nodes disagree on them",
				trim(d), rel, trim(z.Name), s.VPCID)
			r.Objects = []*pb.Object{zoneObj(z.Name), zoneObj(d)}
			r.Evidence = []*pb.Evidence{diag.Ev("zones bound to "+s.VPCID, "disjoint from the cluster domain "+trim(d)+" (from "+source+")", trim(z.Name)+" ("+z.ID+")")}
			r.Remediation = fmt.Sprintf("Unbind zone %s from VPC %s (Alibaba Cloud DNS console > Private DNS > %s > Effective Scope; BindZoneVpc replaces the whole list: "+
				"aliyun pvtz BindZoneVpc --ZoneId %s with every other VPC it must keep), or rename it so it neither equals, contains nor lies inside %s.",
				trim(z.Name), s.VPCID, trim(z.Name), z.ID, trim(d))
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		names := make([]string, len(s.Zones))
		for i, z := range s.Zones {
			names[i] = trim(z.Name)
		}
		r := diag.Pass("the cluster domain %s overlaps none of the %d PrivateZone zones bound to VPC %s", strings.Join(trimAll(domains), ", "), len(s.Zones), s.VPCID)
		r.Evidence = []*pb.Evidence{diag.Ev("cluster domain (from "+source+")", "disjoint from "+diag.JoinCapped(names), strings.Join(trimAll(domains), ", "))}
		out = append(out, r)
	}
	return out
}

func trimAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = trim(x)
	}
	return out
}

// zoneBindingResults: each configured PrivateZone zone is bound to the VPC.
func zoneBindingResults(s *Snapshot, c *dnsprobe.Config) []*pb.Result {
	var out []*pb.Result
	var bound []string
	for _, name := range c.PrivateZones {
		if i := slices.IndexFunc(s.Zones, func(z Zone) bool { return z.Name == name }); i >= 0 {
			bound = append(bound, trim(name)+" ("+s.Zones[i].ID+")")
			continue
		}
		l := s.ZoneLookups[name]
		obj := []*pb.Object{zoneObj(name)}
		var r *pb.Result
		switch {
		case l == nil:
			r = diag.Errorf("PrivateZone zone %s is not bound to VPC %s, and it was not looked up", trim(name), s.VPCID)
		case l.Err != nil:
			r = partResult(l.Err)
			r.Summary = fmt.Sprintf("PrivateZone zone %s is not bound to VPC %s, and looking it up failed: %v", trim(name), s.VPCID, l.Err.Err)
		case !l.Found:
			r = diag.Fail("PrivateZone zone %s (dns.privateZones) does not exist", trim(name))
			r.Evidence = []*pb.Evidence{diag.Ev("zone "+trim(name), "bound to "+s.VPCID, "no such zone")}
			r.Remediation = fmt.Sprintf("Create it and bind it to the VPC (Alibaba Cloud DNS console > Private DNS > Add Zone): aliyun pvtz AddZone --ZoneName %s, "+
				"then aliyun pvtz BindZoneVpc --ZoneId <new zone ID> --Vpcs.1.RegionId %s --Vpcs.1.VpcId %s. Or remove it from dns.privateZones.", trim(name), s.Region, s.VPCID)
		default:
			where := make([]string, len(l.BoundTo))
			args := ""
			for i, v := range l.BoundTo {
				where[i] = v.VPCID + " (" + v.Region + ")"
				args += fmt.Sprintf(" --Vpcs.%d.RegionId %s --Vpcs.%d.VpcId %s", i+1, v.Region, i+1, v.VPCID)
			}
			args += fmt.Sprintf(" --Vpcs.%d.RegionId %s --Vpcs.%d.VpcId %s", len(l.BoundTo)+1, s.Region, len(l.BoundTo)+1, s.VPCID)
			boundTo := "no VPC"
			if len(where) > 0 {
				boundTo = strings.Join(where, ", ")
			}
			r = diag.Fail("PrivateZone zone %s is not bound to the cluster's VPC %s (it is bound to %s): pods and nodes in the VPC cannot resolve it", trim(name), s.VPCID, boundTo)
			r.Evidence = []*pb.Evidence{diag.Ev("VPCs of zone "+trim(name)+" ("+l.ID+")", s.VPCID, boundTo)}
			r.Remediation = fmt.Sprintf("Bind it to %s (Alibaba Cloud DNS console > Private DNS > %s > Effective Scope > add the VPC). BindZoneVpc replaces the whole list, "+
				"so name every VPC it keeps: aliyun pvtz BindZoneVpc --ZoneId %s%s", s.VPCID, trim(name), l.ID, args)
		}
		r.Objects = obj
		out = append(out, r)
	}
	if len(bound) > 0 {
		r := diag.Pass("PrivateZone zone(s) bound to VPC %s: %s", s.VPCID, diag.JoinCapped(bound))
		out = append([]*pb.Result{r}, out...)
	}
	return out
}

// inboundEndpoints are the resolver endpoints on-prem forwards to:
// cloud.inboundEndpointIds, else the endpoints of the VPC that no
// forwarding rule uses (the API names no direction; a rule's endpoint is
// outbound).
func inboundEndpoints(s *Snapshot) (eps []ResolverEndpoint, how string) {
	if ids := s.Expect.InboundEndpoint; len(ids) > 0 {
		for _, e := range s.Endpoints {
			if slices.Contains(ids, e.ID) {
				eps = append(eps, e)
			}
		}
		return eps, "cloud.inboundEndpointIds"
	}
	for _, e := range s.Endpoints {
		if e.VPCID == s.VPCID && !slices.ContainsFunc(s.Rules, func(r ResolverRule) bool { return r.EndpointID == e.ID }) {
			eps = append(eps, e)
		}
	}
	return eps, "the resolver endpoints of " + s.VPCID + " that no forwarding rule uses"
}

// inboundResult: the forward targets of the PrivateZone zones are the
// inbound endpoint's addresses.
func inboundResult(s *Snapshot, c *dnsprobe.Config) *pb.Result {
	eps, how := inboundEndpoints(s)
	var ips []string
	var objs []*pb.Object
	var unhealthy []string
	for _, e := range eps {
		objs = append(objs, diag.Obj("ResolverEndpoint", "", e.ID))
		for _, ip := range e.IPs {
			ips = append(ips, netip.AddrPortFrom(ip, 53).String())
		}
		if e.Status != "SUCCESS" {
			unhealthy = append(unhealthy, e.ID+" is "+e.Status)
		}
	}
	type target struct{ zone, addr string }
	var targets []target
	for _, z := range c.PrivateZones {
		for _, f := range c.Forwarders {
			if f.Zone == z {
				for _, t := range f.Targets {
					targets = append(targets, target{z, t})
				}
			}
		}
	}
	if len(eps) == 0 {
		r := diag.Fail("VPC %s has no PrivateZone inbound endpoint (%s): on-prem resolvers have nowhere to forward the PrivateZone zones", s.VPCID, how)
		r.Evidence = []*pb.Evidence{diag.Ev("inbound endpoint of "+s.VPCID, "one, with an address per zone", "none")}
		r.Remediation = fmt.Sprintf("Create an inbound endpoint in %s (Alibaba Cloud DNS console > Private DNS > Resolver > Inbound Endpoints > Create, one address in each of two vSwitches), "+
			"then forward the PrivateZone zones to its addresses from the on-prem resolvers and list them in dns.forwarders; set cloud.inboundEndpointIds if it is not found by itself.", s.VPCID)
		return r
	}
	if len(targets) == 0 {
		r := diag.Pass("inbound endpoint %s of VPC %s answers on %s (no dns.forwarders for the PrivateZone zones to compare)", endpointIDs(eps), s.VPCID, strings.Join(ips, ", "))
		r.Objects = objs
		return r
	}
	var wrong []string
	var ev []*pb.Evidence
	for _, t := range targets {
		if !slices.Contains(ips, t.addr) {
			wrong = append(wrong, fmt.Sprintf("%s -> %s", trim(t.zone), t.addr))
			ev = append(ev, diag.Ev("forward target of "+trim(t.zone), "an inbound endpoint address: "+strings.Join(ips, ", "), t.addr))
		}
	}
	var r *pb.Result
	switch {
	case len(wrong) > 0:
		r = diag.Fail("on-prem forwards PrivateZone zones to addresses that are not the inbound endpoint's (%s): %s", strings.Join(ips, ", "), strings.Join(wrong, "; "))
		r.Remediation = fmt.Sprintf("Forward the PrivateZone zones from the on-prem resolvers to %s (the inbound endpoint %s), and list them in dns.forwarders.", strings.Join(ips, ", "), endpointIDs(eps))
	case len(unhealthy) > 0:
		r = diag.Warn("inbound endpoint %s is not healthy: %s", endpointIDs(eps), strings.Join(unhealthy, "; "))
		r.Remediation = "Check the endpoint in the Alibaba Cloud DNS console > Private DNS > Resolver > Inbound Endpoints; recreate it if it stays FAILED or EXCEPTION."
	default:
		r = diag.Pass("on-prem forwards the PrivateZone zones to the inbound endpoint %s (%s)", endpointIDs(eps), strings.Join(ips, ", "))
		ev = []*pb.Evidence{diag.Ev("forward targets", strings.Join(ips, ", "), strings.Join(ips, ", "))}
	}
	r.Objects, r.Evidence = objs, append(ev, diag.Ev("inbound endpoint chosen as", "", how))
	return r
}

func endpointIDs(eps []ResolverEndpoint) string {
	ids := make([]string, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	return strings.Join(ids, ", ")
}

// outboundResults: each on-prem zone has a forwarding rule bound to the
// VPC, through a healthy endpoint, to the on-prem resolvers.
func outboundResults(s *Snapshot, c *dnsprobe.Config) []*pb.Result {
	var out []*pb.Result
	for _, z := range c.OnPremZones {
		want := expectedForward(c, z)
		obj := []*pb.Object{zoneObj(z)}
		var rule *ResolverRule
		var unbound []*ResolverRule
		for i := range s.Rules {
			ru := &s.Rules[i]
			if !dns.IsSubDomain(ru.Zone, z) {
				continue
			}
			if !slices.ContainsFunc(ru.VPCs, func(v ZoneVPC) bool { return v.VPCID == s.VPCID }) {
				unbound = append(unbound, ru)
				continue
			}
			if rule == nil || len(ru.Zone) > len(rule.Zone) {
				rule = ru
			}
		}
		var r *pb.Result
		switch {
		case rule == nil && len(unbound) > 0:
			ru := unbound[0]
			r = diag.Fail("on-prem zone %s: forwarding rule %s is not bound to VPC %s, so the VPC's resolver does not forward it", trim(z), ru.ID, s.VPCID)
			r.Objects = append(obj, diag.Obj("ResolverRule", "", ru.ID))
			r.Evidence = []*pb.Evidence{diag.Ev("VPCs of rule "+ru.ID, s.VPCID, zoneVPCList(ru.VPCs))}
			r.Remediation = fmt.Sprintf("Bind the rule to %s (Alibaba Cloud DNS console > Private DNS > Resolver > Forwarding Rules > %s > Associate VPC; "+
				"aliyun pvtz BindResolverRule --RuleId %s with --Vpcs.N.RegionId/--Vpcs.N.VpcId for every VPC it keeps plus %s %s).", s.VPCID, ru.ID, ru.ID, s.Region, s.VPCID)
		case rule == nil:
			r = diag.Fail("on-prem zone %s has no forwarding rule for VPC %s: pods in the cloud cannot resolve it", trim(z), s.VPCID)
			r.Objects = obj
			r.Evidence = []*pb.Evidence{diag.Ev("forwarding rule for "+trim(z), "bound to "+s.VPCID+", forwarding to "+strings.Join(want, ", "), "none")}
			r.Remediation = fmt.Sprintf("Create an outbound rule (Alibaba Cloud DNS console > Private DNS > Resolver > Forwarding Rules > Add): aliyun pvtz AddResolverRule --Name %s --Type OUTBOUND "+
				"--ZoneName %s --EndpointId <outbound endpoint of %s>%s, then aliyun pvtz BindResolverRule --RuleId <rule> --Vpcs.1.RegionId %s --Vpcs.1.VpcId %s.",
				strings.ReplaceAll(trim(z), ".", "-"), trim(z), s.VPCID, forwardArgs(want), s.Region, s.VPCID)
		default:
			r = ruleResult(s, z, rule, want)
			r.Objects = append(obj, diag.Obj("ResolverRule", "", rule.ID))
		}
		out = append(out, r)
	}
	return out
}

// expectedForward is where on-prem zone z must be forwarded: its
// dns.forwarders targets, else the on-prem resolvers.
func expectedForward(c *dnsprobe.Config, z string) []string {
	var want []string
	for _, f := range c.Forwarders {
		if f.Zone == z {
			want = append(want, f.Targets...)
		}
	}
	if len(want) == 0 {
		for _, r := range c.OnPremResolvers {
			want = append(want, r.Address)
		}
	}
	sort.Strings(want)
	return slices.Compact(want)
}

func forwardArgs(targets []string) string {
	var b strings.Builder
	for i, t := range targets {
		ap, err := netip.ParseAddrPort(t)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, " --ForwardIp.%d.Ip %s --ForwardIp.%d.Port %d", i+1, ap.Addr(), i+1, ap.Port())
	}
	return b.String()
}

func zoneVPCList(vs []ZoneVPC) string {
	if len(vs) == 0 {
		return "none"
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.VPCID + " (" + v.Region + ")"
	}
	return strings.Join(out, ", ")
}

// ruleResult judges the rule that serves on-prem zone z.
func ruleResult(s *Snapshot, z string, rule *ResolverRule, want []string) *pb.Result {
	got := make([]string, len(rule.Forward))
	for i, f := range rule.Forward {
		got[i] = f.String()
	}
	sort.Strings(got)
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	ev := []*pb.Evidence{diag.Ev("forward IPs of rule "+rule.ID+" ("+trim(rule.Zone)+")", strings.Join(want, ", "), strings.Join(got, ", "))}
	var ep *ResolverEndpoint
	for i := range s.Endpoints {
		if s.Endpoints[i].ID == rule.EndpointID {
			ep = &s.Endpoints[i]
		}
	}
	switch {
	case len(want) > 0 && (len(missing) > 0 || len(extra) > 0):
		var what []string
		if len(missing) > 0 {
			what = append(what, "not to "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			what = append(what, "to "+strings.Join(extra, ", ")+", which is not an on-prem resolver")
		}
		r := diag.Fail("on-prem zone %s: forwarding rule %s forwards %s", trim(z), rule.ID, strings.Join(what, " and "))
		r.Evidence = ev
		r.Remediation = fmt.Sprintf("Set the rule's forward IPs to the on-prem resolvers (Alibaba Cloud DNS console > Private DNS > Resolver > Forwarding Rules > %s > Edit): "+
			"aliyun pvtz UpdateResolverRule --RuleId %s%s.", rule.ID, rule.ID, forwardArgs(want))
		return r
	case ep == nil:
		r := diag.Fail("on-prem zone %s: forwarding rule %s uses endpoint %s, which does not exist", trim(z), rule.ID, rule.EndpointID)
		r.Evidence = append(ev, diag.Ev("outbound endpoint", rule.EndpointID, "not listed"))
		r.Remediation = "Recreate the rule on an outbound endpoint of " + s.VPCID + " (Alibaba Cloud DNS console > Private DNS > Resolver > Outbound Endpoints)."
		return r
	case ep.Status != "SUCCESS":
		r := diag.Warn("on-prem zone %s: forwarding rule %s is right, but its endpoint %s is %s", trim(z), rule.ID, ep.ID, ep.Status)
		r.Evidence = append(ev, diag.Ev("outbound endpoint "+ep.ID, "SUCCESS", ep.Status))
		r.Remediation = "Check the endpoint in the Alibaba Cloud DNS console > Private DNS > Resolver > Outbound Endpoints; its security group must allow outbound port 53."
		return r
	}
	r := diag.Pass("on-prem zone %s is forwarded from VPC %s to %s (rule %s, endpoint %s)", trim(z), s.VPCID, strings.Join(got, ", "), rule.ID, ep.ID)
	r.Evidence = ev
	return r
}
