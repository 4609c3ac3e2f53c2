package dnsprobe

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// dns.onprem-from-cloud has two modes, each optional: directly from this
// host (the dns source, when it can query the cloud resolvers), and from the
// cloud-side agents (the agent source), which query through the ECI pod's
// own resolv.conf and the VPC DNS directly. Each result says which.

// The resolver paths of an agent, as resolver names in the results.
const (
	pathResolvConf = "resolv.conf"
	pathVPCDNS     = "VPC DNS"
)

func runOnPremFromCloud(_ context.Context, in *diag.Inputs) []*pb.Result {
	return evalOnPremFromCloud(from(in), agent.From(in))
}

// evalOnPremFromCloud joins both modes. The direct mode's one SKIP ("this
// host cannot query the cloud resolvers") is left out when agents judge the
// cloud side instead.
func evalOnPremFromCloud(obs *Observations, agents *agent.Snapshot) []*pb.Result {
	var out []*pb.Result
	if obs != nil {
		direct := EvalOnPremFromCloud(obs)
		onlySkip := len(direct) == 1 && direct[0].Status == pb.Status_SKIP
		if !onlySkip || agents == nil || len(agents.Agents) == 0 {
			for _, r := range direct {
				if r.Status != pb.Status_SKIP {
					r.Evidence = append(r.Evidence, diag.Ev("queried from", "", "this host, directly (dns.cloudResolvers)"))
				}
			}
			out = append(out, direct...)
		}
	}
	if agents != nil {
		out = append(out, evalOnPremFromAgents(agents)...)
	}
	return out
}

// evalOnPremFromAgents judges each agent's newest fresh round: every
// on-prem name of its plan through every resolver of the pod's resolv.conf
// and every VPC DNS address, with the plan's on-prem DNS servers as the
// forward targets queried directly, so that the broken hop is named.
func evalOnPremFromAgents(s *agent.Snapshot) []*pb.Result {
	if len(s.Agents) == 0 {
		return []*pb.Result{diag.Skip("no cloud-side agent found (%s): see vnode.agent", s.Discovery)}
	}
	var out []*pb.Result
	for _, a := range s.Agents {
		who := agentLabel(a)
		r, via := s.Fresh(a)
		if r == nil {
			res := diag.Errorf("no fresh round from %s to judge on-prem names from the cloud (see vnode.agent)", who)
			res.Objects = []*pb.Object{agentObject(a)}
			out = append(out, res)
			continue
		}
		obs, resolvers := agentObservations(r)
		plan := r.GetAgent().GetPlan()
		switch {
		case len(obs.Config.OnPremNames) == 0:
			res := diag.Skip("%s resolves no on-prem name: its plan has none in dns.onPremZones", who)
			res.Objects = []*pb.Object{agentObject(a)}
			res.Remediation = "Add the on-prem names cloud workloads use, and their zones, to the agent's plan (dns.names, dns.onPremZones in its ConfigMap)."
			out = append(out, res)
			continue
		case len(resolvers) == 0:
			res := diag.Skip("%s has no resolver to ask: no nameserver in %s and no VPC DNS in its plan", who, plan.GetResolvConf())
			res.Objects = []*pb.Object{agentObject(a)}
			out = append(out, res)
			continue
		}
		for _, rv := range resolvers {
			sd := agentSide(who, rv, plan.GetVpcResolvers())
			for _, n := range obs.Config.OnPremNames {
				res := evalLookup(obs, rv, n, ZoneOf(n.Name, obs.Config.OnPremZones), sd)
				// The shared wording speaks of this host; here the pod asked.
				res.Remediation = strings.ReplaceAll(res.Remediation, "from this host", "from the ECI pod")
				res.Objects = append(res.Objects, agentObject(a))
				res.Evidence = append(res.Evidence,
					diag.Ev("resolver path", "", pathDescription(rv.Name)),
					diag.Ev("queried from", "", fmt.Sprintf("%s, round %d via %s, ended %s", who, r.Sequence, via, r.EndTime.AsTime().UTC().Format(time.RFC3339))))
				out = append(out, res)
			}
		}
	}
	return out
}

// agentObservations turns a round into the observations the direct mode
// judges: the pod's resolvers as cloud resolvers, the plan's on-prem names
// with their expected answers, and the plan's on-prem DNS servers as the
// forward targets of every on-prem zone.
func agentObservations(r *pb.ProbeRound) (*Observations, []Resolver) {
	plan := r.GetAgent().GetPlan()
	obs := &Observations{Outcomes: map[Query]*Outcome{}, Timeout: plan.GetDnsTimeout().AsDuration()}
	c := &obs.Config
	c.OnPremZones = plan.GetOnpremZones()
	for _, n := range plan.GetNames() {
		if ZoneOf(n.Name, c.OnPremZones) != "" {
			c.OnPremNames = append(c.OnPremNames, Name{Name: n.Name, Type: n.Type, Expect: n.Expect})
		}
	}
	if len(plan.GetOnpremResolvers()) > 0 {
		for _, z := range c.OnPremZones {
			c.Forwarders = append(c.Forwarders, Forwarder{Zone: z, Targets: plan.GetOnpremResolvers()})
		}
	}
	var resolvers []Resolver
	seen := map[string]bool{}
	add := func(name, addr string) {
		hp, err := HostPort(addr)
		if err != nil || seen[name+hp] {
			return
		}
		seen[name+hp] = true
		resolvers = append(resolvers, Resolver{Name: name, Address: hp})
	}
	for _, ns := range r.GetNetwork().GetResolvNameservers() {
		add(pathResolvConf, ns)
	}
	for _, v := range plan.GetVpcResolvers() {
		add(pathVPCDNS, v)
	}
	c.CloudResolvers = resolvers
	for _, d := range r.GetDns() {
		t, ok := dns.StringToType[d.Type]
		if !ok {
			continue
		}
		obs.Outcomes[Query{Server: d.Server, Name: normZone(d.Name), Type: t}] = outcomeOf(d)
	}
	return obs, resolvers
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

// agentSide is the direction "from the cloud", told from one agent through
// one resolver path, with the fix that fits the path.
func agentSide(who string, rv Resolver, vpc []string) side {
	sd := fromCloud
	sd.from = "from the ECI pod of " + who + ", the"
	isVPC := rv.Name == pathVPCDNS
	for _, v := range vpc {
		if hp, _ := HostPort(v); hp == rv.Address {
			isVPC = true
		}
	}
	if !isVPC {
		sd.fix = func(zone string, targets []string, resolver string) string {
			z := trimDot(zone)
			return fmt.Sprintf("The pod's own nameserver %s (from its resolv.conf: the cluster DNS, or the pod's dnsConfig) does not resolve %s. "+
				"If it is CoreDNS, forward %s to the on-prem DNS servers (%s; see dns.coredns-forward); if it forwards to the VPC DNS, %s",
				resolver, z, z, joinTargets(targets), fromCloud.fix(zone, targets, "the VPC DNS"))
		}
	}
	return sd
}

func pathDescription(name string) string {
	if name == pathResolvConf {
		return "the pod's resolv.conf nameserver: what workloads in the ECI pod use"
	}
	return "the VPC DNS, queried directly from the ECI pod"
}

func agentLabel(a *agent.Agent) string {
	s := "agent " + a.Name()
	if a.Node != "" {
		s += " on " + a.Node
	}
	return s
}

func agentObject(a *agent.Agent) *pb.Object {
	if a.Pod != "" {
		return diag.Obj("Pod", a.Namespace, a.Pod)
	}
	return diag.Obj("Agent", "", a.Address)
}
