package bgplab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// DemoOptions shape the demo's BGP lab.
type DemoOptions struct {
	// PodCIDRs of the demo cluster's on-prem nodes. The on-prem router
	// advertises all of them but the last: the lab's one deliberate fault,
	// which bgp.podcidr-advertised reports.
	PodCIDRs []string
	// CloudPrefixes the VBR advertises (default 192.168.0.0/16, the demo VPC).
	CloudPrefixes []string
	// ECSPodCIDRs the VBR advertises too, as the VPC route table holds them
	// (the cloud controller manager's routes). They are not cloudPrefixes:
	// bgp.cloud-routes-learned reads them from the ECS nodes.
	ECSPodCIDRs []string
	// OnPremNetworks are further on-prem networks the router advertises
	// (the cloud section's onPremCIDRs).
	OnPremNetworks []string
}

// StartDemo starts the demo's BGP lab: an on-prem router (BIRD, AS 65001)
// that advertises the on-prem pod CIDRs (one missing), the on-prem
// networks and a static 100.64.0.0/10 toward the leased line, and a "VBR" (FRR, AS 45104) that
// advertises the VPC prefixes. Each runs in its own netlab host. It returns
// the bgp section the demo's vnodediag should use, and a stop function.
// Needs root, bird2 and frr.
func StartDemo(opts DemoOptions) (*bgp.Config, func(), error) {
	if why := netlab.Available(); why != "" {
		return nil, nil, errors.New("bgp demo lab: " + why)
	}
	for _, bin := range []string{"/usr/sbin/bird", "/usr/lib/frr/bgpd"} {
		if _, err := os.Stat(bin); err != nil {
			return nil, nil, fmt.Errorf("bgp demo lab: %s not installed (apt-get install bird2 frr)", bin)
		}
	}
	cloud := opts.CloudPrefixes
	if len(cloud) == 0 {
		cloud = []string{"192.168.0.0/16"}
	}
	advertised := opts.PodCIDRs
	if len(advertised) > 0 {
		advertised = advertised[:len(advertised)-1]
	}
	var hosts []*netlab.Host
	stop := func() {
		for _, h := range hosts {
			h.Close()
		}
	}
	onprem, err := netlab.NewHost("onprem")
	if err != nil {
		return nil, nil, err
	}
	hosts = append(hosts, onprem)
	vbr, err := netlab.NewHost("vbr")
	if err != nil {
		stop()
		return nil, nil, err
	}
	hosts = append(hosts, vbr)
	const observerASN = 65010
	if _, err := StartBIRD(onprem, Router{ASN: 65001, Neighbor: onprem.RootAddr, NeighborASN: observerASN, Passive: true,
		Routes: append(append(append([]string{}, advertised...), opts.OnPremNetworks...), cloudnet.CGNAT.String())}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("bgp demo lab: on-prem router: %w", err)
	}
	if _, err := StartFRR(vbr, Router{ASN: 45104, Neighbor: vbr.RootAddr, NeighborASN: observerASN, Passive: true,
		Routes: append(append([]string{}, cloud...), opts.ECSPodCIDRs...)}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("bgp demo lab: VBR: %w", err)
	}
	hold := uint32(3)
	cfg := &bgp.Config{
		LocalASN: observerASN, RouterID: "192.0.2.10", ListenPort: -1, EstablishTimeout: diag.Duration(15 * time.Second),
		Peers: []bgp.PeerConfig{
			{Name: "onprem-bird", Address: onprem.HostAddr.String(), ASN: 65001, HoldTime: &hold},
			{Name: "vbr-frr", Address: vbr.HostAddr.String(), ASN: 45104, HoldTime: &hold},
		},
		CloudPrefixes: cloud,
	}
	return cfg, stop, nil
}

// DemoProviderT starts the demo lab with opts for a test and returns
// its bgp section and the bgp source of it; the lab stops when the test
// ends. It skips the test where network namespaces cannot be made.
func DemoProviderT(t testing.TB, opts DemoOptions) (*bgp.Config, diag.Provider) {
	t.Helper()
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	cfg, stop, err := StartDemo(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	p, err := bgp.NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, p
}

// DemoTableT starts the demo lab with opts for a test (DemoProviderT) and
// gathers the BGP source once (the observer's table, as a one-shot
// diagnose does).
func DemoTableT(t testing.TB, ctx context.Context, opts DemoOptions) *bgp.Table {
	t.Helper()
	_, p := DemoProviderT(t, opts)
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v.(*bgp.Table)
}
