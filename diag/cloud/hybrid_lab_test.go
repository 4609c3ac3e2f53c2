package cloud

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// demoDNS is the canonical dns section that matches the demo account:
// both PrivateZone zones forwarded to the inbound endpoint's first
// address, corp.example to the on-prem resolver the rule forwards to.
func demoDNS(spec cloudlab.DemoSpec) *dnsprobe.Config {
	inbound := spec.InboundIPs[0] + ":53"
	onprem := spec.OnPremResolvers[0] + ":53"
	return &dnsprobe.Config{
		OnPremResolvers: []dnsprobe.Resolver{{Name: "onprem", Address: onprem}},
		PrivateZones:    []string{"svc.cloud.internal.", "data.cloud.internal."},
		OnPremZones:     []string{"corp.example."},
		Forwarders: []dnsprobe.Forwarder{
			{Zone: "svc.cloud.internal.", Targets: []string{inbound}},
			{Zone: "data.cloud.internal.", Targets: []string{inbound}},
			{Zone: "corp.example.", Targets: []string{onprem}},
		},
	}
}

// demoKube is the Kubernetes snapshot of the demo cluster with its
// eci-profile.
func demoKube(l *lab, spec cloudlab.DemoSpec) *kube.Snapshot {
	return &kube.Snapshot{Nodes: l.nodes, ECIProfile: kube.ParseECIProfile(kubelab.ECIProfileFor(spec.ECISecurityGroup, spec.ECIVSwitches...).Data)}
}

