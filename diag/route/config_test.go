package route

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{LeasedLineGateway: "10.0.0.1"}, ""},
		{Config{LeasedLineInterface: "eth1", ProbeAddresses: []string{"100.100.2.136"}}, ""},
		{Config{}, "leasedLineGateway or leasedLineInterface must be set"},
		{Config{LeasedLineGateway: "gw"}, `leasedLineGateway: "gw" is not an IP address`},
		{Config{LeasedLineInterface: "a very long name"}, `leasedLineInterface: "a very long name" is not an interface name`},
		{Config{LeasedLineInterface: "eth1", ProbeAddresses: []string{"100.100.2.136/32"}}, `probeAddresses[0]: "100.100.2.136/32" is not an IP address`},
		{Config{LeasedLineGateway: "fe80::1%eth1"}, `leasedLineGateway: "fe80::1%eth1" has a zone: give the address without it ("fe80::1") and the interface as leasedLineInterface ("eth1")`},
		{Config{LeasedLineGateway: "fe80::1", LeasedLineInterface: "eth1"}, ""},
	}
	for _, tc := range cases {
		got := ""
		if err := tc.cfg.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%+v: Validate() = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }

func TestEvaluateCGNATOverlap(t *testing.T) {
	gw := netip.MustParseAddr("10.254.0.1")
	hr := &HostRoutes{Gateway: gw, Overlapping: []HostRoute{
		{Dst: cloudnet.CGNAT, Gateway: gw},
		{Dst: netip.MustParsePrefix("100.100.0.0/16"), Gateway: gw},
		{Dst: netip.MustParsePrefix("100.100.2.0/24"), Gateway: netip.MustParseAddr("192.0.2.254")},
		{Dst: netip.MustParsePrefix("100.0.0.0/8"), Gateway: netip.MustParseAddr("192.0.2.254")},
	}}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "op-1"}, Spec: corev1.NodeSpec{PodCIDR: "100.70.0.0/24"}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "100.80.0.5"}}
	ecs := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ecs-1"}, Spec: corev1.NodeSpec{ProviderID: "cn-shanghai.i-abcdefgh123", PodCIDR: "100.71.0.0/24"}}
	s := &kube.Snapshot{Nodes: []*corev1.Node{n, ecs}, ServiceCIDRs: []string{"10.96.0.0/12", "100.96.0.0/12"}}
	r := evalCGNATOverlap(s, hr)[0]
	var objs []string
	for _, o := range r.Objects {
		objs = append(objs, o.Kind+"/"+o.Name)
	}
	if r.Status != pb.Status_FAIL || strings.Join(objs, " ") != "Node/op-1 Node/op-1 Prefix/100.96.0.0/12 Route/100.100.2.0/24" {
		t.Fatalf("got %s %v", r.Status, objs)
	}
	clean := &kube.Snapshot{Nodes: []*corev1.Node{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "op-1"}, Spec: corev1.NodeSpec{PodCIDR: "172.23.0.0/26"}}}}
	if r := evalCGNATOverlap(clean, &HostRoutes{Gateway: gw}); r[0].Status != pb.Status_PASS {
		t.Fatalf("clean: %v", r[0])
	}
}
