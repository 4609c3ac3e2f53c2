package agent_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/path"
	"github.com/vnodediag/vnodediag/diag/vnode"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/dnslab"
	"github.com/vnodediag/vnodediag/test/kubelab"
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

// gather reads the agent source against the lab through cs, as a run
// would after gathering the Kubernetes source with that client.
func gather(t testing.TB, cs kubernetes.Interface, cfg *agent.Config) *agent.Snapshot {
	t.Helper()
	p, err := agent.NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := p.(diag.Dependent).GatherFrom(ctx, diag.NewInputs(kube.Source.With(&kube.Snapshot{API: cs})))
	if err != nil {
		t.Fatal(err)
	}
	return v.(*agent.Snapshot)
}

// agentChecks are the checks that read the agent source.
func agentChecks() []diag.Check {
	var checks []diag.Check
	for _, c := range slices.Concat(path.Checks(), vnode.Checks(), dnsprobe.Checks()) {
		if slices.Contains(slices.Concat(c.Needs, c.Optional), agent.Source.Name()) {
			checks = append(checks, c)
		}
	}
	return checks
}

// runChecks runs the agent's checks through the Runner with the lab's
// Kubernetes and agent sources, and returns the results by check ID.
func runChecks(t *testing.T, l *vnodelab.Lab, cfg *agent.Config) map[string][]*pb.Result {
	t.Helper()
	kp, err := kube.ForRESTConfig(&kube.Config{}, l.Kube.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	ap, err := agent.NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	r := &diag.Runner{Providers: []diag.Provider{kp, ap}}
	defer r.Close()
	rep := r.Run(context.Background(), agentChecks())
	out := map[string][]*pb.Result{}
	for _, res := range rep.Results {
		t.Logf("%-22s %-5s %s", res.CheckId, res.Status, res.Summary)
		out[res.CheckId] = append(out[res.CheckId], res)
	}
	return out
}

// TestBothWaysOut: the agent on the lab VNode answers directly and through
// pods/log; every check passes for a working on-prem target.
func TestBothWaysOut(t *testing.T) {
	l := startLab(t, vnodelab.Options{Targets: []string{vnodelab.TargetOpen}})
	s := gather(t, l.Kube.Client, l.AgentConfig())
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
	// Safety: the source asks for the tail, never the whole log.
	for _, o := range l.Node.LogRequests() {
		if o.Tail != agent.DefaultLogTailLines || o.LimitBytes != agent.DefaultLogLimitBytes || o.Follow {
			t.Errorf("log request %+v: want tailLines %d and limitBytes %d", o, agent.DefaultLogTailLines, agent.DefaultLogLimitBytes)
		}
	}
	if len(l.Node.LogRequests()) == 0 {
		t.Error("the VNode served no log request")
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
	diagtest.Expect(t, res[vnode.CheckAgent], diagtest.W(pb.Status_PASS, "on "+l.Node.Name+": Ready, version dev"))
	diagtest.Expect(t, res[path.CheckOnPremToCloud], diagtest.W(pb.Status_PASS, "ProbeService answered"))
	diagtest.Expect(t, res[path.CheckCloudToOnPrem], diagtest.W(pb.Status_PASS, "connects to postgres"))
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud],
		diagtest.W(pb.Status_PASS, "resolver resolv.conf"), diagtest.W(pb.Status_PASS, "resolver VPC DNS"))
	// The PrivateZone names, from inside the VPC.
	diagtest.Expect(t, res[dnsprobe.CheckResolverReachable],
		diagtest.W(pb.Status_PASS, "resolver resolv.conf ("+l.DNS.OnPremAddr+") resolves api.svc.cloud.internal A"),
		diagtest.W(pb.Status_PASS, "resolver VPC DNS ("+l.DNS.CloudAddr+") resolves api.svc.cloud.internal A"))
}

