// Package path holds the path.* checks: the data path between on-prem and
// the ECI pods in each direction, judged from the cloud-side agents (the
// `agent` source, diag/agent). path.onprem-to-cloud is this host's TCP
// connect to each agent's pod IP; path.cloud-to-onprem is each agent's TCP
// connects to the on-prem targets of its plan. Both are pure evaluations of
// the gathered snapshot.
package path

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The check IDs of this package (a public contract).
const (
	CheckOnPremToCloud = "path.onprem-to-cloud"
	CheckCloudToOnPrem = "path.cloud-to-onprem"
)

// refHybrid is the vendor's note on connecting an on-prem cluster to ECI
// through VNodes: the leased line, BGP and security groups.
const refHybrid = "https://help.aliyun.com/document_detail/363065.html"

// Family is the path.* checks, read from the agent source.
func Family() diag.Family { return diag.Family{Name: "path", Checks: Checks} }

// Checks returns the path.* checks.
func Checks() []diag.Check {
	agentOnly := diag.Needs(agent.Source)
	return []diag.Check{
		{ID: CheckCloudToOnPrem, Title: "ECI pods reach the on-prem targets (TCP, from the cloud-side agents)", Needs: agentOnly, Reference: refHybrid,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalCloudToOnPrem(agent.Source.Get(in)) }},
		{ID: CheckOnPremToCloud, Title: "This host reaches the ECI pods (TCP to each agent's pod IP)", Needs: agentOnly, Reference: refHybrid,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalOnPremToCloud(agent.Source.Get(in)) }},
	}
}

// suspects is the remediation tail that names the checks of this report
// which judge each place a packet can be dropped.
const suspects = "The checks of this report that judge each hop: bgp.* (the on-prem router learns the VPC / vSwitch CIDRs and " +
	"advertises the on-prem networks), cloud.vpc-onprem-routes (the VPC route table sends the on-prem networks to the VBR), " +
	"cloud.security-groups (the ECI security group admits the on-prem CIDRs)."

func noAgents(s *agent.Snapshot) *pb.Result {
	res := diag.Skip("no agent found (%s): see vnode.agent", s.Discovery)
	res.Evidence = []*pb.Evidence{diag.Ev("agents", "at least one", "0")}
	return res
}

// evalOnPremToCloud is path.onprem-to-cloud: one result per agent.
func evalOnPremToCloud(s *agent.Snapshot) []*pb.Result {
	if !s.Direct {
		return []*pb.Result{diag.Skip("agent.direct is false: vnodediag does not dial the agents, so the on-prem to ECI path is not tested")}
	}
	if len(s.Agents) == 0 {
		return []*pb.Result{noAgents(s)}
	}
	var out []*pb.Result
	for _, a := range s.Agents {
		out = append(out, onPremToCloud(s, a))
	}
	return out
}

func onPremToCloud(s *agent.Snapshot, a *agent.Agent) *pb.Result {
	d := a.Direct
	from := d.LocalAddr
	if from == "" {
		from = "this host"
	}
	target := a.Address
	var res *pb.Result
	switch d.Outcome {
	case agent.NotDialled:
		res = diag.Skip("%s not dialled: %s", a.Label(), d.Err)
	case agent.Connected:
		switch {
		case d.InfoErr != "":
			res = diag.Warn("this host reaches %s at %s (TCP connected in %s), but ProbeService did not answer: %s",
				a.Label(), target, roundDur(d.ConnectTime), d.InfoErr)
			res.Remediation = "The path works. Check agent.tls against the agent's --tls-* flags (a TLS agent needs agent.tls.caFile, " +
				"a mutual-TLS agent agent.tls.certFile and keyFile too), and that agent.port is the agent's ProbeService port."
		default:
			res = diag.Pass("this host reaches %s at %s: TCP connected in %s, ProbeService answered", a.Label(), target, roundDur(d.ConnectTime))
		}
	case agent.Refused:
		res = diag.Warn("this host reaches %s's pod IP, but nothing listens on %s (connection refused): the path works, the agent's port does not",
			a.Label(), target)
		res.Remediation = fmt.Sprintf("Set agent.port to the port of the agent's --listen (default %d), or check that the agent runs (vnode.agent).", agent.DefaultPort)
	case agent.TimedOut:
		res = diag.Fail("this host gets no answer from %s at %s (TCP timed out): packets between %s and the ECI pod are dropped on the way",
			a.Label(), target, from)
		res.Remediation = fmt.Sprintf("A silent drop is a missing route on one side or a filter: the on-prem router has no route to the pod's vSwitch CIDR, "+
			"the VPC has no route back to %s through the VBR, or the ECI security group does not admit %s on TCP %d. %s",
			from, from, s.Port, suspects)
	case agent.Unreachable:
		res = diag.Fail("this host has no route to %s at %s (%s)", a.Label(), target, d.Err)
		res.Remediation = fmt.Sprintf("This host (or a router on the way, by ICMP) has no route to %s: the VPC / vSwitch CIDRs must be learned on-prem "+
			"over BGP or routed statically toward the leased line. %s", a.PodIP, suspects)
	default:
		res = diag.Errorf("could not dial %s at %s: %s", a.Label(), target, d.Err)
	}
	res.Objects = a.Objects()
	res.Evidence = append(res.Evidence, diag.Ev("TCP to "+target+" from "+from, "connected", string(d.Outcome)+errSuffix(d.Err)))
	if d.Outcome != agent.Connected && d.Outcome != agent.NotDialled {
		res.Evidence = append(res.Evidence, logEvidence(s, a))
	}
	return res
}

