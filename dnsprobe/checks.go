package dnsprobe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The check IDs of this package (a public contract).
const (
	CheckResolverReachable     = "dns.resolver-reachable"
	CheckPrivateZoneFromOnPrem = "dns.privatezone-from-onprem"
	CheckOnPremFromCloud       = "dns.onprem-from-cloud"
	CheckClusterDomainOverlap  = "dns.cluster-domain-overlap"
	CheckCoreDNSForward        = "dns.coredns-forward"
	referencePrivateZone       = "Alibaba Cloud ECI hybrid cluster FAQ: DNS resolution between the IDC and the VPC (PrivateZone forwarding)"
	referenceClusterDomain     = "Alibaba Cloud ECI hybrid cluster FAQ: the cluster domain must not overlap a PrivateZone or on-prem zone"
	referenceCoreDNSForward    = "Alibaba Cloud ECI hybrid cluster FAQ: CoreDNS forward configuration"
	referenceResolverAnswers   = "Alibaba Cloud ECI hybrid cluster FAQ: DNS resolution between the IDC and the VPC"
)

// Checks returns the dns.* checks. They evaluate the gathered DNS
// observations (and the Kubernetes snapshot for the CoreDNS ones); they send
// nothing themselves.
func Checks() []diag.Check {
	return []diag.Check{
		{
			ID:    CheckResolverReachable,
			Title: "Every resolver answers for its own zone (the configured ones from this host, the ECI pods' through the agents)",
			// Either mode is enough, as for dns.onprem-from-cloud.
			Optional:  diag.Needs(Source, agent.Source),
			Reference: referenceResolverAnswers,
			Run:       runResolverReachable,
		},
		{
			ID:        CheckPrivateZoneFromOnPrem,
			Title:     "On-prem resolvers resolve the PrivateZone names",
			Needs:     diag.Needs(Source),
			Reference: referencePrivateZone,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
				return evalPrivateZoneFromOnPrem(Source.Get(in))
			},
		},
		{
			ID:    CheckOnPremFromCloud,
			Title: "Cloud resolvers resolve the on-prem names (from this host, and from the ECI pods through the agents)",
			// Either mode is enough: this host querying the cloud
			// resolvers, or the cloud-side agents.
			Optional:  diag.Needs(Source, agent.Source),
			Reference: referencePrivateZone,
			Run:       runOnPremFromCloud,
		},
		{
			ID:        CheckClusterDomainOverlap,
			Title:     "The cluster domain does not overlap a PrivateZone or on-prem zone",
			Needs:     diag.Needs(kube.Source, Source),
			Reference: referenceClusterDomain,
			Run:       runClusterDomainOverlap,
		},
		{
			ID:        CheckCoreDNSForward,
			Title:     "CoreDNS forwards the on-prem and PrivateZone zones to the configured resolvers",
			Needs:     diag.Needs(kube.Source, Source),
			Optional:  diag.Needs(host.Source),
			Reference: referenceCoreDNSForward,
			Run:       runCoreDNSForward,
		},
	}
}

func resolverObj(r Resolver) *pb.Object { return diag.Obj("DNSResolver", "", resolverLabel(r)) }
func nameObj(name string) *pb.Object    { return diag.Obj("DNSName", "", trimDot(name)) }
func zoneObj(zone string) *pb.Object    { return diag.Obj("DNSZone", "", trimDot(zone)) }
func serverObj(addr string) *pb.Object  { return diag.Obj("DNSServer", "", addr) }

// alive reports whether server replied to any query of the run other than
// except, so that a silent forwarder is told from a dead resolver.
func (o *Observations) alive(server string, except Query) bool {
	for q, out := range o.Outcomes {
		if q.Server == server && q != except && out.Kind.Responded() {
			return true
		}
	}
	return false
}

