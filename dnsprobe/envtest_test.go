package dnsprobe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/hostlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestCoreDNSConfigMapAPIServer reads the CoreDNS ConfigMap from a real API
// server (envtest) through the kube source, good and bad.
func TestCoreDNSConfigMapAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server")
	}
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &dnsprobe.Config{
		OnPremResolvers: []dnsprobe.Resolver{{Name: "dc1", Address: "10.0.0.53"}},
		PrivateZones:    []string{"svc.cloud.internal"},
		OnPremZones:     []string{"corp.example"},
		Forwarders:      []dnsprobe.Forwarder{{Zone: "svc.cloud.internal", Targets: []string{"10.1.0.10"}}},
	}
	provider, err := kube.ForRESTConfig(&kube.Config{}, lab.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]diag.Check{}
	for _, c := range dnsprobe.Checks() {
		checks[c.ID] = c
	}
	run := func(t *testing.T, id string, more ...diag.Binding) []*pb.Result {
		t.Helper()
		snap := diagtest.GatherAs(t, ctx, provider, kube.Source)
		// The DNS observations hold only the configuration: these checks
		// read no query outcome.
		in := diag.NewInputs(append([]diag.Binding{kube.Source.With(snap), dnsprobe.Source.With(&dnsprobe.Observations{Config: dnsprobe.Canonical(cfg)})}, more...)...)
		rs := checks[id].Run(ctx, in)
		for _, r := range rs {
			t.Logf("%s %s %s", id, r.Status, r.Summary)
		}
		return rs
	}
	statuses := func(rs []*pb.Result) string { return strings.ReplaceAll(diagtest.StatusNames(rs), ",", " ") }
	cms := lab.Client.CoreV1().ConfigMaps("kube-system")
	set := func(t *testing.T, corefile string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Data: map[string]string{"Corefile": corefile}}
		if _, err := cms.Get(ctx, "coredns", metav1.GetOptions{}); err != nil {
			if err := lab.Apply(ctx, cm); err != nil {
				t.Fatal(err)
			}
			return
		}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("no ConfigMap", func(t *testing.T) {
		if got := statuses(run(t, dnsprobe.CheckCoreDNSForward)); got != "SKIP" {
			t.Errorf("coredns-forward: %s, want SKIP", got)
		}
		if got := statuses(run(t, dnsprobe.CheckClusterDomainOverlap)); got != "PASS" {
			t.Errorf("cluster-domain-overlap: %s, want PASS (default cluster.local)", got)
		}
	})
	t.Run("good", func(t *testing.T) {
		set(t, `corp.example:53 {
    errors
    forward . 10.0.0.53
}
svc.cloud.internal:53 {
    errors
    forward . 10.1.0.10
}
.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
`)
		if got := statuses(run(t, dnsprobe.CheckCoreDNSForward)); got != "PASS PASS" {
			t.Errorf("coredns-forward: %s, want PASS PASS", got)
		}
		if got := statuses(run(t, dnsprobe.CheckClusterDomainOverlap)); got != "PASS" {
			t.Errorf("cluster-domain-overlap: %s, want PASS", got)
		}
	})
	t.Run("bad: stanza missing, cluster domain overlaps", func(t *testing.T) {
		set(t, `.:53 {
    errors
    kubernetes corp.example in-addr.arpa ip6.arpa
    forward . 8.8.8.8
}
`)
		rs := run(t, dnsprobe.CheckCoreDNSForward)
		if got := statuses(rs); got != "FAIL FAIL" {
			t.Errorf("coredns-forward: %s, want FAIL FAIL", got)
		}
		if !strings.Contains(rs[1].Remediation, "svc.cloud.internal:53 {\n    errors\n    cache 30\n    forward . 10.1.0.10:53\n}") {
			t.Errorf("remediation lacks the block to add:\n%s", rs[1].Remediation)
		}
		rs = run(t, dnsprobe.CheckClusterDomainOverlap)
		if got := statuses(rs); got != "FAIL" || !strings.Contains(rs[0].Summary, "equals the on-prem zone corp.example") {
			t.Errorf("cluster-domain-overlap: %s %v, want FAIL equals", got, rs)
		}
	})
	t.Run("resolv.conf judged with the node's resolvers", func(t *testing.T) {
		set(t, ".:53 {\n    errors\n    kubernetes cluster.local\n    forward . /etc/resolv.conf\n}\n")
		if got := statuses(run(t, dnsprobe.CheckCoreDNSForward)); got != "WARN WARN" {
			t.Errorf("without the host source: %s, want WARN WARN", got)
		}
		node := func(t *testing.T, n hostlab.Node) diag.Binding {
			dir := t.TempDir()
			if err := hostlab.Write(dir, n); err != nil {
				t.Fatal(err)
			}
			p, err := host.NewProvider(&host.Config{HostRoot: dir}, diag.Env{})
			if err != nil {
				t.Fatal(err)
			}
			return host.Source.With(diagtest.GatherAs(t, ctx, p, host.Source))
		}
		rs := run(t, dnsprobe.CheckCoreDNSForward, node(t, hostlab.Node{ResolvConf: "nameserver 10.0.0.53\n"}))
		if got := statuses(rs); got != "PASS PASS" ||
			!strings.HasPrefix(rs[0].Summary, "CoreDNS forwards on-prem zone corp.example to the node's resolv.conf, which on this node lists 10.0.0.53:53, configured resolvers for it") {
			t.Errorf("good node: %s\n%s", got, diagtest.Dump(rs))
		}
		// The kubelet hands pods systemd-resolved's stub: CoreDNS would ask itself.
		rs = run(t, dnsprobe.CheckCoreDNSForward, node(t, hostlab.Node{Stub: true, ResolvConf: "nameserver 127.0.0.53\n", Upstream: "nameserver 10.0.0.53\n",
			KubeletConfig: "kind: KubeletConfiguration\nresolvConf: /etc/resolv.conf\n"}))
		if got := statuses(rs); got != "FAIL FAIL" || !strings.Contains(rs[0].Summary, "which on this node lists 127.0.0.53:53, not a configured resolver for it (see host.resolv-conf)") {
			t.Errorf("stub node: %s\n%s", got, diagtest.Dump(rs))
		}
	})
	t.Run("unparseable", func(t *testing.T) {
		set(t, ".:53 {\n    errors\n    forward . 10.0.0.53 {\n        max_fails 1\n}\n")
		for _, id := range []string{dnsprobe.CheckCoreDNSForward, dnsprobe.CheckClusterDomainOverlap} {
			rs := run(t, id)
			if got := statuses(rs); got != "ERROR" || !strings.Contains(rs[0].Summary, "line 1: '{' is never closed") {
				t.Errorf("%s: %s %v, want ERROR with the line", id, got, rs)
			}
		}
	})
}