// gatherAll gathers p as the runner would with ks and, when set, the DNS
// observations of c, and returns the Inputs the checks see, with extra
// (other sources the checks read) added.
func gatherAll(t *testing.T, p *provider, ks *kube.Snapshot, c *dnsprobe.Config, extra ...diag.Binding) (*Snapshot, *diag.Inputs) {
	t.Helper()
	used := []diag.Binding{kube.Source.With(ks)}
	if c != nil {
		used = append(used, dnsprobe.Source.With(&dnsprobe.Observations{Config: *c}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := p.GatherFrom(ctx, diag.NewInputs(used...))
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Snapshot)
	return s, diag.NewInputs(append(append(used, Source.With(s)), extra...)...)
}

// TestHybridThroughSDK reads the demo account's leased line, PrivateZone,
// security groups and ECI vSwitches through the real SDK and evaluates the
// four checks with a dns section: each finds its deliberate faults, and
// nothing else.
func TestHybridThroughSDK(t *testing.T) {
	l := startDemoLab(t)
	_, spec := cloudlab.Demo()
	s, in := gatherAll(t, l.provider(t), demoKube(l, spec), demoDNS(spec))
	if len(s.Errors) != 0 || len(s.ResourceErrs) != 0 {
		t.Fatalf("errors: %v %v", s.Errors, s.ResourceErrs)
	}
	ctx := context.Background()

	vbr := diagtest.Run(t, ctx, Checks(), CheckVBRBGP, in)
	diagtest.ExpectOne(t, vbr, pb.Status_PASS, "VBR vbr-uf6leasedline0001 BGP peer bgp-uf6onprem0000001 (10.254.255.2, AS 65001) is Established")
	f := diagtest.ExpectOne(t, vbr, pb.Status_FAIL, "4 of 9 prefixes do not cross the leased line: 172.21.2.0/24 (dc-3) at the VBR")
	if f != nil {
		table := f.Evidence[0].Observed
		if !containsAll(table, "prefix", "on-prem router", "172.22.1.0/24", "MISSING in vtb-uf6nodesb000001", "LOST at VPC route tables", "10.10.0.0/16", "static to the VBR") {
			t.Errorf("table:\n%s", table)
		}
		if !containsAll(f.Remediation, "advertise it to the VBR", "see cloud.vpc-pod-routes") {
			t.Errorf("fix: %s", f.Remediation)
		}
	}

	pz := diagtest.Run(t, ctx, Checks(), CheckPrivateZone, in)
	diagtest.ExpectOne(t, pz, pb.Status_PASS, "bound to VPC vpc-uf6hybrid7demo01: svc.cloud.internal (pz-uf6svccloud000001)")
	r := diagtest.ExpectOne(t, pz, pb.Status_FAIL, "PrivateZone zone data.cloud.internal is not bound to the cluster's VPC vpc-uf6hybrid7demo01 (it is bound to vpc-uf6otherteam00001 (cn-shanghai))")
	if r != nil && !strings.Contains(r.Remediation, "aliyun pvtz BindZoneVpc --ZoneId pz-uf6datacloud00001 --Vpcs.1.RegionId cn-shanghai --Vpcs.1.VpcId vpc-uf6otherteam00001 --Vpcs.2.RegionId cn-shanghai --Vpcs.2.VpcId vpc-uf6hybrid7demo01") {
		t.Errorf("fix: %s", r.Remediation)
	}
	diagtest.ExpectOne(t, pz, pb.Status_FAIL, "cluster domain cluster.local contains the PrivateZone zone svc.cluster.local")
	diagtest.ExpectOne(t, pz, pb.Status_PASS, "on-prem forwards the PrivateZone zones to the inbound endpoint hr-uf6inbound0000001 (192.168.0.200:53, 192.168.1.200:53)")
	diagtest.ExpectOne(t, pz, pb.Status_PASS, "on-prem zone corp.example is forwarded from VPC vpc-uf6hybrid7demo01 to 10.10.0.53:53 (rule hr-uf6rulecorp000001")
	if got := diagtest.StatusNames(pz); strings.Count(got, "FAIL") != 2 || strings.Contains(got, "ERROR") {
		t.Errorf("privatezone: %s", diagtest.Dump(pz))
	}

	sg := diagtest.Run(t, ctx, Checks(), CheckSecurityGroups, in)
	r = diagtest.ExpectOne(t, sg, pb.Status_FAIL, "ECS nodes ecs-1, ecs-2, ecs-bad-2 (security groups sg-uf6hybrid7demo01)")
	if r != nil && !containsAll(diagtest.Dump([]*pb.Result{r}),
		"ECI pods (security group sg-uf6eci0000000001) udp/53: want admitted got dropped by sg-uf6hybrid7demo01 rule sgr-uf6hybrid7demo01005 (priority 1 Drop UDP 53/53 from 0.0.0.0/0); the Accept sgr-uf6hybrid7demo01003",
		"aliyun ecs ModifySecurityGroupRule --RegionId cn-shanghai --SecurityGroupId sg-uf6hybrid7demo01 --SecurityGroupRuleId sgr-uf6hybrid7demo01005 --Priority 2") {
		t.Errorf("nodes: %s", diagtest.Dump([]*pb.Result{r}))
	}
	r = diagtest.ExpectOne(t, sg, pb.Status_FAIL, "ECI pods (ConfigMap kube-system/eci-profile: security groups sg-uf6eci0000000001)")
	if r != nil && !containsAll(diagtest.Dump([]*pb.Result{r}), "on-prem network 10.10.0.0/16 (cloud.onPremCIDRs) tcp/all ports: want admitted got no rule admits it") {
		t.Errorf("ECI: %s", diagtest.Dump([]*pb.Result{r}))
	}

	eci := diagtest.Run(t, ctx, Checks(), CheckECIVSwitches, in)
	diagtest.ExpectOne(t, eci, pb.Status_WARN, "ECI vSwitch vsw-uf6eci00000000001 (zone cn-shanghai-l, CIDR 192.168.50.0/24) is nearly full: 12 of 252 free")
	diagtest.ExpectOne(t, eci, pb.Status_FAIL, "ECI vSwitch vsw-uf6eci00000000002 (zone cn-shanghai-m, CIDR 192.168.51.0/24) has no free IP address")
}

// TestAuthKeyNeverLeaves: DescribeBgpPeers answers each peer's MD5 key.
// It must not reach the snapshot, any result in any form, the source
// status or the logs.
func TestAuthKeyNeverLeaves(t *testing.T) {
	l := startDemoLab(t)
	_, spec := cloudlab.Demo()
	s, in := gatherAll(t, l.provider(t), demoKube(l, spec), demoDNS(spec))
	var out strings.Builder
	out.WriteString(s.Describe())
	for _, c := range Checks() {
		for _, r := range c.Run(context.Background(), in) {
			b, _ := protojson.Marshal(r)
			out.Write(b)
		}
	}
	out.WriteString(l.logs.String())
	served := false
	for _, c := range l.srv.Calls() {
		served = served || c.Action == "DescribeBgpPeers"
	}
	if !served || strings.Contains(out.String(), "lab-md5-") {
		t.Fatalf("served %v; output holds the MD5 key:\n%s", served, out.String())
	}
}

// TestHybridPermissionErrors: a denied action makes only the check that
// needs its data ERROR, naming the action and the statement to add.
func TestHybridPermissionErrors(t *testing.T) {
	cases := []struct {
		action, check, part string
	}{
		{"DescribeBgpPeers", CheckVBRBGP, "vpc:DescribeBgpPeers"},
		{"DescribeVirtualBorderRouters", CheckVBRBGP, "vpc:DescribeVirtualBorderRouters"},
		{"DescribeResolverRules", CheckPrivateZone, "pvtz:DescribeResolverRules"},
		{"DescribeZones", CheckPrivateZone, "pvtz:DescribeZones"},
		{"DescribeSecurityGroupAttribute", CheckSecurityGroups, "ecs:DescribeSecurityGroupAttribute"},
	}
	for _, c := range cases {
		t.Run(c.action, func(t *testing.T) {
			l := startDemoLab(t)
			_, spec := cloudlab.Demo()
			l.srv.SetFault(c.action, cloudlab.Fault{Deny: "Forbidden.RAM"})
			_, in := gatherAll(t, l.provider(t), demoKube(l, spec), demoDNS(spec))
			for _, ch := range Checks() {
				rs := ch.Run(context.Background(), in)
				errs := 0
				for _, r := range rs {
					if r.Status != pb.Status_ERROR {
						continue
					}
					errs++
					if ch.ID == c.check && !containsAll(r.Remediation, `"Action": ["`+c.part+`"]`) {
						t.Errorf("%s: fix %q", ch.ID, r.Remediation)
					}
				}
				if (errs > 0) != (ch.ID == c.check) {
					t.Errorf("%s: %d ERROR results:\n%s", ch.ID, errs, diagtest.Dump(rs))
				}
			}
		})
	}
}

// TestHybridMissingResources: configured VBRs, ECI groups and vSwitches
// that do not exist, a vSwitch of another VPC, a PrivateZone zone that
// does not exist and an on-prem zone without a rule are each named.
func TestHybridMissingResources(t *testing.T) {
	d, spec := cloudlab.Demo()
	other := d.AddVPC(cloudlab.DemoRegion, "vpc-uf6otherteam00001", "172.30.0.0/16")
	d.AddVSwitch(other, "vsw-uf6othervpc00001", "cn-shanghai-m", "172.30.1.0/24")
	l := startLab(t, d, spec.Region)
	l.cfg.OnPremCIDRs = spec.OnPremCIDRs
	l.cfg.VPCID = cloudlab.DemoVPC
	l.cfg.VBRIDs = []string{"vbr-uf6nosuchvbr00001"}
	l.cfg.ECISecurityGroupIDs = []string{"sg-uf6nosuchgroup001"}
	l.cfg.ECIVSwitchIDs = []string{"vsw-uf6othervpc00001", "vsw-uf6nosuchvsw0001"}
	l.nodes = hybridNodes()
	c := demoDNS(spec)
	c.PrivateZones = append(c.PrivateZones, "nosuch.cloud.internal.")
	c.OnPremZones = append(c.OnPremZones, "lab.example.")
	_, in := gatherAll(t, l.provider(t), &kube.Snapshot{Nodes: l.nodes}, c)
	ctx := context.Background()
	diagtest.ExpectOne(t, diagtest.Run(t, ctx, Checks(), CheckVBRBGP, in), pb.Status_FAIL, "VBR vbr-uf6nosuchvbr00001 (cloud.vbrIds) does not exist in cn-shanghai")
	sg := diagtest.Run(t, ctx, Checks(), CheckSecurityGroups, in)
	diagtest.ExpectOne(t, sg, pb.Status_FAIL, "ECI pods (cloud.eciSecurityGroupIds and cloud.eciVSwitchIds: security groups sg-uf6nosuchgroup001): security group sg-uf6nosuchgroup001 does not exist")
	eci := diagtest.Run(t, ctx, Checks(), CheckECIVSwitches, in)
	diagtest.ExpectOne(t, eci, pb.Status_FAIL, "ECI vSwitch vsw-uf6othervpc00001 is in VPC vpc-uf6otherteam00001, not the cluster's VPC vpc-uf6hybrid7demo01")
	diagtest.ExpectOne(t, eci, pb.Status_FAIL, "ECI vSwitch vsw-uf6nosuchvsw0001 does not exist in cn-shanghai")
	pz := diagtest.Run(t, ctx, Checks(), CheckPrivateZone, in)
	diagtest.ExpectOne(t, pz, pb.Status_FAIL, "PrivateZone zone nosuch.cloud.internal (dns.privateZones) does not exist")
	r := diagtest.ExpectOne(t, pz, pb.Status_FAIL, "on-prem zone lab.example has no forwarding rule for VPC vpc-uf6hybrid7demo01")
	if r != nil && !strings.Contains(r.Remediation, "aliyun pvtz AddResolverRule --Name lab-example --Type OUTBOUND --ZoneName lab.example --EndpointId <outbound endpoint of vpc-uf6hybrid7demo01> --ForwardIp.1.Ip 10.10.0.53 --ForwardIp.1.Port 53") {
		t.Errorf("fix %s", r.Remediation)
	}
}

// TestHybridPeerFaults: a peer that is not Established, with another AS
// than the on-prem router's, at an address other than the VBR's gateway.
func TestHybridPeerFaults(t *testing.T) {
	d, spec := cloudlab.Demo()
	v := d.VBRs[0]
	v.Peers[0].BGPStatus = "Active"
	v.Peer("bgp-uf6backup0000001", "10.254.255.10", "65009", "45104")
	l := startLab(t, d, spec.Region)
	l.nodes = hybridNodes()
	l.cfg.OnPremASN = 65001
	_, in := gatherAll(t, l.provider(t), &kube.Snapshot{Nodes: l.nodes}, nil)
	rs := diagtest.Run(t, context.Background(), Checks(), CheckVBRBGP, in)
	r := diagtest.ExpectOne(t, rs, pb.Status_FAIL, "BGP peer bgp-uf6onprem0000001 (10.254.255.2, AS 65001) is Active, not Established")
	if r != nil && !strings.Contains(r.Remediation, "neighbor 10.254.255.1 remote-as 45104") {
		t.Errorf("fix %s", r.Remediation)
	}
	r = diagtest.ExpectOne(t, rs, pb.Status_FAIL, "BGP peer bgp-uf6backup0000001 (10.254.255.10, AS 65009) has peer AS 65009, but the on-prem router is AS 65001; peers with 10.254.255.10, not the VBR's on-prem gateway 10.254.255.2")
	if r != nil && !strings.Contains(r.Remediation, "aliyun vpc ModifyBgpPeerAttribute --RegionId cn-shanghai --BgpPeerId bgp-uf6backup0000001 --PeerAsn 65001") {
		t.Errorf("fix %s", r.Remediation)
	}
}
