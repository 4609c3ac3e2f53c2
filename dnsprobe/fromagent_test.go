package dnsprobe

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

var agentNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	podNS    = "10.96.0.10:53"     // the pod's resolv.conf: the cluster DNS
	vpc1     = "100.100.2.136:53"  // VPC DNS
	onpremNS = "10.0.0.53:53"      // on-prem DNS (forward target)
	dbName   = "db.corp.example."  // an on-prem name
	apiPZ    = "api.svc.internal." // a PrivateZone name
)

// dnsRes is one agent DNS result: outcome and, when answered, A values.
func dnsRes(server, name, typ, outcome string, values ...string) *pb.DNSResult {
	r := &pb.DNSResult{Server: server, Name: name, Type: typ, Outcome: outcome, Rtt: durationpb.New(time.Millisecond)}
	switch outcome {
	case "answered":
		r.Rcode = "NOERROR"
		for _, v := range values {
			r.Answers = append(r.Answers, &pb.DNSRecord{Name: name, Type: typ, Ttl: 60, Data: v})
		}
	case "REFUSED", "SERVFAIL", "NXDOMAIN":
		r.Rcode = outcome
	case "timeout":
		r.Rtt = durationpb.New(2 * time.Second)
	}
	return r
}

// agentRound is a round of an agent whose plan resolves db.corp.example
// (expect 10.1.2.3) and api.svc.internal through resolv.conf (resolv) and
// the VPC DNS, with the on-prem DNS as forward target.
func agentRound(age time.Duration, resolv []string, results ...*pb.DNSResult) *pb.ProbeRound {
	return &pb.ProbeRound{
		Sequence: 5, EndTime: timestamppb.New(agentNow.Add(-age)),
		Agent: &pb.AgentInfo{Version: "v1", Plan: &pb.ProbePlan{
			ResolvConf: "/etc/resolv.conf", VpcResolvers: []string{vpc1}, OnpremResolvers: []string{onpremNS},
			OnpremZones: []string{"corp.example."}, PrivateZones: []string{"svc.internal."},
			Names:      []*pb.ProbeName{{Name: dbName, Type: "A", Expect: []string{"10.1.2.3"}}, {Name: apiPZ, Type: "A"}},
			DnsTimeout: durationpb.New(2 * time.Second),
		}},
		Network: &pb.NetworkFacts{ResolvNameservers: resolv},
		Dns:     results,
	}
}

func agentsWith(r *pb.ProbeRound) *agent.Snapshot {
	a := &agent.Agent{Namespace: "vnodediag", Pod: "agent-1", Node: "vnode-1", Direct: agent.Direct{Outcome: agent.Connected, Round: r}}
	return &agent.Snapshot{Discovery: "pods", FromPods: true, MaxAge: 5 * time.Minute, Now: agentNow, Agents: []*agent.Agent{a}}
}

// every server answers its zone's SOA, so that "alive" holds.
func soas(servers ...string) []*pb.DNSResult {
	var out []*pb.DNSResult
	for _, s := range servers {
		out = append(out, dnsRes(s, "corp.example.", "SOA", "answered", "ns.corp.example. h.corp.example. 1 60 60 60 60"))
	}
	return out
}

