package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/path"
	"github.com/vnodediag/vnodediag/diag/vnode"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/dnsprobe/dnslab"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
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
	expect(t, vnode.CheckAgent, res[vnode.CheckAgent], [2]string{"PASS", "on " + l.Node.Name + ": Ready, version dev"})
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud], [2]string{"PASS", "ProbeService answered"})
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem], [2]string{"PASS", "connects to postgres"})
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud],
		[2]string{"PASS", "resolver resolv.conf"}, [2]string{"PASS", "resolver VPC DNS"})
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
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud],
		[2]string{"FAIL", "TCP timed out"})
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud],
		[2]string{"FAIL", "the agent runs, so the path is what is broken"})
	// The cloud side is still reported, from the log.
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem],
		[2]string{"PASS", "via pods/log"}, [2]string{"WARN", "nothing listens on"}, [2]string{"FAIL", "TCP timed out"})
	expect(t, vnode.CheckAgent, res[vnode.CheckAgent], [2]string{"PASS", "(via pods/log)"})
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud],
		[2]string{"PASS", "via pods/log"}, [2]string{"PASS", "via pods/log"})

	if err := l.RestoreDirect(); err != nil {
		t.Fatal(err)
	}
	res = runChecks(t, l, l.AgentConfig())
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud], [2]string{"PASS", "ProbeService answered"})
}

// TestRefusedAndBlackholedTargets: a closed on-prem port answers with a RST
// (the path works: WARN), a black-holed address answers nothing (FAIL).
func TestRefusedAndBlackholedTargets(t *testing.T) {
	l := startLab(t, vnodelab.Options{})
	res := runChecks(t, l, l.AgentConfig())
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem],
		[2]string{"PASS", "connects to postgres"},
		[2]string{"WARN", "the path from the cloud works (a RST came back), nothing listens on " + l.Targets[vnodelab.TargetRefused]},
		[2]string{"FAIL", "gets no answer from blackholed-db (" + l.Targets[vnodelab.TargetBlackholed] + ") (TCP timed out"})
}

// TestStaleLog: the agent hangs (SIGSTOP): its pod stays Running and Ready
// in the API server, its log stops. Older than agent.maxAge, the newest
// round is reported as stale and not used.
func TestStaleLog(t *testing.T) {
	l := startLab(t, vnodelab.Options{})
	cfg := l.AgentConfig()
	cfg.MaxAge = agent.Duration(time.Second)
	if err := l.PauseAgent(true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.PauseAgent(false) }()
	time.Sleep(1500 * time.Millisecond)
	res := runChecks(t, l, cfg)
	expect(t, vnode.CheckAgent, res[vnode.CheckAgent], [2]string{"FAIL", "older than agent.maxAge 1s: stale results are not used"})
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem], [2]string{"ERROR", "no fresh round"})
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud], [2]string{"ERROR", "no fresh round"})
	// The hung agent still completes TCP handshakes (the kernel does), but
	// ProbeService does not answer.
	expect(t, path.CheckOnPremToCloud, res[path.CheckOnPremToCloud], [2]string{"WARN", "ProbeService did not answer"})
}

// TestMissingForwardingRule: the VPC DNS (dnsmasq) has no forwarding rule
// for the on-prem zone. The pod's resolv.conf path still resolves; the VPC
// DNS path FAILs, named, with the rule to add.
func TestMissingForwardingRule(t *testing.T) {
	l := startLab(t, vnodelab.Options{DNS: dnslab.Options{NoCloudForward: true}, Targets: []string{vnodelab.TargetOpen}})
	res := runChecks(t, l, l.AgentConfig())
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud],
		[2]string{"PASS", "resolver resolv.conf"},
		[2]string{"FAIL", "resolver VPC DNS (" + l.DNS.CloudAddr + ") answers REFUSED for db.corp.example A"})
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud][1:], [2]string{"FAIL", "PrivateZone forwarding rule"})
}

// TestReadsWithOnlyListAndLogs attacks the source's permissions: as a user
// who may only list pods in the agents' namespace and get pods/log (the
// role of deploy/kubernetes/rbac-agent.yaml), the source reads everything;
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
		p, err := agent.NewProvider(l.AgentConfig(), nil, agent.WithPods(agent.KubePods(kubernetes.NewForConfigOrDie(rc))))
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Gather(ctx)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		return v.(*agent.Snapshot).Agents[0]
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

// readRole is the Role of deploy/kubernetes/rbac-agent.yaml; it must grant
// get on pods/log and nothing else.
func readRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	b, err := os.ReadFile("../../deploy/kubernetes/rbac-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != "Role" {
			continue
		}
		r := &rbacv1.Role{}
		if err := yaml.UnmarshalStrict([]byte(doc), r); err != nil {
			t.Fatal(err)
		}
		if len(r.Rules) != 1 || strings.Join(r.Rules[0].Resources, ",") != "pods/log" || strings.Join(r.Rules[0].Verbs, ",") != "get" {
			t.Fatalf("rbac-agent.yaml grants %v; want get on pods/log only", r.Rules)
		}
		return r
	}
	t.Fatal("rbac-agent.yaml has no Role")
	return nil
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
	if a := gather(t, l, cfg).Agents[0]; a.Log.Err != "" || a.Log.Round == nil {
		t.Errorf("pods/log without the kubelet PKI: %+v", a.Log)
	}
	res := runChecks(t, l, cfg)
	expect(t, dnsprobe.IDOnPremFromCloud, res[dnsprobe.IDOnPremFromCloud],
		[2]string{"PASS", "resolver resolv.conf"}, [2]string{"FAIL", "resolver VPC DNS"})
	expect(t, path.CheckCloudToOnPrem, res[path.CheckCloudToOnPrem],
		[2]string{"PASS", "postgres"}, [2]string{"WARN", "refuses"}, [2]string{"FAIL", "blackholed-db"})
	expect(t, vnode.CheckAgent, res[vnode.CheckAgent], [2]string{"PASS", "vnode-lab-cn-shanghai-l"})
}
