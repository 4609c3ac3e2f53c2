package vnodelab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/agent/probe"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/test/dnslab"
	"github.com/vnodediag/vnodediag/test/kubelab"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// The lab's on-prem targets, as named in the agent's plan.
const (
	TargetOpen       = "postgres"      // a listener in the on-prem namespace: connected
	TargetRefused    = "stopped-svc"   // a closed port there: refused
	TargetBlackholed = "blackholed-db" // routed toward on-prem, dropped there: timed out
)

// MetadataAddr is the ECI MetaServer's address, on the "ECI" namespace's
// loopback, so the agent's default metadata URL works unchanged.
const MetadataAddr = "100.100.100.200"

// blackholeNet is routed from the cloud namespace to the on-prem one, which
// does not forward: a SYN there vanishes.
var blackholeNet = netip.MustParsePrefix("10.255.99.0/24")

// Options shape a lab.
type Options struct {
	// Exec runs the agent's image (SelfExec in tests, BinaryExec for the
	// demo); required.
	Exec Exec
	// Kube is an API server to use; nil starts one with the kubelet PKI
	// flags, so the API server verifies the VNode and authenticates to it.
	Kube *kubelab.Lab
	// DNS shapes the resolvers: NoCloudForward is a missing PrivateZone
	// forwarding rule (dnsmasq without the on-prem zone).
	DNS dnslab.Options
	// Targets are the on-prem targets of the plan (default all three).
	Targets []string
	// ExtraNames are added to the plan, and ExtraOpenTargets more targets
	// on the on-prem service (benchmarks).
	ExtraNames       []dnsprobe.Name
	ExtraOpenTargets int
	// Interval of the agent's rounds (default 2s); the deadlines of its
	// probes (default 1s).
	Interval, Timeout time.Duration
	// NodeName of the VNode (default vnode-lab).
	NodeName string
}

// Lab is a running lab: a real kube-apiserver, the DNS lab's on-prem
// (unbound) and cloud (dnsmasq) namespaces, a virtual-kubelet VNode whose
// pods run in the cloud namespace, and the agent pod of deploy/agent on it.
type Lab struct {
	Kube *kubelab.Lab
	DNS  *dnslab.Lab
	Node *Node
	// Namespace and Pod of the agent.
	Namespace, Pod string
	// Targets by name: ip:port.
	Targets map[string]string
	// PodIP is the agent's pod IP (the cloud namespace's address).
	PodIP string

	dir     string
	ownKube bool
	closers []func()
}