func TestEvalOnPremFromAgents(t *testing.T) {
	ok := func(server string) *pb.DNSResult { return dnsRes(server, dbName, "A", "answered", "10.1.2.3") }
	for _, tc := range []struct {
		name string
		r    *pb.ProbeRound
		want []diagtest.Want
	}{
		{"both paths answer", agentRound(time.Minute, []string{podNS}, append(soas(podNS, vpc1, onpremNS), ok(podNS), ok(vpc1), ok(onpremNS))...), []diagtest.Want{
			diagtest.W(pb.Status_PASS, "from the ECI pod of agent vnodediag/agent-1 on vnode-1, the resolver resolv.conf (10.96.0.10:53) resolves db.corp.example A", "what workloads in the ECI pod use", "round 5 via ProbeService.Run"),
			diagtest.W(pb.Status_PASS, "resolver VPC DNS (100.100.2.136:53) resolves", "the VPC DNS, queried directly"),
		}},
		{"VPC DNS without forwarding rule", agentRound(time.Minute, []string{podNS},
			append(soas(podNS, vpc1, onpremNS), ok(podNS), dnsRes(vpc1, dbName, "A", "REFUSED"), ok(onpremNS))...), []diagtest.Want{
			diagtest.W(pb.Status_PASS, "resolv.conf"),
			diagtest.W(pb.Status_FAIL, "resolver VPC DNS (100.100.2.136:53) answers REFUSED for db.corp.example A", "the forward target answers it directly", "PrivateZone forwarding rule", "10.0.0.53:53"),
		}},
		{"cluster DNS does not forward", agentRound(time.Minute, []string{podNS},
			append(soas(podNS, vpc1, onpremNS), dnsRes(podNS, dbName, "A", "NXDOMAIN"), ok(vpc1), ok(onpremNS))...), []diagtest.Want{
			diagtest.W(pb.Status_FAIL, "resolver resolv.conf (10.96.0.10:53) says NXDOMAIN", "If it is CoreDNS, forward corp.example", "dns.coredns-forward"),
			diagtest.W(pb.Status_PASS, "VPC DNS"),
		}},
		{"resolv.conf is the VPC DNS", agentRound(time.Minute, []string{vpc1},
			append(soas(vpc1, onpremNS), dnsRes(vpc1, dbName, "A", "REFUSED"), ok(onpremNS))...), []diagtest.Want{
			diagtest.W(pb.Status_FAIL, "resolver resolv.conf (100.100.2.136:53) answers REFUSED", "PrivateZone forwarding rule"),
			diagtest.W(pb.Status_FAIL, "resolver VPC DNS (100.100.2.136:53) answers REFUSED"),
		}},
		{"wrong answer", agentRound(time.Minute, nil, append(soas(vpc1, onpremNS), dnsRes(vpc1, dbName, "A", "answered", "10.9.9.9"), ok(onpremNS))...), []diagtest.Want{
			diagtest.W(pb.Status_FAIL, "answers db.corp.example A with 10.9.9.9, expected 10.1.2.3"),
		}},
		{"on-prem DNS dead behind a silent VPC DNS", agentRound(time.Minute, nil,
			append(soas(vpc1), dnsRes(vpc1, dbName, "A", "timeout"), dnsRes(onpremNS, dbName, "A", "timeout"), dnsRes(onpremNS, "corp.example.", "SOA", "timeout"))...), []diagtest.Want{
			diagtest.W(pb.Status_FAIL, "is up but silent for db.corp.example A", "10.0.0.53:53"),
		}},
		{"VPC DNS unreachable from the pod", agentRound(time.Minute, nil, dnsRes(vpc1, dbName, "A", "timeout"), dnsRes(vpc1, "corp.example.", "SOA", "timeout")), []diagtest.Want{
			diagtest.W(pb.Status_FAIL, "does not answer at all", "open from the ECI pod"),
		}},
		{"stale round", agentRound(time.Hour, nil, ok(vpc1)), []diagtest.Want{diagtest.W(pb.Status_ERROR, "no fresh round from agent vnodediag/agent-1 on vnode-1", "vnode.agent")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := evalFromAgents(agentsWith(tc.r), onPremFromAgent)
			diagtest.Expect(t, got, tc.want...)
			for i, r := range got {
				if r.Status != pb.Status_ERROR && !slices.ContainsFunc(r.Objects, func(o *pb.Object) bool { return o.Kind == "Pod" && o.Name == "agent-1" }) {
					t.Errorf("result %d does not name the agent pod: %v", i, r.Objects)
				}
			}
		})
	}
}