// evalResolverReachable is dns.resolver-reachable: one result per resolver.
func evalResolverReachable(obs *Observations) []*pb.Result {
	c := &obs.Config
	var out []*pb.Result
	for _, r := range c.OnPremResolvers {
		out = append(out, reachable(obs, r, false))
	}
	cloudSkip := cloudSkipReason(obs)
	for _, r := range c.CloudResolvers {
		if cloudSkip != "" {
			res := diag.Skip("cloud resolver %s not queried: %s", resolverLabel(r), cloudSkip)
			res.Objects = []*pb.Object{resolverObj(r)}
			out = append(out, res)
			continue
		}
		out = append(out, reachable(obs, r, true))
	}
	return out
}

// cloudSkipReason is why the cloud resolvers are not judged from this host,
// "" when they are.
func cloudSkipReason(obs *Observations) string {
	c := &obs.Config
	switch c.CloudReachable {
	case ReachNo:
		return "cloudReachable is false: this host cannot query the cloud resolvers directly; judge the cloud side from the cloud-side agents instead (agent section, deploy/agent)"
	case ReachAuto:
		for _, r := range c.CloudResolvers {
			if obs.alive(r.Address, Query{}) {
				return ""
			}
		}
		if len(c.CloudResolvers) > 0 {
			return "no cloud resolver answered this host (cloudReachable: auto), so they are not reachable from here; set cloudReachable: true to judge them anyway, or judge it from the cloud-side agents (agent section, deploy/agent)"
		}
	}
	return ""
}

func reachable(obs *Observations, r Resolver, cloud bool) *pb.Result {
	c := &obs.Config
	hp := r.Address
	zone := c.zoneOfResolver(r, cloud)
	q := Query{Server: hp, Name: zone, Type: dns.TypeSOA}
	o := obs.Outcomes[q]
	label := resolverLabel(r)
	var res *pb.Result
	switch {
	case o == nil:
		res = diag.Errorf("resolver %s: SOA %s was not queried", label, trimDot(zone))
	case o.Kind == Interrupted:
		res = diag.Errorf("resolver %s: SOA %s %s", label, trimDot(zone), o.Summary())
	case o.Kind == Answered || o.Kind == NXDomain || o.Kind == NoData:
		res = diag.Pass("resolver %s answers: SOA %s %s in %s", label, trimDot(zone), o.Summary(), o.RTT.Round(10*time.Microsecond))
	case o.Kind == ServFail || o.Kind == Refused || o.Kind == OtherRcode:
		res = diag.Warn("resolver %s is up but answers %s for the SOA of its own zone %s", label, o.Summary(), trimDot(zone))
		res.Remediation = fmt.Sprintf("check that %s serves or forwards %s (set zone: on the resolver if it is not its zone)", label, trimDot(zone))
	case o.Kind == ConnRefused:
		res = diag.Fail("resolver %s is down: nothing listens on %s (connection refused)", label, hp)
		res.Remediation = fmt.Sprintf("start the DNS server on %s, or fix the configured address", hp)
	case o.Kind == Timeout && obs.alive(hp, q):
		res = diag.Fail("resolver %s is up (it answered other queries) but silent for SOA %s: it forwards %s and the hop behind it does not answer", label, trimDot(zone), trimDot(zone))
		res.Remediation = hopRemediation(obs, q, label, zone)
	case o.Kind == Timeout:
		res = diag.Fail("resolver %s does not answer: no reply within %s (dead, hung, or unreachable from this host)", label, obs.Timeout)
		res.Remediation = fmt.Sprintf("check that the DNS server on %s runs and that UDP and TCP 53 are open from this host", hp)
	case o.Kind == TruncatedTCPFailed:
		res = diag.Fail("resolver %s truncates the SOA %s reply and TCP fails: %s", label, trimDot(zone), o.Err)
		res.Remediation = fmt.Sprintf("allow TCP 53 to %s", hp)
	default:
		res = diag.Fail("resolver %s: SOA %s: %s", label, trimDot(zone), o.Summary())
	}
	res.Objects = []*pb.Object{resolverObj(r)}
	if o != nil {
		res.Evidence = []*pb.Evidence{diag.Ev("SOA "+trimDot(zone)+" @"+hp, "a reply within "+obs.Timeout.String(), o.Summary())}
	}
	return res
}

