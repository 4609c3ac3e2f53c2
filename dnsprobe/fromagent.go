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
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Two checks judge the cloud side of DNS, each in two modes, either
// optional: directly from this host (the dns source, when it can query the
// cloud resolvers), and from the cloud-side agents (the agent source),
// which query through the ECI pod's own resolv.conf and the VPC DNS
// directly. dns.onprem-from-cloud judges the on-prem names there;
// dns.resolver-reachable the PrivateZone names, which only the VPC DNS
// answers inside the VPC, so that a PrivateZone the ECI pods cannot resolve
// is told from one that on-prem cannot reach (dns.privatezone-from-onprem).
// Each result says which mode and which resolver path it came from.

// The resolver paths of an agent, as resolver names in the results.
const (
	pathResolvConf = "resolv.conf"
	pathVPCDNS     = "VPC DNS"
)

func runResolverReachable(_ context.Context, in *diag.Inputs) []*pb.Result {
	return cloudSide(in, evalResolverReachable, func(s *agent.Snapshot) []*pb.Result {
		return evalFromAgents(s, privateZoneFromAgent)
	})
}

func runOnPremFromCloud(_ context.Context, in *diag.Inputs) []*pb.Result {
	return cloudSide(in, func(obs *Observations) []*pb.Result {
		out := evalOnPremFromCloud(obs)
		for _, r := range out {
			if r.Status != pb.Status_SKIP {
				r.Evidence = append(r.Evidence, diag.Ev("queried from", "", "this host, directly (dns.cloudResolvers)"))
			}
		}
		return out
	}, func(s *agent.Snapshot) []*pb.Result { return evalFromAgents(s, onPremFromAgent) })
}

// cloudSide joins the direct mode and the agent mode of a check, for the
// sources the run gathered. When agents judge the cloud side, the direct
// mode's SKIPs (cloud resolvers this host cannot query, none configured)
// are left out: the agents answered in their place.
func cloudSide(in *diag.Inputs, direct func(*Observations) []*pb.Result, fromAgents func(*agent.Snapshot) []*pb.Result) []*pb.Result {
	var out []*pb.Result
	judged := agent.Source.Gathered(in) && len(agent.Source.Get(in).Agents) > 0
	if Source.Gathered(in) {
		for _, r := range direct(Source.Get(in)) {
			if !judged || r.Status != pb.Status_SKIP {
				out = append(out, r)
			}
		}
	}
	if agent.Source.Gathered(in) {
		out = append(out, fromAgents(agent.Source.Get(in))...)
	}
	return out
}

// agentView is what one side's check asks of an agent's round: which
// names, the zones they lie in, and the direction with its fix for a
// resolver path.
type agentView struct {
	// what the names are, for a SKIP ("on-prem").
	kind  string
	names func(c *Config) []Name
	zones func(c *Config) []string
	side  func(who string, rv Resolver, viaVPC bool) side
	// forwardedToVPC: the resolv.conf path reaches these names through the
	// VPC DNS, which is then their forward target.
	forwardedToVPC bool
}

var onPremFromAgent = agentView{
	kind:  "on-prem",
	names: func(c *Config) []Name { return c.OnPremNames },
	zones: func(c *Config) []string { return c.OnPremZones },
	side: func(who string, rv Resolver, viaVPC bool) side {
		sd := fromCloud
		sd.from = "from the ECI pod of " + who + ", the"
		if !viaVPC {
			sd.fix = func(zone string, targets []string, resolver string) string {
				z := trimDot(zone)
				return fmt.Sprintf("The pod's own nameserver %s (from its resolv.conf: the cluster DNS, or the pod's dnsConfig) does not resolve %s. "+
					"If it is CoreDNS, forward %s to the on-prem DNS servers (%s; see dns.coredns-forward); if it forwards to the VPC DNS, %s",
					resolver, z, z, joinTargets(targets), fromCloud.fix(zone, targets, "the VPC DNS"))
			}
		}
		return sd
	},
}