// TestDirectPathCut: the cloud end of the direct link goes down. vnodediag's
// dial times out, so path.onprem-to-cloud FAILs and says the agent is
// alive; the agent's results still arrive through pods/log.
func TestDirectPathCut(t *testing.T) {
	l := startLab(t, vnodelab.Options{})
	if err := l.CutDirect(); err != nil {
		t.Fatal(err)
	}
	res := runChecks(t, l, l.AgentConfig())
	diagtest.Expect(t, res[path.CheckOnPremToCloud],
		diagtest.W(pb.Status_FAIL, "TCP timed out"))
	diagtest.Expect(t, res[path.CheckOnPremToCloud],
		diagtest.W(pb.Status_FAIL, "the agent runs, so the path is what is broken"))
	// The cloud side is still reported, from the log.
	diagtest.Expect(t, res[path.CheckCloudToOnPrem],
		diagtest.W(pb.Status_PASS, "via pods/log"), diagtest.W(pb.Status_WARN, "nothing listens on"), diagtest.W(pb.Status_FAIL, "TCP timed out"))
	diagtest.Expect(t, res[vnode.CheckAgent], diagtest.W(pb.Status_PASS, "(via pods/log)"))
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud],
		diagtest.W(pb.Status_PASS, "via pods/log"), diagtest.W(pb.Status_PASS, "via pods/log"))

	if err := l.RestoreDirect(); err != nil {
		t.Fatal(err)
	}
	res = runChecks(t, l, l.AgentConfig())
	diagtest.Expect(t, res[path.CheckOnPremToCloud], diagtest.W(pb.Status_PASS, "ProbeService answered"))
}

// TestRefusedAndBlackholedTargets: a closed on-prem port answers with a RST
// (the path works: WARN), a black-holed address answers nothing (FAIL).
func TestRefusedAndBlackholedTargets(t *testing.T) {
	l := startLab(t, vnodelab.Options{})
	res := runChecks(t, l, l.AgentConfig())
	diagtest.Expect(t, res[path.CheckCloudToOnPrem],
		diagtest.W(pb.Status_PASS, "connects to postgres"),
		diagtest.W(pb.Status_WARN, "the path from the cloud works (a RST came back), nothing listens on "+l.Targets[vnodelab.TargetRefused]),
		diagtest.W(pb.Status_FAIL, "gets no answer from blackholed-db ("+l.Targets[vnodelab.TargetBlackholed]+") (TCP timed out"))
}

// TestStaleLog: the agent hangs (SIGSTOP): its pod stays Running and Ready
// in the API server, its log stops. Older than agent.maxAge, the newest
// round is reported as stale and not used.
func TestStaleLog(t *testing.T) {
	l := startLab(t, vnodelab.Options{})
	cfg := l.AgentConfig()
	cfg.MaxAge = diag.Duration(time.Second)
	if err := l.PauseAgent(true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.PauseAgent(false) }()
	time.Sleep(1500 * time.Millisecond)
	res := runChecks(t, l, cfg)
	diagtest.Expect(t, res[vnode.CheckAgent], diagtest.W(pb.Status_FAIL, "older than agent.maxAge 1s: stale results are not used"))
	diagtest.Expect(t, res[path.CheckCloudToOnPrem], diagtest.W(pb.Status_ERROR, "no fresh round"))
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud], diagtest.W(pb.Status_ERROR, "no fresh round"))
	// The hung agent still completes TCP handshakes (the kernel does), but
	// ProbeService does not answer.
	diagtest.Expect(t, res[path.CheckOnPremToCloud], diagtest.W(pb.Status_WARN, "ProbeService did not answer"))
}

// TestMissingForwardingRule: the VPC DNS (dnsmasq) has no forwarding rule
// for the on-prem zone. The pod's resolv.conf path still resolves; the VPC
// DNS path FAILs, named, with the rule to add.
func TestMissingForwardingRule(t *testing.T) {
	l := startLab(t, vnodelab.Options{DNS: dnslab.Options{NoCloudForward: true}, Targets: []string{vnodelab.TargetOpen}})
	res := runChecks(t, l, l.AgentConfig())
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud],
		diagtest.W(pb.Status_PASS, "resolver resolv.conf"),
		diagtest.W(pb.Status_FAIL, "resolver VPC DNS ("+l.DNS.CloudAddr+") answers REFUSED for db.corp.example A"))
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud][1:], diagtest.W(pb.Status_FAIL, "PrivateZone forwarding rule"))
	// The PrivateZone itself still resolves inside the VPC: the fault is
	// the forwarding rule, not the zone.
	diagtest.Expect(t, res[dnsprobe.CheckResolverReachable],
		diagtest.W(pb.Status_PASS, "resolver resolv.conf"), diagtest.W(pb.Status_PASS, "resolver VPC DNS"))
}