// hopRemediation names the broken hop behind a resolver that went silent for
// a query, from the direct queries to the zone's forward targets.
func hopRemediation(obs *Observations, q Query, label, zone string) string {
	targets := obs.Config.forwardTargets(zone)
	if len(targets) == 0 {
		return fmt.Sprintf("configure forwarders for %s so vnodediag can query the forward target directly and name the broken hop; meanwhile check the upstream %s forwards %s to", trimDot(zone), label, trimDot(zone))
	}
	broken, ok := splitTargets(obs, q, targets)
	if len(broken) > 0 {
		return fmt.Sprintf("the forward target for %s is broken: %s; restore it (the forwarder %s stays silent while its upstream is down)", trimDot(zone), strings.Join(broken, "; "), label)
	}
	return fmt.Sprintf("the forward targets for %s answer this host directly (%s), so %s either forwards %s somewhere else or cannot reach them (route, firewall)", trimDot(zone), strings.Join(ok, "; "), label, trimDot(zone))
}

// splitTargets returns the forward targets that failed the same question
// directly (with their outcome) and those that replied.
func splitTargets(obs *Observations, q Query, targets []string) (broken, ok []string) {
	for _, t := range targets {
		o := obs.Outcomes[Query{Server: t, Name: q.Name, Type: q.Type}]
		if o == nil {
			continue
		}
		switch {
		case o.Kind == Interrupted:
			// Neither broken nor working: the run ended first.
		case o.Kind == Answered || o.Kind == NXDomain || o.Kind == NoData:
			ok = append(ok, t+": "+o.Summary())
		default:
			broken = append(broken, t+": "+o.Summary())
		}
	}
	return broken, ok
}

// side describes one direction of name resolution.
type side struct {
	from, zoneKind string
	fix            func(zone string, targets []string, resolver string) string
}

var fromOnPrem = side{
	from:     "on-prem",
	zoneKind: "PrivateZone",
	fix: func(zone string, targets []string, resolver string) string {
		z := trimDot(zone)
		if len(targets) == 0 {
			return fmt.Sprintf("add a conditional forwarder for %s on %s to the PrivateZone inbound endpoint IPs (and list them under forwarders: for zone %s)", z, resolver, z)
		}
		var ub, bind, dm []string
		for _, t := range targets {
			h, p := splitHP(t)
			ub = append(ub, fmt.Sprintf("    forward-addr: %s@%s", h, p))
			bind = append(bind, fmt.Sprintf("%s port %s;", h, p))
			dm = append(dm, fmt.Sprintf("  server=/%s/%s#%s", z, h, p))
		}
		return fmt.Sprintf("add a conditional forwarder for %s on %s to the PrivateZone inbound endpoint %s.\n"+
			"unbound:\n  forward-zone:\n    name: \"%s.\"\n%s\n"+
			"BIND:\n  zone \"%s\" { type forward; forward only; forwarders { %s }; };\n"+
			"dnsmasq:\n%s\n",
			z, resolver, strings.Join(targets, ", "), z, strings.Join(ub, "\n"), z, strings.Join(bind, " "), strings.Join(dm, "\n"))
	},
}

var fromCloud = side{
	from:     "cloud",
	zoneKind: "on-prem",
	fix: func(zone string, targets []string, resolver string) string {
		z := trimDot(zone)
		dest := "the on-prem DNS servers"
		if len(targets) > 0 {
			dest = strings.Join(targets, ", ")
		}
		return fmt.Sprintf("add a PrivateZone forwarding rule (Resolver > Forwarding Rules) for %s to %s, bind it to the VPC that %s serves, and allow UDP and TCP 53 from the outbound endpoint to them over the leased line", z, dest, resolver)
	},
}

func splitHP(hp string) (string, string) {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return hp, "53"
	}
	return strings.Trim(hp[:i], "[]"), hp[i+1:]
}