// privateZoneInVPC is the fix for a PrivateZone name the VPC DNS does not
// answer from inside the VPC.
func privateZoneInVPC(zone string) string {
	z := trimDot(zone)
	return fmt.Sprintf("Inside the VPC only the VPC DNS answers PrivateZone names, and only for zones associated with the VPC: associate the PrivateZone %s "+
		"with the VPC of the ECI pods (PrivateZone console: the zone, Associate VPC), and check that the record exists in it", z)
}

var privateZoneFromAgent = agentView{
	kind:  "PrivateZone",
	names: func(c *Config) []Name { return c.PrivateZoneNames },
	zones: func(c *Config) []string { return c.PrivateZones },
	side: func(who string, rv Resolver, viaVPC bool) side {
		sd := side{from: "from the ECI pod of " + who + ", the", zoneKind: "PrivateZone",
			fix: func(zone string, _ []string, _ string) string { return privateZoneInVPC(zone) }}
		if !viaVPC {
			sd.fix = func(zone string, targets []string, resolver string) string {
				z := trimDot(zone)
				return fmt.Sprintf("The pod's own nameserver %s (from its resolv.conf) does not resolve %s. If it is CoreDNS, forward %s to the VPC DNS "+
					"(%s; see dns.coredns-forward); if the VPC DNS fails too: %s", resolver, z, z, joinTargets(targets), privateZoneInVPC(zone))
			}
		}
		return sd
	},
	forwardedToVPC: true,
}

// evalFromAgents judges each agent's newest fresh round: every name of the
// view through every resolver path of the ECI pod (its resolv.conf
// nameservers, the VPC DNS), with the forward targets queried directly
// from the pod, so that the broken hop is named.
func evalFromAgents(s *agent.Snapshot, v agentView) []*pb.Result {
	if len(s.Agents) == 0 {
		return []*pb.Result{diag.Skip("no cloud-side agent found (%s): see vnode.agent", s.Discovery)}
	}
	var out []*pb.Result
	for _, a := range s.Agents {
		who := a.Label()
		r, via := s.Fresh(a)
		if r == nil {
			res := diag.Errorf("no fresh round from %s to judge %s names from the cloud (see vnode.agent)", who, v.kind)
			res.Objects = a.Objects()
			out = append(out, res)
			continue
		}
		obs, resolvers := agentObservations(r)
		names := v.names(&obs.Config)
		switch {
		case len(names) == 0:
			res := diag.Skip("%s resolves no %s name: its plan has none", who, v.kind)
			res.Objects = a.Objects()
			res.Remediation = fmt.Sprintf("Add the %s names cloud workloads use, and their zones, to the agent's plan (dns.names and the zones in its ConfigMap).", v.kind)
			out = append(out, res)
			continue
		case len(resolvers) == 0:
			res := diag.Skip("%s has no resolver to ask: no nameserver in %s and no VPC DNS in its plan", who, r.GetAgent().GetPlan().GetResolvConf())
			res.Objects = a.Objects()
			out = append(out, res)
			continue
		}
		asked := fmt.Sprintf("%s, round %d via %s, ended %s", who, r.Sequence, via, r.EndTime.AsTime().UTC().Format(time.RFC3339))
		vpc := vpcAddrs(resolvers)
		for _, rv := range resolvers {
			// A pod whose resolv.conf names the VPC DNS asks it directly.
			viaVPC := slices.Contains(vpc, rv.Address)
			view := obs
			if v.forwardedToVPC && !viaVPC {
				view = forwardedTo(obs, v.zones(&obs.Config), vpc)
			}
			sd := v.side(who, rv, viaVPC)
			for _, n := range names {
				res := evalLookup(view, rv, n, ZoneOf(n.Name, v.zones(&obs.Config)), sd)
				// The shared wording speaks of this host; here the pod asked.
				res.Remediation = strings.ReplaceAll(res.Remediation, "from this host", "from the ECI pod")
				res.Objects = append(res.Objects, a.Objects()...)
				res.Evidence = append(res.Evidence,
					diag.Ev("resolver path", "", pathDescription(rv.Name)),
					diag.Ev("queried from", "", asked))
				out = append(out, res)
			}
		}
	}
	return out
}