// TestReadsWithOnlyListAndLogs attacks the source's permissions: as a user
// who may only list pods in the agents' namespace and get pods/log (the
// Role of deploy/kubernetes/rbac.yaml), the source reads everything;
// without the pods/log grant the log path fails and is reported, the rest
// of the run goes on.
func TestReadsWithOnlyListAndLogs(t *testing.T) {
	l := startLab(t, vnodelab.Options{Targets: []string{vnodelab.TargetOpen}})
	ctx := context.Background()
	cs := l.Kube.Client
	role := readRole(t)
	if _, err := cs.RbacV1().Roles(l.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "list-pods", Namespace: l.Namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}}
	if _, err := cs.RbacV1().Roles(l.Namespace).Create(ctx, list, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(user, roleName string) {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user + "-" + roleName, Namespace: l.Namespace},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: roleName},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: user}}}
		if _, err := cs.RbacV1().RoleBindings(l.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind("reader", "list-pods")
	bind("reader", role.Name)
	bind("no-logs", "list-pods")

	read := func(user string) *agent.Agent {
		rc, err := l.Kube.UserConfig(user)
		if err != nil {
			t.Fatal(err)
		}
		return gather(t, kubernetes.NewForConfigOrDie(rc), l.AgentConfig()).Agents[0]
	}
	a := read("reader")
	if a.Log.Err != "" || a.Log.Round == nil || a.Direct.Round == nil {
		t.Errorf("reader: log %+v, direct %+v", a.Log, a.Direct)
	}
	a = read("no-logs")
	if !strings.Contains(a.Log.Err, "forbidden") || !strings.Contains(a.Log.Err, "pods/log") || a.Direct.Round == nil {
		t.Errorf("without pods/log: log %+v, direct %+v", a.Log, a.Direct)
	}
}

// readRole is the Role of deploy/kubernetes/rbac.yaml; it must grant
// get on pods/log and nothing else.
func readRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	objs, err := kubelab.ReadManifests(vnodelab.RepoFile("deploy/kubernetes/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	roles := kubelab.ObjectsOf[*rbacv1.Role](objs)
	if len(roles) != 1 {
		t.Fatalf("rbac.yaml has %d Roles, want 1", len(roles))
	}
	r := roles[0]
	if len(r.Rules) != 1 || strings.Join(r.Rules[0].Resources, ",") != "pods/log" || strings.Join(r.Rules[0].Verbs, ",") != "get" {
		t.Fatalf("the Role of rbac.yaml grants %v; want get on pods/log only", r.Rules)
	}
	return r
}

// TestDemo runs the demo's lab VNode as `make demo` does (an API server
// without kubelet flags: the VNode's certificate is not verified) and
// expects its faults.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no lab VNode")
	}
	kl := kubelab.StartT(t)
	cfg, stop, err := vnodelab.StartDemo(kl, vnodelab.SelfExec)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	l := &vnodelab.Lab{Kube: kl}
	if a := gather(t, kl.Client, cfg).Agents[0]; a.Log.Err != "" || a.Log.Round == nil {
		t.Errorf("pods/log without the kubelet PKI: %+v", a.Log)
	}
	res := runChecks(t, l, cfg)
	diagtest.Expect(t, res[dnsprobe.CheckOnPremFromCloud],
		diagtest.W(pb.Status_PASS, "resolver resolv.conf"), diagtest.W(pb.Status_FAIL, "resolver VPC DNS"))
	diagtest.Expect(t, res[path.CheckCloudToOnPrem],
		diagtest.W(pb.Status_PASS, "postgres"), diagtest.W(pb.Status_WARN, "refuses"), diagtest.W(pb.Status_FAIL, "blackholed-db"))
	diagtest.Expect(t, res[vnode.CheckAgent], diagtest.W(pb.Status_PASS, "vnode-lab-cn-shanghai-l"))
}