// evalPrivateZoneFromOnPrem is dns.privatezone-from-onprem: one result per
// on-prem resolver and PrivateZone name.
func evalPrivateZoneFromOnPrem(obs *Observations) []*pb.Result {
	c := &obs.Config
	switch {
	case len(c.OnPremResolvers) == 0:
		return []*pb.Result{diag.Skip("no dns.onPremResolvers configured: add the on-prem resolvers to query")}
	case len(c.PrivateZoneNames) == 0:
		return []*pb.Result{diag.Skip("no dns.privateZoneNames configured: add PrivateZone names to resolve from on-prem")}
	}
	var out []*pb.Result
	for _, r := range c.OnPremResolvers {
		for _, n := range c.PrivateZoneNames {
			out = append(out, evalLookup(obs, r, n, ZoneOf(n.Name, c.PrivateZones), fromOnPrem))
		}
	}
	return out
}

// evalOnPremFromCloud is dns.onprem-from-cloud: one result per cloud resolver
// and on-prem name, or one SKIP when this host cannot query the cloud side.
func evalOnPremFromCloud(obs *Observations) []*pb.Result {
	c := &obs.Config
	switch {
	case len(c.CloudResolvers) == 0:
		return []*pb.Result{diag.Skip("no dns.cloudResolvers configured: add the cloud-side resolvers to query")}
	case len(c.OnPremNames) == 0:
		return []*pb.Result{diag.Skip("no dns.onPremNames configured: add on-prem names to resolve from the cloud")}
	}
	if why := cloudSkipReason(obs); why != "" {
		return []*pb.Result{diag.Skip("%s", why)}
	}
	var out []*pb.Result
	for _, r := range c.CloudResolvers {
		for _, n := range c.OnPremNames {
			out = append(out, evalLookup(obs, r, n, ZoneOf(n.Name, c.OnPremZones), fromCloud))
		}
	}
	return out
}

