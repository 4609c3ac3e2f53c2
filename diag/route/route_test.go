package route

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// routeHost is a namespace whose leased line is the veth toward the root
// namespace and whose default route goes out of a dummy interface.
func routeHost(t *testing.T, routes ...[]string) (*netlab.Host, *HostRoutes) {
	t.Helper()
	h := routeNetns(t, routes...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h, diagtest.GatherAs(t, ctx, routeProvider(t, h), Source)
}

// routeNetns is routeHost's namespace, its routes set up, not yet read.
func routeNetns(t *testing.T, routes ...[]string) *netlab.Host {
	t.Helper()
	h := netlab.NewHostT(t, "rt")
	steps := [][]string{
		{"link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1"},
		{"link", "set", "uplink1", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "uplink0"},
		{"link", "set", "uplink0", "up"},
		{"route", "add", "default", "via", "192.0.2.254"},
	}
	for _, s := range append(steps, routes...) {
		for i := range s {
			if s[i] == leasedGW {
				s[i] = h.RootAddr.String()
			}
		}
		if _, err := h.Run("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// routeProvider is the route source of h's namespace.
func routeProvider(t *testing.T, h *netlab.Host) diag.Provider {
	t.Helper()
	prov, err := NewProvider(&Config{LeasedLineGateway: h.RootAddr.String(), Netns: "/var/run/netns/" + h.Name}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

// leasedGW in a route stands for the leased-line gateway (the root side of the veth).
const leasedGW = "LEASED-GW"

var quietKube = &kube.Snapshot{Nodes: []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "op-1"}, Spec: corev1.NodeSpec{PodCIDR: "172.23.0.0/26"}}}, ServiceCIDRs: []string{"10.96.0.0/12"}}

func TestRouteLeasedLinePresent(t *testing.T) {
	t.Parallel()
	h, hr := routeHost(t, []string{"route", "add", "100.64.0.0/10", "via", leasedGW})
	_ = h
	res := evalCloudServices(hr)
	for i := range res {
		r := diagtest.At(t, res, i, pb.Status_PASS)
		if !strings.Contains(r.Evidence[0].Observed, "100.64.0.0/10 via "+h.RootAddr.String()) {
			t.Fatalf("evidence = %v", r.Evidence)
		}
	}
	diagtest.At(t, evalCGNATOverlap(quietKube, hr), 0, pb.Status_PASS)
}

func TestRouteLeasedLineAbsent(t *testing.T) {
	t.Parallel()
	_, hr := routeHost(t)
	r := diagtest.At(t, evalCloudServices(hr), 0, pb.Status_FAIL)
	if !strings.Contains(r.Summary, "the default route") || !strings.Contains(r.Evidence[0].Observed, "default via 192.0.2.254 dev uplink0") {
		t.Fatalf("result = %v", r)
	}
}

func TestRouteLeasedLineShadowed(t *testing.T) {
	t.Parallel()
	h, hr := routeHost(t, []string{"route", "add", "100.64.0.0/10", "via", leasedGW},
		[]string{"route", "add", "100.100.2.0/24", "via", "192.0.2.254"})
	res := evalCloudServices(hr)
	r := diagtest.At(t, res, 0, pb.Status_FAIL)
	if !strings.Contains(r.Summary, "100.100.2.0/24 via 192.0.2.254") || len(r.Evidence) != 2 ||
		!strings.Contains(r.Evidence[1].Observed, "100.64.0.0/10 via "+h.RootAddr.String()) {
		t.Fatalf("result = %v", r)
	}
	r = diagtest.At(t, evalCGNATOverlap(quietKube, hr), 0, pb.Status_FAIL)
	if len(r.Objects) != 1 || r.Objects[0].Name != "100.100.2.0/24" {
		t.Fatalf("objects = %v", r.Objects)
	}
}
