package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/path"
	"github.com/vnodediag/vnodediag/diag/vnode"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/vnodelab"
)

// TestMain lets this test binary be the lab's agent container.
func TestMain(m *testing.M) {
	vnodelab.RunAgentIfChild()
	os.Exit(m.Run())
}

func startLab(t *testing.T, opts vnodelab.Options) *vnodelab.Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no lab VNode")
	}
	opts.Exec = vnodelab.SelfExec
	return vnodelab.StartT(t, opts)
}

// gather reads the agent source against the lab.
func gather(t *testing.T, l *vnodelab.Lab, cfg *agent.Config) *agent.Snapshot {
	t.Helper()
	p, err := agent.NewProvider(cfg, nil, agent.WithPods(agent.KubePods(l.Kube.Client)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v.(*agent.Snapshot)
}

// runChecks runs the agent's checks through the Runner with the lab's
// Kubernetes and agent sources, and returns the results by check ID.
func runChecks(t *testing.T, l *vnodelab.Lab, cfg *agent.Config) map[string][]*pb.Result {
	t.Helper()
	kp, err := kube.NewProviderForConfig(kube.Config{}, l.Kube.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	ap, err := agent.NewProvider(cfg, nil, agent.WithPods(agent.KubePods(l.Kube.Client)))
	if err != nil {
		t.Fatal(err)
	}
	var checks []diag.Check
	for _, c := range append(append(path.Checks(), vnode.Checks()...), dnsprobe.Checks()...) {
		if c.ID == vnode.CheckAgent || strings.HasPrefix(c.ID, "path.") || c.ID == dnsprobe.IDOnPremFromCloud {
			checks = append(checks, c)
		}
	}
	r := &diag.Runner{Providers: []diag.Provider{kp, ap}}
	rep := r.Run(context.Background(), checks)
	out := map[string][]*pb.Result{}
	for _, res := range rep.Results {
		t.Logf("%-22s %-5s %s", res.CheckId, res.Status, res.Summary)
		out[res.CheckId] = append(out[res.CheckId], res)
	}
	return out
}

// expect checks that results has one result per entry of want, in order,
// with that status and text.
func expect(t *testing.T, id string, results []*pb.Result, want ...[2]string) {
	t.Helper()
	if len(results) != len(want) {
		t.Errorf("%s: %d results, want %d", id, len(results), len(want))
		return
	}
	for i, w := range want {
		r := results[i]
		all := r.Summary + "\n" + r.Remediation
		for _, e := range r.Evidence {
			all += "\n" + e.Label + ": " + e.Observed
		}
		if r.Status.String() != w[0] || !strings.Contains(all, w[1]) {
			t.Errorf("%s result %d: %s %q, want %s containing %q\n%s", id, i, r.Status, r.Summary, w[0], w[1], all)
		}
	}
}

// TestBothWaysOut: the agent on the lab VNode answers directly and through
// pods/log; every check passes for a working on-prem target.
func TestBothWaysOut(t *testing.T) {
	l := startLab(t, vnodelab.Options{Targets: []string{vnodelab.TargetOpen}})
	s := gather(t, l, l.AgentConfig())
	if len(s.Agents) != 1 {
		t.Fatalf("%d agents, want 1", len(s.Agents))
	}
	a := s.Agents[0]
	if a.Node != l.Node.Name || a.PodIP != l.PodIP || !a.Ready {
		t.Errorf("agent %+v", a)
	}
	if a.Direct.Outcome != agent.Connected || a.Direct.Info == nil || a.Direct.Round == nil {
		t.Fatalf("direct: %+v", a.Direct)
	}
	if a.Log.Err != "" || a.Log.Round == nil {
		t.Fatalf("log through the API server: %+v", a.Log)
	}
	if a.Log.Round.Agent.GetPod() != l.Pod || a.Log.Round.Agent.GetNode() != l.Node.Name || a.Log.Round.Agent.GetPodIp() != l.PodIP {
		t.Errorf("the round does not name the pod (downward API): %v", a.Log.Round.Agent)
	}
	md := a.Direct.Round.Metadata
	if !md.GetAvailable() || md.GetInstanceId() != vnodelab.Metadata["instance-id"] || md.GetVswitchId() != vnodelab.Metadata["vswitch-id"] || md.GetPrivateIpv4() != l.PodIP {
		t.Errorf("metadata %v", md)
	}
	if len(a.Direct.Round.Network.GetRoutes()) == 0 || len(a.Direct.Round.Network.GetInterfaces()) < 2 {
		t.Errorf("network facts %v", a.Direct.Round.Network)
	}

	res := runChecks(t, l, l.AgentConfig())
	expect(t, vnode.CheckAgent, res[vnode.CheckAgent], [2]string{"PASS", "on " + l.Node.Name + ": Ready, version dev"})
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud], [2]string{"PASS", "ProbeService answered"})
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem], [2]string{"PASS", "connects to postgres"})
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud],
		[2]string{"PASS", "resolver resolv.conf"}, [2]string{"PASS", "resolver VPC DNS"})
}