func evalLookup(obs *Observations, r Resolver, n Name, zone string, sd side) *pb.Result {
	hp := r.Address
	t, _ := QType(n.Type)
	q := Query{Server: hp, Name: corefile.CanonicalName(n.Name), Type: t}
	o := obs.Outcomes[q]
	label := resolverLabel(r)
	name := trimDot(q.Name)
	qs := name + " " + dns.TypeToString[t]
	targets := obs.Config.forwardTargets(zone)
	objs := []*pb.Object{nameObj(n.Name), resolverObj(r)}
	expect := "an answer"
	if len(n.Expect) > 0 {
		expect = strings.Join(normalizedSet(n.Expect), ", ")
	}
	if o == nil {
		return diag.Errorf("%s via %s was not queried", qs, label)
	}
	if o.Kind == Interrupted {
		res := diag.Errorf("%s via %s %s", qs, label, o.Summary())
		res.Objects = objs
		return res
	}
	broken, ok := splitTargets(obs, q, targets)
	for _, b := range broken {
		objs = append(objs, serverObj(strings.SplitN(b, ": ", 2)[0]))
	}
	var res *pb.Result
	switch o.Kind {
	case Answered:
		got := o.Values()
		if len(n.Expect) > 0 && !slices.Equal(got, normalizedSet(n.Expect)) {
			res = diag.Fail("%s resolver %s answers %s with %s, expected %s", sd.from, label, qs, strings.Join(got, ", "), expect)
			res.Remediation = fmt.Sprintf("fix the record in the %s zone %s, or check that %s forwards %s to the right servers (%s)", sd.zoneKind, trimDot(zone), label, trimDot(zone), joinTargets(targets))
			if len(ok) > 0 {
				res.Remediation += "; directly: " + strings.Join(ok, "; ")
			}
		} else {
			res = diag.Pass("%s resolver %s resolves %s: %s", sd.from, label, qs, o.Summary())
		}
	case NoData:
		res = diag.Fail("%s resolver %s: %s exists but has no %s record (NODATA)", sd.from, label, name, dns.TypeToString[t])
		res.Remediation = fmt.Sprintf("add the %s record for %s in the %s zone %s", dns.TypeToString[t], name, sd.zoneKind, trimDot(zone))
	case NXDomain:
		switch {
		case len(ok) > 0 && !allNX(obs, q, targets):
			res = diag.Fail("%s resolver %s says NXDOMAIN for %s, but the forward target has it: %s does not forward %s (a local zone or its default upstream answers instead)", sd.from, label, qs, label, trimDot(zone))
			res.Remediation = sd.fix(zone, targets, label)
		case len(targets) > 0 && len(broken) == 0:
			res = diag.Fail("%s resolver %s says NXDOMAIN for %s, and so does the forward target: the name does not exist in the %s zone %s", sd.from, label, qs, sd.zoneKind, trimDot(zone))
			res.Remediation = fmt.Sprintf("add the record %s to the %s zone %s, or fix the name in the configuration", name, sd.zoneKind, trimDot(zone))
		default:
			res = diag.Fail("%s resolver %s says NXDOMAIN for %s: the record is missing, or %s answers %s itself instead of forwarding it", sd.from, label, qs, label, trimDot(zone))
			res.Remediation = sd.fix(zone, targets, label)
		}
	case ServFail, Refused, OtherRcode:
		if len(broken) > 0 {
			res = diag.Fail("%s resolver %s answers %s for %s because its forward target is broken: %s", sd.from, label, o.Summary(), qs, strings.Join(broken, "; "))
			res.Remediation = fmt.Sprintf("restore the forward target of %s (%s) or its reachability from %s", trimDot(zone), strings.Join(broken, "; "), label)
		} else {
			res = diag.Fail("%s resolver %s answers %s for %s: it has no working forwarder for the %s zone %s", sd.from, label, o.Summary(), qs, sd.zoneKind, trimDot(zone))
			if len(ok) > 0 {
				res.Summary += " (the forward target answers it directly)"
			}
			res.Remediation = sd.fix(zone, targets, label)
		}
	case Timeout:
		switch {
		case !obs.alive(hp, q):
			res = diag.Fail("%s resolver %s does not answer at all (timeout after %s for %s): it is dead, hung, or unreachable", sd.from, label, obs.Timeout, qs)
			res.Remediation = fmt.Sprintf("check that the DNS server on %s runs and that UDP and TCP 53 are open from this host", hp)
		case len(broken) > 0:
			res = diag.Fail("%s resolver %s is up but silent for %s: the hop %s -> %s is broken (%s)", sd.from, label, qs, label, joinTargets(hostsOf(broken)), strings.Join(broken, "; "))
			res.Remediation = hopRemediation(obs, q, label, zone)
		default:
			res = diag.Fail("%s resolver %s is up but silent for %s (no reply within %s): a forwarder whose upstream for %s does not answer", sd.from, label, qs, obs.Timeout, trimDot(zone))
			res.Remediation = hopRemediation(obs, q, label, zone)
		}
	case ConnRefused:
		res = diag.Fail("%s resolver %s is down: nothing listens on %s (connection refused)", sd.from, label, hp)
		res.Remediation = fmt.Sprintf("start the DNS server on %s, or fix the configured address", hp)
	case TruncatedTCPFailed:
		res = diag.Fail("%s resolver %s: the answer for %s does not fit UDP and TCP failed: %s", sd.from, label, qs, o.Err)
		res.Remediation = fmt.Sprintf("allow TCP 53 to %s (answers larger than the UDP buffer need it)", hp)
	default:
		res = diag.Fail("%s resolver %s: %s: %s", sd.from, label, qs, o.Summary())
		res.Remediation = fmt.Sprintf("check the DNS server on %s", hp)
	}
	res.Objects = objs
	res.Evidence = []*pb.Evidence{diag.Ev(qs+" @"+hp, expect, o.Summary())}
	for _, tgt := range targets {
		if to := obs.Outcomes[Query{Server: tgt, Name: q.Name, Type: q.Type}]; to != nil {
			res.Evidence = append(res.Evidence, diag.Ev(qs+" @"+tgt+" (forward target, direct)", expect, to.Summary()))
		}
	}
	return res
}

func allNX(obs *Observations, q Query, targets []string) bool {
	for _, t := range targets {
		if o := obs.Outcomes[Query{Server: t, Name: q.Name, Type: q.Type}]; o != nil && o.Kind != NXDomain {
			return false
		}
	}
	return true
}

func hostsOf(entries []string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = strings.SplitN(e, ": ", 2)[0]
	}
	return out
}

func normalizedSet(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = normalizeValue(strings.TrimSpace(v))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
