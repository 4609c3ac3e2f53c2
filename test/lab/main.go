// Command lab is `make demo`: it starts a local lab (a real kube-apiserver
// loaded with a hybrid cluster, a local Alibaba Cloud OpenAPI endpoint
// serving its cloud account, plus the BGP and DNS labs and a lab VNode
// running the cloud-side agent where the machine allows network
// namespaces), writes a vnodediag config for it, runs
// `vnodediag diagnose` against it, prints the report and cleans up.
// Every lab component has deliberate faults; see README.md beside this file.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/test/bgplab"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/dnslab"
	"github.com/vnodediag/vnodediag/test/hostlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
	"github.com/vnodediag/vnodediag/test/netlab"
	"github.com/vnodediag/vnodediag/test/vnodelab"
)

func main() {
	keep := flag.Bool("keep", false, "keep the lab running after the report until Ctrl-C (prints the kubeconfig path)")
	output := flag.String("o", "table", "output format passed to vnodediag diagnose")
	flag.Parse()
	bin := flag.Arg(0)
	if bin == "" {
		bin = "bin/vnodediag"
	}
	os.Exit(run(bin, *output, *keep))
}

func run(bin, output string, keep bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintln(os.Stderr, "lab: starting kube-apiserver and etcd ...")
	lab, err := kubelab.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer lab.Stop()
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := lab.Apply(actx, clusterObjects()...); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}

	dir, err := os.MkdirTemp("", "vnodediag-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg := map[string]any{
		"kubernetes": map[string]any{"kubeconfig": lab.Kubeconfig},
	}
	hostCfg, err := hostNode(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	cfg["host"] = hostCfg
	cleanups, extra, err := startNetworkLabs(cfg, lab, bin)
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	cloudEnv, stopCloud, err := startCloudLab(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer stopCloud()
	if err := lab.Apply(actx, extra...); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}

	cfgPath := filepath.Join(dir, "vnodediag.yaml")
	b, err := yaml.Marshal(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "lab: ready; running %s diagnose --config <lab config>\n\n", bin)
	code, err := diagnose(ctx, bin, cloudEnv, "--config", cfgPath, "-o", output)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "\nlab: vnodediag exited %d (1 is expected: the lab has deliberate faults)\n", code)
	legacyCode, err := runLegacy(ctx, bin, output)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	if keep {
		fmt.Fprintf(os.Stderr, "lab: kept running; config %s, kubeconfig %s; Ctrl-C to stop\n", cfgPath, lab.Kubeconfig)
		<-ctx.Done()
	}
	if code != 1 || legacyCode != 1 {
		return 1
	}
	return 0
}

// runLegacy is the demo's second cluster: a real kube-apiserver v1.15.12,
// too old for label-based VNode scheduling, the fault of vnode.k8s-version.
// It returns the exit code of diagnose.
func runLegacy(ctx context.Context, bin, output string) (int, error) {
	fmt.Fprintf(os.Stderr, "\nlab: second cluster: starting a real kube-apiserver %s (legacy control plane) ...\n", kubelab.LegacyVersion)
	lab, err := kubelab.StartLegacy()
	if err != nil {
		return 0, err
	}
	defer lab.Stop()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := lab.Apply(actx, kubelab.LegacyCluster()...); err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "lab: ready; running %s diagnose --kubeconfig <legacy kubeconfig> --only vnode\n\n", bin)
	code, err := diagnose(ctx, bin, nil, "--kubeconfig", lab.Kubeconfig, "--only", "vnode", "-o", output)
	if err == nil {
		fmt.Fprintf(os.Stderr, "\nlab: vnodediag exited %d (1 is expected: vnode.k8s-version fails on %s)\n", code, kubelab.LegacyVersion)
	}
	return code, err
}

// diagnose runs `bin diagnose args...` with the lab's terminal and env
// added to the environment, and returns its exit code.
func diagnose(ctx context.Context, bin string, env []string, args ...string) (int, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"diagnose"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// clusterObjects is the demo cluster: the k8s.* faults of
// kubelab.HybridCluster plus the parts later sections add. There is one
// eci-profile: the FAQ scenario's (its selector fault kept), naming the
// cloud account's VPC, ECI group and vSwitches.
func clusterObjects() []any {
	_, cloud := cloudlab.Demo()
	faq := kubelab.FAQScenario()
	for _, o := range faq {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Namespace == "kube-system" && cm.Name == "eci-profile" {
			cm.Data["vpcId"] = cloud.VPCID
			cm.Data["securityGroupId"] = cloud.ECISecurityGroup
			cm.Data["vSwitchIds"] = strings.Join(cloud.ECIVSwitches, ",")
		}
	}
	return slices.Concat(kubelab.HybridCluster(), kubelab.VNodeScenario(), faq)
}

// demoLeasedLine is the leased-line interface of the demo's node.
const demoLeasedLine = "leased0"

// hostNode writes the demo's node (one fault per host.* check) under dir
// and returns the host section that points at it. It needs no root: the
// node is files, as a pod sees the node's under its hostRoot.
func hostNode(dir string) (map[string]any, error) {
	root := filepath.Join(dir, "node")
	if err := hostlab.Write(root, hostlab.DemoNode(demoLeasedLine)); err != nil {
		return nil, err
	}
	return map[string]any{
		"hostRoot":            root,
		"leasedLineInterface": demoLeasedLine,
		"leasedLineCIDRs":     []string{"192.168.0.0/16", "100.64.0.0/10"},
	}, nil
}

// startCloudLab starts the local Alibaba Cloud endpoint with the demo's
// account (cloudlab.Demo, matching kubelab.HybridCluster) and adds the
// cloud section for it to cfg. It returns the environment diagnose needs:
// the lab's AccessKey as the first step of the credential chain, and the
// metadata-service step off (its address is outside this machine).
//
// With the DNS lab running, the account's PrivateZone side points at it:
// the inbound endpoint answers on the address on-prem forwards the
// PrivateZone zones to (dnsmasq), and the corp.example rule forwards to the
// on-prem resolver (unbound).
func startCloudLab(cfg map[string]any) (env []string, stop func(), err error) {
	fmt.Fprintln(os.Stderr, "lab: starting the local Alibaba Cloud OpenAPI endpoint (ECS, VPC, PrivateZone) ...")
	data, spec := cloudlab.Demo()
	if d, ok := cfg["dns"].(*dnsprobe.Config); ok {
		data.SetDemoDNS(hosts(d.CloudResolvers), hosts(d.OnPremResolvers))
	}
	srv, err := cloudlab.Start(data)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud lab: %w", err)
	}
	cfg["cloud"] = map[string]any{
		"regionId":    spec.Region,
		"onPremCIDRs": spec.OnPremCIDRs,
		"qps":         -1,
		"endpoints":   srv.Endpoints(),
	}
	k := srv.Key()
	env = []string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + k.ID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + k.Secret,
		"ALIBABA_CLOUD_SECURITY_TOKEN=",
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
	}
	return env, srv.Close, nil
}

