package vnode

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

var agentNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func agentSnap(agents ...*agent.Agent) *agent.Snapshot {
	return &agent.Snapshot{Discovery: "pods", FromPods: true, Namespace: "vnodediag", Selector: "app.kubernetes.io/name=vnodediag-agent",
		Direct: true, Port: 7444, MaxAge: 5 * time.Minute, Version: "v1.2.0", Now: agentNow, Agents: agents}
}

func agentRound(seq uint64, age time.Duration, version string) *pb.ProbeRound {
	return &pb.ProbeRound{Sequence: seq, EndTime: timestamppb.New(agentNow.Add(-age)), Agent: &pb.AgentInfo{Version: version}}
}

// healthyAgent is a Ready agent on node, answering directly with a fresh
// round; mut breaks it.
func healthyAgent(name, node string, mut func(a *agent.Agent)) *agent.Agent {
	a := &agent.Agent{Namespace: "vnodediag", Pod: name, Node: node, PodIP: "192.168.10.17", Address: "192.168.10.17:7444",
		Phase: "Running", Ready: true, ReadyMessage: "Ready=True",
		Direct: agent.Direct{Outcome: agent.Connected, Info: &pb.AgentInfo{Version: "v1.2.0"}, Round: agentRound(4, 0, "v1.2.0")},
		Log:    agent.Log{Read: true, Round: agentRound(3, 40*time.Second, "v1.2.0"), Lines: 1, Bytes: 2000}}
	if mut != nil {
		mut(a)
	}
	return a
}

func TestEvalAgent(t *testing.T) {
	nodes := []*corev1.Node{realNode("dc-1"), typeVNode("vnode-1"), aliyunVNode("vnode-2")}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		s     *agent.Snapshot
		want  []diagtest.Want
	}{
		{"one healthy agent per VNode", nodes, agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "vnode-2", nil)), []diagtest.Want{
			diagtest.W(pb.Status_PASS, "agent vnodediag/a-1 on vnode-1: Ready, version v1.2.0, last round 0s old (via ProbeService.Run)"),
			diagtest.W(pb.Status_PASS, "a-2 on vnode-2"),
		}},
		{"a VNode without agent", nodes, agentSnap(healthyAgent("a-1", "vnode-1", nil)), []diagtest.Want{
			diagtest.W(pb.Status_PASS),
			diagtest.W(pb.Status_FAIL, "no agent runs on VNode vnode-2", "replicas: 2", "kubectl -n vnodediag get pods -l app.kubernetes.io/name=vnodediag-agent -o wide"),
		}},
		{"a NotReady VNode without agent: vnode.present reports it", append(nodes[:2:2], func() *corev1.Node {
			n := typeVNode("vnode-3")
			n.Status.Conditions[0].Status, n.Status.Conditions[0].Reason = corev1.ConditionUnknown, "NodeStatusUnknown"
			return n
		}()), agentSnap(healthyAgent("a-1", "vnode-1", nil)), []diagtest.Want{
			diagtest.W(pb.Status_PASS),
			diagtest.W(pb.Status_SKIP, "VNode vnode-3 is not Ready and runs no agent", "vnode.present"),
		}},
		{"not Ready", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Ready, a.ReadyMessage = false, "Ready=False (ContainersNotReady: containers with unready status: [agent])"
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "is not Ready (Ready=False (ContainersNotReady", "kubectl -n vnodediag describe pod a-1")}},
		{"other version", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) { a.Direct.Info.Version = "v1.1.0" })),
			[]diagtest.Want{diagtest.W(pb.Status_WARN, "runs version v1.1.0, this vnodediag is v1.2.0", "newTag: v1.2.0")}},
		{"stale, direct path down", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log.Round = agentRound(3, 20*time.Minute, "v1.2.0")
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "last round is 20m0s old (via pods/log), older than agent.maxAge 5m0s", "rollout restart", "direct (ProbeService): want connected got timed out: i/o timeout")}},
		{"fresh log, direct path down", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
		})), []diagtest.Want{diagtest.W(pb.Status_PASS, "last round 40s old (via pods/log)")}},
		{"no round anywhere", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Refused, Err: "connection refused"}
			a.Log = agent.Log{Read: true, Err: `pods "a-1" is forbidden: User "vnodediag" cannot get resource "pods/log"`}
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "gave no round", "cannot get resource", "deploy/kubernetes/rbac.yaml", "version", "unknown")}},
		{"not Ready and stale: both named", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Ready, a.ReadyMessage = false, "Ready=False"
			a.Direct = agent.Direct{Outcome: agent.TimedOut}
			a.Log.Round = agentRound(3, time.Hour, "v1.2.0")
		})), []diagtest.Want{diagtest.W(pb.Status_FAIL, "is not Ready (Ready=False); last round is 1h0m0s old")}},
		{"pending agent", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "", func(a *agent.Agent) { a.Phase = "Pending" })), []diagtest.Want{
			diagtest.W(pb.Status_PASS),
			diagtest.W(pb.Status_FAIL, "agent vnodediag/a-2 is not scheduled (Pending)", "tolerations"),
		}},
		{"agent on an on-prem node", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "dc-1", nil)), []diagtest.Want{
			diagtest.W(pb.Status_PASS),
			diagtest.W(pb.Status_WARN, "runs on dc-1, which is not a VNode", "nodeSelector type: virtual-kubelet"),
		}},
		{"no VNode, no agent", nodes[:1], agentSnap(), []diagtest.Want{diagtest.W(pb.Status_SKIP, "no VNode in the cluster")}},
		{"addresses", nodes, func() *agent.Snapshot {
			s := agentSnap(&agent.Agent{Address: "192.168.10.17:7444", Direct: agent.Direct{Outcome: agent.Connected,
				Info: &pb.AgentInfo{Version: "v1.2.0", Node: "vnode-1"}, Round: agentRound(1, 0, "v1.2.0")}})
			s.FromPods = false
			return s
		}(), []diagtest.Want{diagtest.W(pb.Status_PASS, "agent 192.168.10.17:7444 (node vnode-1): version v1.2.0, last round")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diagtest.Expect(t, evalAgent(tc.nodes, tc.s), tc.want...)
		})
	}
}