func TestEvalOnPremFromAgentsPlans(t *testing.T) {
	noNames := agentRound(0, []string{podNS})
	noNames.Agent.Plan.Names = noNames.Agent.Plan.Names[1:]
	if got := evalFromAgents(agentsWith(noNames), onPremFromAgent); len(got) != 1 || got[0].Status != pb.Status_SKIP || !strings.Contains(got[0].Summary, "resolves no on-prem name") {
		t.Errorf("no on-prem names: %v", got)
	}
	noResolvers := agentRound(0, nil)
	noResolvers.Agent.Plan.VpcResolvers = nil
	if got := evalFromAgents(agentsWith(noResolvers), onPremFromAgent); len(got) != 1 || got[0].Status != pb.Status_SKIP || !strings.Contains(got[0].Summary, "no resolver to ask") {
		t.Errorf("no resolvers: %v", got)
	}
	if got := evalFromAgents(&agent.Snapshot{Discovery: "pods x"}, onPremFromAgent); len(got) != 1 || got[0].Status != pb.Status_SKIP {
		t.Errorf("no agents: %v", got)
	}
}

// TestOnPremFromCloudModes: the direct mode's "cannot query" SKIP gives way
// to the agents; direct results stay, marked as such.
func TestOnPremFromCloudModes(t *testing.T) {
	c := &Config{
		CloudResolvers: []Resolver{{Name: "vpc", Address: "100.100.2.136"}}, CloudReachable: ReachNo,
		OnPremZones: []string{"corp.example"}, OnPremNames: []Name{{Name: "db.corp.example"}},
	}
	unreachable := &Observations{Config: c.canonical(), Outcomes: map[Query]*Outcome{}, Timeout: time.Second}
	agents := agentsWith(agentRound(0, nil, append(soas(vpc1, onpremNS), dnsRes(vpc1, dbName, "A", "answered", "10.1.2.3"))...))
	run := func(obs *Observations, s *agent.Snapshot) []*pb.Result {
		in := diag.NewInputs(Source.With(obs))
		if s != nil {
			in = diag.NewInputs(Source.With(obs), agent.Source.With(s))
		}
		return runOnPremFromCloud(context.Background(), in)
	}

	got := run(unreachable, agents)
	if len(got) != 1 || got[0].Status != pb.Status_PASS || !strings.Contains(got[0].Summary, "from the ECI pod") {
		t.Errorf("unreachable cloud + agent: %v", got)
	}
	got = run(unreachable, nil)
	if len(got) != 1 || got[0].Status != pb.Status_SKIP || !strings.Contains(got[0].Summary, "from the cloud-side agents") {
		t.Errorf("unreachable cloud, no agent: %v", got)
	}

	c.CloudReachable = ReachYes
	q := Query{Server: vpc1, Name: dbName, Type: 1}
	reachable := &Observations{Config: c.canonical(), Timeout: time.Second, Outcomes: map[Query]*Outcome{
		q: {Server: vpc1, Name: dbName, Type: "A", Kind: Answered, Answers: []Record{{Name: dbName, Type: "A", Data: "10.1.2.3"}}},
	}}
	got = run(reachable, agents)
	if len(got) != 2 || got[0].Status != pb.Status_PASS || got[1].Status != pb.Status_PASS {
		t.Fatalf("both modes: %v", got)
	}
	direct := got[0].Evidence[len(got[0].Evidence)-1]
	if direct.Label != "queried from" || !strings.Contains(direct.Observed, "this host, directly") {
		t.Errorf("direct result does not say where it was asked from: %v", got[0].Evidence)
	}
	if !strings.Contains(got[1].Summary, "from the ECI pod of agent vnodediag/agent-1") {
		t.Errorf("agent result: %s", got[1].Summary)
	}
}