// Start starts a lab; Close it when done. Needs root (namespaces), unbound,
// dnsmasq and the envtest assets.
func Start(ctx context.Context, opts Options) (_ *Lab, err error) {
	if opts.Exec == nil {
		return nil, errors.New("vnodelab: Options.Exec is required")
	}
	if why := netlab.Available(); why != "" {
		return nil, errors.New("vnodelab: " + why)
	}
	l := &Lab{Namespace: "vnodediag", Targets: map[string]string{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.dir, err = os.MkdirTemp("", "vnodediag-vnodelab-"); err != nil {
		return nil, err
	}
	var pki *PKI
	l.Kube = opts.Kube
	if l.Kube == nil {
		if pki, err = NewPKI(l.dir); err != nil {
			return nil, err
		}
		if l.Kube, err = kubelab.StartWith(pki.APIServerFlags()); err != nil {
			return nil, err
		}
		l.ownKube = true
	}
	if l.DNS, err = dnslab.Start(opts.DNS); err != nil {
		return nil, err
	}
	cloud, onprem := l.DNS.Cloud, l.DNS.OnPrem
	l.PodIP = cloud.HostAddr.String()
	if err := l.startTargets(); err != nil {
		return nil, err
	}
	if err := l.startMetadata(); err != nil {
		return nil, err
	}
	resolv := filepath.Join(l.dir, "resolv.conf")
	// The pod's resolver: the on-prem DNS stands in for the cluster DNS a
	// ClusterFirst pod is given, which resolves on-prem names.
	if err := os.WriteFile(resolv, []byte("nameserver "+onprem.HostAddr.String()+"\noptions ndots:5\n"), 0o644); err != nil {
		return nil, err
	}
	name := opts.NodeName
	if name == "" {
		name = "vnode-lab"
	}
	nodeDir, err := ensureDir(l.dir, "node")
	if err != nil {
		return nil, err
	}
	if l.Node, err = StartNode(ctx, l.Kube.Client, NodeConfig{Name: name, Host: cloud, Exec: opts.Exec, PKI: pki, Dir: nodeDir}); err != nil {
		return nil, err
	}
	plan, err := l.plan(opts, resolv)
	if err != nil {
		return nil, err
	}
	if err := l.deployAgent(ctx, plan); err != nil {
		return nil, err
	}
	return l, nil
}

// StartT starts a lab for one test and closes it at the end; the test is
// skipped where namespaces or the daemons are missing.
func StartT(t testing.TB, opts Options) *Lab {
	t.Helper()
	if why := netlab.Available(); why != "" {
		t.Skipf("vnodelab: %s", why)
	}
	for _, bin := range []string{"unbound", "dnsmasq"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("vnodelab: %s not installed", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("vnodelab: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// startTargets opens the on-prem service, picks a closed port beside it and
// routes the black hole.
func (l *Lab) startTargets() error {
	onprem, cloud := l.DNS.OnPrem, l.DNS.Cloud
	lis, err := listenIn(onprem.Name, netip.AddrPortFrom(onprem.HostAddr, 5432).String())
	if err != nil {
		return fmt.Errorf("vnodelab: on-prem service: %w", err)
	}
	l.closers = append(l.closers, func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l.Targets[TargetOpen] = lis.Addr().String()
	l.Targets[TargetRefused] = netip.AddrPortFrom(onprem.HostAddr, 5433).String()
	// The cloud namespace reaches on-prem over the hosts' direct link; send
	// the black hole the same way.
	out, err := cloud.Run("ip", "-4", "route", "get", onprem.HostAddr.String())
	if err != nil {
		return fmt.Errorf("vnodelab: %w", err)
	}
	f := strings.Fields(out)
	via, dev := "", ""
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "via":
			via = f[i+1]
		case "dev":
			dev = f[i+1]
		}
	}
	if via == "" || dev == "" {
		return fmt.Errorf("vnodelab: no route from %s to the on-prem host: %s", cloud.Name, out)
	}
	if _, err := cloud.Run("ip", "route", "add", blackholeNet.String(), "via", via, "dev", dev); err != nil {
		return fmt.Errorf("vnodelab: %w", err)
	}
	l.Targets[TargetBlackholed] = netip.AddrPortFrom(blackholeNet.Addr().Next(), 5432).String()
	return nil
}

// Metadata is what the lab's MetaServer answers.
var Metadata = map[string]string{
	"instance-id": "eci-uf6lab0vnode0agent01", "hostname": "vnodediag-agent", "region-id": "cn-shanghai",
	"zone-id": "cn-shanghai-l", "vpc-id": "vpc-uf6lab0000000000000001", "vswitch-id": "vsw-uf6lab0000000000000001",
}

// startMetadata serves the MetaServer at 100.100.100.200:80 inside the
// cloud namespace.
func (l *Lab) startMetadata() error {
	cloud := l.DNS.Cloud
	if _, err := cloud.Run("ip", "addr", "add", MetadataAddr+"/32", "dev", "lo"); err != nil {
		return fmt.Errorf("vnodelab: %w", err)
	}
	lis, err := listenIn(cloud.Name, MetadataAddr+":80")
	if err != nil {
		return fmt.Errorf("vnodelab: metadata: %w", err)
	}
	items := map[string]string{"private-ipv4": cloud.HostAddr.String()}
	for k, v := range Metadata {
		items[k] = v
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := items[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, v)
	})}
	go func() { _ = srv.Serve(lis) }()
	l.closers = append(l.closers, func() { srv.Close() })
	return nil
}

// plan is the agent's ConfigMap plan for this lab.
func (l *Lab) plan(opts Options, resolvConf string) (*probe.Config, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	interval := opts.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	c := &probe.Config{
		Interval: diag.Duration(interval),
		DNS: probe.DNSConfig{
			ResolvConf:      resolvConf,
			VPCResolvers:    []string{l.DNS.CloudAddr},
			OnPremResolvers: []string{l.DNS.OnPremAddr},
			OnPremZones:     []string{dnslab.OnPremZone},
			PrivateZones:    []string{dnslab.PrivateZone},
			Names: append([]dnsprobe.Name{
				{Name: "db." + dnslab.OnPremZone, Expect: []string{dnslab.OnPremA["db."+dnslab.OnPremZone]}},
				{Name: "api." + dnslab.PrivateZone, Expect: []string{dnslab.PrivateA["api."+dnslab.PrivateZone]}},
			}, opts.ExtraNames...),
			Timeout: diag.Duration(timeout),
		},
		ConnectTimeout: diag.Duration(timeout),
		Metadata:       probe.MetadataConfig{Timeout: diag.Duration(timeout)},
	}
	targets := opts.Targets
	if targets == nil {
		targets = []string{TargetOpen, TargetRefused, TargetBlackholed}
	}
	for _, t := range targets {
		a, ok := l.Targets[t]
		if !ok {
			return nil, fmt.Errorf("vnodelab: no target %q", t)
		}
		c.Targets = append(c.Targets, probe.Target{Name: t, Address: a})
	}
	for i := 0; i < opts.ExtraOpenTargets; i++ {
		c.Targets = append(c.Targets, probe.Target{Name: fmt.Sprintf("%s-%d", TargetOpen, i+1), Address: l.Targets[TargetOpen]})
	}
	return c, c.Validate()
}

// deployAgent creates the objects of deploy/agent with the lab's plan, and
// the pod its Deployment would make, bound to the VNode; it waits until the
// pod is Ready and has written its first round.
func (l *Lab) deployAgent(ctx context.Context, plan *probe.Config) error {
	m, err := LoadManifests()
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(plan)
	if err != nil {
		return err
	}
	m.ConfigMap.Data["plan.yaml"] = string(b)
	cs := l.Kube.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: l.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := cs.CoreV1().ServiceAccounts(l.Namespace).Create(ctx, m.ServiceAccount, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := cs.CoreV1().ConfigMaps(l.Namespace).Create(ctx, m.ConfigMap, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := cs.AppsV1().Deployments(l.Namespace).Create(ctx, m.Deployment, metav1.CreateOptions{}); err != nil {
		return err
	}
	l.Pod = m.Deployment.Name + "-5d9c7b6f4-lab01"
	if _, err := cs.CoreV1().Pods(l.Namespace).Create(ctx, m.Pod(l.Pod, l.Node.Name), metav1.CreateOptions{}); err != nil {
		return err
	}
	return l.WaitAgent(ctx, 30*time.Second)
}

// WaitAgent waits until the agent pod is Ready in the API server and its
// log has a round.
func (l *Lab) WaitAgent(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		pod, err := l.Kube.Client.CoreV1().Pods(l.Namespace).Get(ctx, l.Pod, metav1.GetOptions{})
		ready := false
		if err == nil {
			for _, c := range pod.Status.Conditions {
				ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			}
		}
		logged := false
		if f, ferr := l.Node.LogFile(l.Namespace, l.Pod); ferr == nil {
			if b, rerr := os.ReadFile(f); rerr == nil {
				logged = strings.Contains(string(b), `"sequence"`)
			}
		}
		if ready && logged {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			log := ""
			if f, ferr := l.Node.LogFile(l.Namespace, l.Pod); ferr == nil {
				b, _ := os.ReadFile(f)
				log = string(b)
			}
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			var events []string
			if el, eerr := l.Kube.Client.CoreV1().Events(l.Namespace).List(ctx, metav1.ListOptions{}); eerr == nil {
				for _, e := range el.Items {
					events = append(events, e.Reason+": "+e.Message)
				}
			}
			return fmt.Errorf("vnodelab: agent %s/%s not Ready with a round within %s (ready %v, get error %v); events: %s; log: %s",
				l.Namespace, l.Pod, wait, ready, err, strings.Join(events, "; "), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// AgentConfig is the agent section vnodediag uses against this lab.
func (l *Lab) AgentConfig() *agent.Config {
	return &agent.Config{Namespace: l.Namespace, DialTimeout: diag.Duration(time.Second), RunTimeout: diag.Duration(10 * time.Second)}
}

// directLink is the cloud namespace's end of its link to the root
// namespace: the path vnodediag dials the pod IP over.
func (l *Lab) directLink() (string, error) {
	out, err := l.DNS.Cloud.Run("ip", "-4", "-o", "addr", "show", "to", l.PodIP+"/32")
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return "", fmt.Errorf("vnodelab: no interface with %s in %s", l.PodIP, l.DNS.Cloud.Name)
	}
	return strings.SplitN(f[1], "@", 2)[0], nil
}

// CutDirect sets the cloud end of the root link down: packets from this
// host to the pod IP are dropped (a timeout, not an error), while the pod
// keeps its address, reaches on-prem over the other link, and its logs
// still flow through the VNode.
func (l *Lab) CutDirect() error { return l.setDirect("down") }

// RestoreDirect sets it up again and waits (at most 5 s) until this host
// reaches the agent's port: the link needs a moment to carry again.
func (l *Lab) RestoreDirect() error {
	if err := l.setDirect("up"); err != nil {
		return err
	}
	addr := net.JoinHostPort(l.PodIP, strconv.Itoa(probe.DefaultPort))
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vnodelab: %s not reachable 5s after the link came back: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *Lab) setDirect(state string) error {
	dev, err := l.directLink()
	if err != nil {
		return err
	}
	_, err = l.DNS.Cloud.Run("ip", "link", "set", dev, state)
	return err
}

// PauseAgent stops (SIGSTOP) or continues the agent process: hung, its pod
// stays Running and its log goes stale.
func (l *Lab) PauseAgent(stop bool) error { return l.Node.Pause(l.Namespace, l.Pod, stop) }

// Close stops everything the lab started, by PID, and removes its
// namespaces and files.
func (l *Lab) Close() {
	if l.Node != nil {
		l.Node.Close()
	}
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
	if l.DNS != nil {
		l.DNS.Close()
	}
	if l.ownKube && l.Kube != nil {
		l.Kube.Stop()
	}
	if l.dir != "" {
		_ = os.RemoveAll(l.dir)
	}
}
