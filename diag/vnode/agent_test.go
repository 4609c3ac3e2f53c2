package vnode

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/agent"
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
	type want struct {
		status pb.Status
		substr []string
	}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		s     *agent.Snapshot
		want  []want
	}{
		{"one healthy agent per VNode", nodes, agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "vnode-2", nil)), []want{
			{pb.Status_PASS, []string{"agent vnodediag/a-1 on vnode-1: Ready, version v1.2.0, last round 0s old (via ProbeService.Run)"}},
			{pb.Status_PASS, []string{"a-2 on vnode-2"}},
		}},
		{"a VNode without agent", nodes, agentSnap(healthyAgent("a-1", "vnode-1", nil)), []want{
			{pb.Status_PASS, nil},
			{pb.Status_FAIL, []string{"no agent runs on VNode vnode-2", "replicas: 2", "kubectl -n vnodediag get pods -l app.kubernetes.io/name=vnodediag-agent -o wide"}},
		}},
		{"not Ready", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Ready, a.ReadyMessage = false, "Ready=False (ContainersNotReady: containers with unready status: [agent])"
		})), []want{{pb.Status_FAIL, []string{"is not Ready (Ready=False (ContainersNotReady", "kubectl -n vnodediag describe pod a-1"}}}},
		{"other version", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) { a.Direct.Info.Version = "v1.1.0" })),
			[]want{{pb.Status_WARN, []string{"runs version v1.1.0, this vnodediag is v1.2.0", "newTag: v1.2.0"}}}},
		{"stale, direct path down", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
			a.Log.Round = agentRound(3, 20*time.Minute, "v1.2.0")
		})), []want{{pb.Status_FAIL, []string{"last round is 20m0s old (via pods/log), older than agent.maxAge 5m0s", "rollout restart", "timed out (i/o timeout; path.onprem-to-cloud"}}}},
		{"fresh log, direct path down", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.TimedOut, Err: "i/o timeout"}
		})), []want{{pb.Status_PASS, []string{"last round 40s old (via pods/log)"}}}},
		{"no round anywhere", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Direct = agent.Direct{Outcome: agent.Refused, Err: "connection refused"}
			a.Log = agent.Log{Read: true, Err: `pods "a-1" is forbidden: User "vnodediag" cannot get resource "pods/log"`}
		})), []want{{pb.Status_FAIL, []string{"gave no round", "cannot get resource", "rbac-agent.yaml", "version", "unknown"}}}},
		{"not Ready and stale: both named", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", func(a *agent.Agent) {
			a.Ready, a.ReadyMessage = false, "Ready=False"
			a.Direct = agent.Direct{Outcome: agent.TimedOut}
			a.Log.Round = agentRound(3, time.Hour, "v1.2.0")
		})), []want{{pb.Status_FAIL, []string{"is not Ready (Ready=False); last round is 1h0m0s old"}}}},
		{"pending agent", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "", func(a *agent.Agent) { a.Phase = "Pending" })), []want{
			{pb.Status_PASS, nil},
			{pb.Status_FAIL, []string{"agent vnodediag/a-2 is not scheduled (Pending)", "tolerations"}},
		}},
		{"agent on an on-prem node", nodes[:2], agentSnap(healthyAgent("a-1", "vnode-1", nil), healthyAgent("a-2", "dc-1", nil)), []want{
			{pb.Status_PASS, nil},
			{pb.Status_WARN, []string{"runs on dc-1, which is not a VNode", "nodeSelector type: virtual-kubelet"}},
		}},
		{"no VNode, no agent", nodes[:1], agentSnap(), []want{{pb.Status_SKIP, []string{"no VNode in the cluster"}}}},
		{"addresses", nodes, func() *agent.Snapshot {
			s := agentSnap(&agent.Agent{Address: "192.168.10.17:7444", Direct: agent.Direct{Outcome: agent.Connected,
				Info: &pb.AgentInfo{Version: "v1.2.0", Node: "vnode-1"}, Round: agentRound(1, 0, "v1.2.0")}})
			s.FromPods = false
			return s
		}(), []want{{pb.Status_PASS, []string{"agent 192.168.10.17:7444 (node vnode-1): version v1.2.0, last round"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := evalAgent(tc.nodes, tc.s)
			if len(got) != len(tc.want) {
				for _, r := range got {
					t.Logf("%s %s", r.Status, r.Summary)
				}
				t.Fatalf("%d results, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				r := got[i]
				all := r.Summary + "\n" + r.Remediation
				for _, e := range r.Evidence {
					all += "\n" + e.Label + ": " + e.Expected + " / " + e.Observed
				}
				if r.Status != w.status {
					t.Errorf("result %d: %s %q, want %s", i, r.Status, r.Summary, w.status)
				}
				for _, s := range w.substr {
					if !strings.Contains(all, s) {
						t.Errorf("result %d lacks %q:\n%s", i, s, all)
					}
				}
			}
		})
	}
}
