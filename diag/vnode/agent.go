package vnode

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func runAgent(ctx context.Context, in *diag.Inputs) []*pb.Result {
	if r := canceled(ctx); r != nil {
		return r
	}
	var nodes []*corev1.Node
	if kube.Source.Gathered(in) {
		nodes = kube.Source.Get(in).Nodes
	}
	return evalAgent(nodes, agent.Source.Get(in))
}

// evalAgent is vnode.agent: an agent runs on each VNode, is Ready, runs
// vnodediag's version and its newest round is fresh. A VNode that is not
// Ready and has no agent SKIPs: vnode.present FAILs it already, and no
// agent can be scheduled there until it is Ready again. With agents found
// by address there are no pods: each address is judged by what it
// answered.
func evalAgent(nodes []*corev1.Node, s *agent.Snapshot) []*pb.Result {
	if !s.FromPods {
		if len(s.Agents) == 0 {
			return []*pb.Result{diag.Skip("no agent address configured: set agent.addresses, or agent.selector to find the agent pods")}
		}
		var out []*pb.Result
		for _, a := range s.Agents {
			out = append(out, agentResult(s, a))
		}
		return out
	}
	vns := vnodes(nodes)
	if len(vns) == 0 && len(s.Agents) == 0 {
		return []*pb.Result{noVNode(len(nodes))}
	}
	byNode := map[string][]*agent.Agent{}
	for _, a := range s.Agents {
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	var out []*pb.Result
	for _, n := range vns {
		as := byNode[n.Name]
		delete(byNode, n.Name)
		if len(as) == 0 {
			if _, ready := readyCondition(n); !ready {
				res := diag.Skip("VNode %s is not Ready and runs no agent: no agent can be scheduled there until it is (vnode.present reports the VNode)", n.Name)
				res.Objects = []*pb.Object{diag.Obj("Node", "", n.Name)}
				out = append(out, res)
				continue
			}
			out = append(out, missingAgent(s, n, len(vns)))
			continue
		}
		for _, a := range as {
			out = append(out, agentResult(s, a))
		}
	}
	// What is left runs on no VNode.
	var rest []string
	for node := range byNode {
		rest = append(rest, node)
	}
	sort.Strings(rest)
	for _, node := range rest {
		for _, a := range byNode[node] {
			out = append(out, offVNode(a))
		}
	}
	return out
}

func missingAgent(s *agent.Snapshot, n *corev1.Node, vnodes int) *pb.Result {
	res := diag.Fail("no agent runs on VNode %s: nothing probes the path from its ECI pods", n.Name)
	res.Objects = []*pb.Object{diag.Obj("Node", "", n.Name)}
	res.Evidence = []*pb.Evidence{diag.Ev("agent pods on "+n.Name, "at least one, "+s.Selector+" in namespace "+s.Namespace, "none")}
	res.Remediation = fmt.Sprintf("Deploy the agent (kubectl apply -k deploy/agent) with replicas: %d, one per VNode: its Deployment selects VNodes "+
		"(nodeSelector type: virtual-kubelet) and tolerates their taints; keep its labels matching agent.selector (%s). "+
		"Then `kubectl -n %s get pods -l %s -o wide` shows where each runs.", vnodes, s.Selector, s.Namespace, s.Selector)
	return res
}

func offVNode(a *agent.Agent) *pb.Result {
	var res *pb.Result
	if a.Node == "" {
		res = diag.Fail("agent %s is not scheduled (%s): no VNode takes it", a.Name(), a.Phase)
		res.Remediation = fmt.Sprintf("`kubectl -n %s describe pod %s` shows why; the Deployment of deploy/agent needs the VNode tolerations "+
			"(virtual-kubelet.io/provider, k8s.aliyun.com/vnode) and nodeSelector type: virtual-kubelet, and at most one agent per VNode fits.", a.Namespace, a.Pod)
	} else {
		res = diag.Warn("agent %s runs on %s, which is not a VNode: it probes from there, not from an ECI pod", a.Name(), a.Node)
		res.Objects = []*pb.Object{diag.Obj("Node", "", a.Node)}
		res.Remediation = "Pin the agent to VNodes: nodeSelector type: virtual-kubelet (as in deploy/agent), or narrow agent.selector to the agents on VNodes."
	}
	res.Objects = append([]*pb.Object{diag.Obj("Pod", a.Namespace, a.Pod)}, res.Objects...)
	return res
}

// agentResult judges one agent: Ready, version, freshness of its newest
// round; the summary names the first problem, the evidence all of them.
func agentResult(s *agent.Snapshot, a *agent.Agent) *pb.Result {
	status := pb.Status_PASS
	var problems, fixes, good []string
	ev := []*pb.Evidence{}
	if s.FromPods {
		ev = append(ev, diag.Ev("pod", "Running, Ready=True", a.Phase+", "+a.ReadyMessage))
		if !a.Ready {
			status = worst(status, pb.Status_FAIL)
			problems = append(problems, "is not Ready ("+a.ReadyMessage+")")
			fixes = append(fixes, fmt.Sprintf("`kubectl -n %s describe pod %s` and `kubectl -n %s logs %s` say why the agent is not Ready (its readiness probe is a TCP connect to its probe port).",
				a.Namespace, a.Pod, a.Namespace, a.Pod))
		} else {
			good = append(good, "Ready")
		}
		if a.Restarts > 0 {
			ev = append(ev, diag.Ev("restarts", "0", fmt.Sprint(a.Restarts)))
		}
	}
	info := a.AgentInfo()
	switch {
	case info == nil:
		ev = append(ev, diag.Ev("version", s.Version, "unknown: the agent answered nothing and its log has no round"))
	case info.Version != s.Version:
		status = worst(status, pb.Status_WARN)
		problems = append(problems, fmt.Sprintf("runs version %s, this vnodediag is %s", info.Version, s.Version))
		fixes = append(fixes, fmt.Sprintf("Run the agent from the same release as vnodediag: set newTag: %s in deploy/agent/kustomization.yaml (or agent.version to the release you deploy).", s.Version))
		ev = append(ev, diag.Ev("version", s.Version, info.Version))
	default:
		good = append(good, "version "+info.Version)
		ev = append(ev, diag.Ev("version", s.Version, info.Version))
	}
	r, via, age := s.Latest(a)
	switch {
	case r == nil:
		status = worst(status, pb.Status_FAIL)
		problems = append(problems, "gave no round (directly: "+a.DirectState()+"; log: "+a.LogState()+")")
		fixes = append(fixes, "The agent writes a round at start and every interval; without one, read its log (`kubectl logs`) for a configuration error, "+
			"and grant vnodediag get on pods/log in the agents' namespace (deploy/kubernetes/rbac.yaml).")
	case age > s.MaxAge:
		status = worst(status, pb.Status_FAIL)
		problems = append(problems, fmt.Sprintf("last round is %s old (via %s), older than agent.maxAge %s: stale results are not used", age.Round(time.Second), via, s.MaxAge))
		fixes = append(fixes, "A hung or crash-looping agent writes no new rounds: restart it (`kubectl rollout restart -n "+orNS(a.Namespace)+" deployment/vnodediag-agent`). "+
			"If its interval is longer than agent.maxAge, raise agent.maxAge.")
	default:
		good = append(good, fmt.Sprintf("last round %s old (via %s)", roundAge(age), via))
	}
	if r != nil {
		ev = append(ev, diag.Ev("newest round", "younger than "+s.MaxAge.String(), fmt.Sprintf("%d, %s old, via %s", r.Sequence, roundAge(age), via)))
	}
	ev = append(ev, diag.Ev("direct (ProbeService)", "connected", a.DirectState()), diag.Ev("log (pods/log)", "a round", a.LogState()))

	name := a.Label()
	if a.Node == "" && info != nil && info.Node != "" {
		name += " (node " + info.Node + ")"
	}
	var res *pb.Result
	if status == pb.Status_PASS {
		res = diag.Pass("%s: %s", name, strings.Join(good, ", "))
	} else {
		res = diag.Res(status, "%s %s", name, strings.Join(problems, "; "))
		res.Remediation = strings.Join(fixes, "\n")
	}
	res.Objects = a.Objects()
	res.Evidence = ev
	return res
}

func orNS(ns string) string {
	if ns == "" {
		return agent.DefaultNamespace
	}
	return ns
}

func roundAge(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