// hosts are the resolvers' addresses without their port.
func hosts(rs []dnsprobe.Resolver) []string {
	var out []string
	for _, r := range rs {
		if h, _, err := net.SplitHostPort(r.Address); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// startNetworkLabs adds the BGP and DNS labs and the lab VNode with its
// agent to cfg where the machine can make network namespaces (root), and
// returns their cleanups and the Kubernetes objects that describe them
// (the CoreDNS ConfigMap).
func startNetworkLabs(cfg map[string]any, kl *kubelab.Lab, bin string) (cleanups []func(), objs []any, err error) {
	if why := netlab.Available(); why != "" {
		fmt.Fprintf(os.Stderr, "lab: no BGP/DNS lab, no lab VNode (%s): their checks will SKIP\n", why)
		return nil, nil, nil
	}
	fmt.Fprintln(os.Stderr, "lab: starting unbound (on-prem DNS) and dnsmasq (PrivateZone) in network namespaces ...")
	dnsCfg, stopDNS, err := dnslab.Demo()
	if err != nil {
		return cleanups, nil, fmt.Errorf("dns lab: %w", err)
	}
	cleanups = append(cleanups, stopDNS)
	cfg["dns"] = dnsCfg
	objs = append(objs, dnslab.CoreDNSConfigMap(dnsCfg))

	fmt.Fprintln(os.Stderr, "lab: starting BIRD (on-prem router) and FRR (VBR) in network namespaces ...")
	_, cloud := cloudlab.Demo()
	bgpCfg, stopBGP, err := bgplab.StartDemo(bgplab.DemoOptions{PodCIDRs: onPremPodCIDRs("dc-3"), ECSPodCIDRs: routedECSPodCIDRs(), OnPremNetworks: cloud.OnPremCIDRs})
	if err != nil {
		return cleanups, objs, fmt.Errorf("bgp lab: %w", err)
	}
	cleanups = append(cleanups, stopBGP)
	cfg["bgp"] = bgpCfg

	fmt.Fprintln(os.Stderr, "lab: starting a lab VNode (virtual-kubelet) running `vnodediag agent` in a network namespace ...")
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return cleanups, objs, err
	}
	agentCfg, stopAgent, err := vnodelab.StartDemo(kl, vnodelab.BinaryExec(absBin))
	if err != nil {
		return cleanups, objs, fmt.Errorf("vnode lab: %w", err)
	}
	cleanups = append(cleanups, stopAgent)
	cfg["agent"] = agentCfg
	return cleanups, objs, nil
}

// onPremPodCIDRs lists the demo's on-prem podCIDRs with the one of node
// missing last: the BGP lab's router advertises all but the last, so
// bgp.podcidr-advertised must name that node.
func onPremPodCIDRs(missing string) []string {
	var cidrs []string
	last := ""
	seen := map[string]bool{}
	for _, o := range clusterObjects() {
		n, ok := o.(*corev1.Node)
		if !ok || kube.Classify(n).Class != kube.ClassOnPrem || n.Spec.PodCIDR == "" {
			continue
		}
		if n.Name == missing {
			last = n.Spec.PodCIDR
			continue
		}
		if !seen[n.Spec.PodCIDR] {
			seen[n.Spec.PodCIDR] = true
			cidrs = append(cidrs, n.Spec.PodCIDR)
		}
	}
	return append(cidrs, last)
}

// routedECSPodCIDRs are the podCIDRs of the ECS nodes whose route the cloud
// controller manager created (no NetworkUnavailable=True): what the VPC
// route table, and so the VBR, carries. ecs-bad-2's is missing, which
// bgp.cloud-routes-learned must name.
func routedECSPodCIDRs() []string {
	var cidrs []string
	for _, o := range clusterObjects() {
		n, ok := o.(*corev1.Node)
		if !ok || kube.Classify(n).Class != kube.ClassECS {
			continue
		}
		routed := true
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue {
				routed = false
			}
		}
		if routed {
			cidrs = append(cidrs, kube.PodCIDRStrings(n)...)
		}
	}
	return cidrs
}