// TestEvalPrivateZoneFromAgents: the PrivateZone names of the plan, asked
// from inside the VPC, are dns.resolver-reachable's cloud side: the VPC
// DNS answers them only for zones associated with the VPC.
func TestEvalPrivateZoneFromAgents(t *testing.T) {
	pz := func(server, outcome string, values ...string) *pb.DNSResult {
		return dnsRes(server, apiPZ, "A", outcome, values...)
	}
	for _, tc := range []struct {
		name  string
		r     *pb.ProbeRound
		want  string
		frags []string
	}{
		{"both paths answer", agentRound(0, []string{podNS}, append(soas(podNS, vpc1), pz(podNS, "answered", "10.2.0.1"), pz(vpc1, "answered", "10.2.0.1"))...),
			"PASS,PASS", []string{"resolver resolv.conf (10.96.0.10:53) resolves api.svc.internal A", "resolver VPC DNS (100.100.2.136:53) resolves api.svc.internal A"}},
		{"zone not associated with the VPC", agentRound(0, []string{podNS}, append(soas(podNS, vpc1), pz(podNS, "NXDOMAIN"), pz(vpc1, "NXDOMAIN"))...),
			"FAIL,FAIL", []string{"and so does the forward target", "says NXDOMAIN for api.svc.internal A", "Associate VPC"}},
		{"the cluster DNS does not forward the PrivateZone", agentRound(0, []string{podNS}, append(soas(podNS, vpc1), pz(podNS, "NXDOMAIN"), pz(vpc1, "answered", "10.2.0.1"))...),
			"FAIL,PASS", []string{"but the forward target has it", "forward svc.internal to the VPC DNS (100.100.2.136:53"}},
		{"no PrivateZone name in the plan", func() *pb.ProbeRound {
			r := agentRound(0, []string{podNS})
			r.Agent.Plan.Names = r.Agent.Plan.Names[:1]
			return r
		}(), "SKIP", []string{"resolves no PrivateZone name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := evalFromAgents(agentsWith(tc.r), privateZoneFromAgent)
			if diagtest.StatusNames(got) != tc.want {
				t.Fatalf("got %s, want %s", diagtest.Dump(got), tc.want)
			}
			all := diagtest.Dump(got)
			for _, r := range got {
				all += r.Remediation
			}
			for _, f := range tc.frags {
				if !strings.Contains(all, f) {
					t.Errorf("lacks %q:\n%s", f, all)
				}
			}
		})
	}
}

// TestResolverReachableModes: with agents, the direct mode's SKIPs for the
// cloud resolvers this host cannot query give way to the agents' results;
// the on-prem resolvers' results stay.
func TestResolverReachableModes(t *testing.T) {
	c := &Config{
		OnPremResolvers: []Resolver{{Name: "unbound", Address: "10.0.0.53"}},
		CloudResolvers:  []Resolver{{Name: "vpc", Address: "100.100.2.136"}}, CloudReachable: ReachNo,
		OnPremZones: []string{"corp.example"}, PrivateZones: []string{"svc.internal"},
	}
	soa := Query{Server: onpremNS, Name: "corp.example.", Type: dns.TypeSOA}
	obs := &Observations{Config: c.canonical(), Timeout: time.Second, Outcomes: map[Query]*Outcome{soa: {Kind: Answered}}}
	agents := agentsWith(agentRound(0, nil, append(soas(vpc1), dnsRes(vpc1, apiPZ, "A", "answered", "10.2.0.1"))...))

	got := runResolverReachable(context.Background(), diag.NewInputs(Source.With(obs)))
	if s := diagtest.StatusNames(got); s != "PASS,SKIP" {
		t.Errorf("without agents: %s", diagtest.Dump(got))
	}
	got = runResolverReachable(context.Background(), diag.NewInputs(Source.With(obs), agent.Source.With(agents)))
	if s := diagtest.StatusNames(got); s != "PASS,PASS" || !strings.Contains(got[1].Summary, "from the ECI pod of agent vnodediag/agent-1 on vnode-1, the resolver VPC DNS") {
		t.Errorf("with an agent: %s", diagtest.Dump(got))
	}
	got = runResolverReachable(context.Background(), diag.NewInputs(agent.Source.With(agents)))
	if s := diagtest.StatusNames(got); s != "PASS" {
		t.Errorf("agents only: %s", diagtest.Dump(got))
	}
}