// agentObservations turns a round into canonical observations, as the dns
// source hands them to the checks: the plan's names on each side with
// their expected answers, the plan's on-prem DNS servers as the forward
// targets of the on-prem zones, and the pod's resolver paths (its
// resolv.conf nameservers, then the VPC DNS) as the cloud resolvers it
// returns too.
func agentObservations(r *pb.ProbeRound) (*Observations, []Resolver) {
	plan := r.GetAgent().GetPlan()
	c := Config{OnPremZones: plan.GetOnpremZones(), PrivateZones: plan.GetPrivateZones()}
	for _, n := range plan.GetNames() {
		name := Name{Name: n.Name, Type: n.Type, Expect: n.Expect}
		switch {
		case ZoneOf(n.Name, c.OnPremZones) != "":
			c.OnPremNames = append(c.OnPremNames, name)
		case ZoneOf(n.Name, c.PrivateZones) != "":
			c.PrivateZoneNames = append(c.PrivateZoneNames, name)
		}
	}
	if onprem := validAddrs(plan.GetOnpremResolvers()); len(onprem) > 0 {
		for _, z := range c.OnPremZones {
			c.Forwarders = append(c.Forwarders, Forwarder{Zone: z, Targets: onprem})
		}
	}
	seen := map[Resolver]bool{}
	for _, p := range []struct {
		name  string
		addrs []string
	}{{pathResolvConf, validAddrs(r.GetNetwork().GetResolvNameservers())}, {pathVPCDNS, validAddrs(plan.GetVpcResolvers())}} {
		for _, a := range p.addrs {
			rv := Resolver{Name: p.name, Address: a}
			if !seen[rv] {
				seen[rv] = true
				c.CloudResolvers = append(c.CloudResolvers, rv)
			}
		}
	}
	obs := &Observations{Config: c.canonical(), Outcomes: map[Query]*Outcome{}, Timeout: plan.GetDnsTimeout().AsDuration()}
	for _, d := range r.GetDns() {
		t, ok := dns.StringToType[d.Type]
		if !ok {
			continue
		}
		obs.Outcomes[Query{Server: d.Server, Name: corefile.CanonicalName(d.Name), Type: t}] = outcomeOf(d)
	}
	return obs, obs.Config.CloudResolvers
}

// forwardedTo is obs with targets as the forward targets of zones: what a
// pod's cluster DNS forwards the PrivateZones to (the VPC DNS).
func forwardedTo(obs *Observations, zones, targets []string) *Observations {
	view := *obs
	view.Config.Forwarders = nil
	for _, f := range obs.Config.Forwarders {
		if !slices.Contains(zones, f.Zone) {
			view.Config.Forwarders = append(view.Config.Forwarders, f)
		}
	}
	for _, z := range zones {
		view.Config.Forwarders = append(view.Config.Forwarders, Forwarder{Zone: z, Targets: targets})
	}
	return &view
}

// vpcAddrs are the addresses of the VPC DNS path.
func vpcAddrs(resolvers []Resolver) []string {
	var out []string
	for _, r := range resolvers {
		if r.Name == pathVPCDNS {
			out = append(out, r.Address)
		}
	}
	return out
}

// validAddrs are the addresses of addrs that HostPort accepts, in its
// canonical form: a round comes from the network, and an address the
// agent's own validation let through is still not trusted here.
func validAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if hp, err := HostPort(a); err == nil {
			out = append(out, hp)
		}
	}
	return out
}

// outcomeOf is the prober's outcome that the agent reported.
func outcomeOf(d *pb.DNSResult) *Outcome {
	o := &Outcome{
		Server: d.Server, Name: d.Name, Type: d.Type, Kind: Kind(d.Outcome), Rcode: d.Rcode, RTT: d.Rtt.AsDuration(),
		TCP: d.Tcp, Attempts: int(d.Attempts), Ignored: int(d.Ignored), Err: d.Error,
	}
	for _, a := range d.Answers {
		o.Answers = append(o.Answers, Record{Name: a.Name, Type: a.Type, TTL: a.Ttl, Data: a.Data})
	}
	return o
}

func pathDescription(name string) string {
	if name == pathResolvConf {
		return "the pod's resolv.conf nameserver: what workloads in the ECI pod use"
	}
	return "the VPC DNS, queried directly from the ECI pod"
}