// logEvidence says whether the agent is alive through the API server, which
// tells a broken path from a dead agent.
func logEvidence(s *agent.Snapshot, a *agent.Agent) *pb.Evidence {
	label := "the agent's log through the API server"
	switch {
	case !a.Log.Read:
		return diag.Ev(label, "a fresh round", "not read (agents found by address)")
	case a.Log.Err != "":
		return diag.Ev(label, "a fresh round", "not read: "+a.Log.Err)
	case a.Log.Round == nil:
		return diag.Ev(label, "a fresh round", "no round in the newest lines")
	}
	age := max(0, s.Now.Sub(a.Log.Round.EndTime.AsTime()))
	if age > s.MaxAge {
		return diag.Ev(label, "a fresh round", fmt.Sprintf("newest round %s old, older than agent.maxAge %s: the agent itself may be down (vnode.agent)", roundDur(age), s.MaxAge))
	}
	return diag.Ev(label, "a fresh round", fmt.Sprintf("round %d, %s old: the agent runs, so the path is what is broken", a.Log.Round.Sequence, roundDur(age)))
}

// evalCloudToOnPrem is path.cloud-to-onprem: one result per agent and
// target, from the agent's newest fresh round.
func evalCloudToOnPrem(s *agent.Snapshot) []*pb.Result {
	if len(s.Agents) == 0 {
		return []*pb.Result{noAgents(s)}
	}
	var out []*pb.Result
	for _, a := range s.Agents {
		r, via := s.Fresh(a)
		if r == nil {
			out = append(out, noFreshRound(s, a))
			continue
		}
		if len(r.Connects) == 0 {
			res := diag.Skip("%s probes no on-prem target: its plan has no targets", a.Label())
			res.Objects = a.Objects()
			res.Remediation = "Add the on-prem endpoints cloud workloads need (a database port, an on-prem node's kubelet 10250) under targets: in the agent's ConfigMap (deploy/agent)."
			out = append(out, res)
			continue
		}
		for _, c := range r.Connects {
			out = append(out, cloudToOnPrem(a, r, via, c))
		}
	}
	return out
}

func noFreshRound(s *agent.Snapshot, a *agent.Agent) *pb.Result {
	r, via, age := s.Latest(a)
	var res *pb.Result
	if r == nil {
		res = diag.Errorf("no round from %s: neither path gave one (see vnode.agent)", a.Label())
	} else {
		res = diag.Errorf("no fresh round from %s: the newest (via %s) is %s old, older than agent.maxAge %s (see vnode.agent)", a.Label(), via, roundDur(age), s.MaxAge)
	}
	res.Objects = a.Objects()
	res.Evidence = []*pb.Evidence{
		diag.Ev("direct", "a round", a.DirectState()),
		diag.Ev("pods/log", "a round", a.LogState()),
	}
	return res
}

func cloudToOnPrem(a *agent.Agent, r *pb.ProbeRound, via string, c *pb.ConnectResult) *pb.Result {
	podIP := a.PodIP
	if podIP == "" && r.Agent != nil {
		podIP = r.Agent.PodIp
	}
	if podIP == "" {
		podIP = "the pod"
	}
	t := fmt.Sprintf("%s (%s)", c.Name, c.Address)
	var res *pb.Result
	switch c.Outcome {
	case pb.ConnectResult_CONNECTED:
		res = diag.Pass("%s connects to %s in %s", a.Label(), t, roundDur(c.Rtt.AsDuration()))
	case pb.ConnectResult_REFUSED:
		res = diag.Warn("%s reaches %s but it refuses the connection: the path from the cloud works (a RST came back), nothing listens on %s",
			a.Label(), t, c.Address)
		res.Remediation = fmt.Sprintf("Not a network problem: start the service on %s, or fix the target's port in the agent's plan.", c.Address)
	case pb.ConnectResult_TIMED_OUT:
		res = diag.Fail("%s gets no answer from %s (TCP timed out after %s): packets between the ECI pod %s and on-prem are dropped on the way",
			a.Label(), t, roundDur(c.Rtt.AsDuration()), podIP)
		res.Remediation = fmt.Sprintf("A silent drop is a missing route on one side or a filter: the VPC route table does not send %s to the VBR, "+
			"the on-prem router has no route back to the vSwitch CIDR of %s, the ECI security group's egress rules, or an on-prem firewall in front of %s. %s",
			hostOfAddr(c.Address), podIP, c.Address, suspects)
	case pb.ConnectResult_UNREACHABLE:
		res = diag.Fail("%s has no route to %s: %s", a.Label(), t, c.Error)
		res.Remediation = fmt.Sprintf("The ECI pod (or a router on the way, by ICMP) has no route to %s: the VPC route table must send the on-prem networks "+
			"to the VBR of the leased line. %s", hostOfAddr(c.Address), suspects)
	default:
		res = diag.Errorf("%s could not probe %s: %s", a.Label(), t, c.Error)
	}
	res.Objects = append([]*pb.Object{diag.Obj("Target", "", t)}, a.Objects()...)
	res.Evidence = []*pb.Evidence{
		diag.Ev("TCP from "+podIP+" to "+c.Address, "connected", strings.ToLower(strings.ReplaceAll(c.Outcome.String(), "_", " "))+errSuffix(c.Error)),
		diag.Ev("round", "", fmt.Sprintf("%d via %s, ended %s", r.Sequence, via, r.EndTime.AsTime().UTC().Format(time.RFC3339))),
	}
	return res
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

func hostOfAddr(hp string) string {
	if i := strings.LastIndex(hp, ":"); i > 0 {
		return strings.Trim(hp[:i], "[]")
	}
	return hp
}
