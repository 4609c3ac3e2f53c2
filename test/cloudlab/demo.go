package cloudlab

import "fmt"

// DemoSpec is the part of the demo's vnodediag config that must match the
// demo account.
type DemoSpec struct {
	Region      string
	VPCID       string
	OnPremCIDRs []string
	// ECISecurityGroup and ECIVSwitches are what the demo cluster's
	// eci-profile ConfigMap names.
	ECISecurityGroup string
	ECIVSwitches     []string
	// InboundIPs are the PrivateZone inbound endpoint's addresses and
	// OnPremResolvers the forward targets of the corp.example rule, until
	// SetDemoDNS replaces them with a DNS lab's.
	InboundIPs      []string
	OnPremResolvers []string
}

// Demo instance and resource IDs (the ECS nodes of kubelab.HybridCluster).
const (
	DemoRegion   = "cn-shanghai"
	DemoVPC      = "vpc-uf6hybrid7demo01"
	DemoECS1     = "i-uf6f5lbqvn1l8dfnbzj1" // ecs-1
	DemoECS2     = "i-uf6a1b2c3d4e5f6g7h8i" // ecs-2
	DemoECSBad2  = "i-uf6cmf0kgbs9o4ex1v2q" // ecs-bad-2 (providerID without region)
	DemoGone     = "i-uf6deadb33f0000node"  // a released node's instance
	DemoVBR      = "vbr-uf6leasedline0001"
	DemoRI       = "ri-uf6tovbr000000001"
	DemoNAT      = "ngw-uf6internet00001"
	DemoCustomRT = "vtb-uf6nodesb000001"
	DemoPC       = "pc-uf6leasedline0001"
	DemoNodeSG   = "sg-uf6hybrid7demo01" // the ECS nodes' group (AddInstance's default)
	DemoECISG    = "sg-uf6eci0000000001"
	DemoECIVSw1  = "vsw-uf6eci00000000001"
	DemoECIVSw2  = "vsw-uf6eci00000000002"
	DemoOtherVPC = "vpc-uf6otherteam00001"
	DemoInbound  = "hr-uf6inbound0000001"
	DemoOutbound = "hr-uf6outbound000001"
	// DemoVBRPeerASN is the on-prem router's AS (BIRD in the BGP lab).
	DemoVBRPeerASN = "65001"
)

// Demo is the demo's cloud account, matching kubelab.HybridCluster: a VPC
// 192.168.0.0/16 in cn-shanghai with two vSwitches, each with its own route
// table (the system table for vSwitch A, a custom table for B), the three
// ECS nodes' instances, a NAT gateway default route, and the leased line
// (a VBR behind a router interface) with BGP routes for the on-prem pod
// CIDRs BIRD advertises in the BGP lab. Its deliberate faults:
//
//   - ecs-2's instance has primary IP 192.168.1.12 (it sits in vSwitch B),
//     while the node reports InternalIP 192.168.0.12: cloud.ecs-instances;
//   - the custom table lacks ecs-2's podCIDR 172.22.1.0/24 (the
//     several-route-tables trap: the controller writes only the system
//     table), and neither table routes ecs-bad-2's 172.22.2.0/24 (its
//     providerID lacks the region): cloud.vpc-pod-routes FAIL;
//   - the custom table still routes 172.22.9.0/24 to a released node's
//     instance: cloud.vpc-pod-routes WARN (stale);
//   - dc-3's podCIDR 172.21.2.0/24 is not learned from the VBR (BIRD does
//     not advertise it), so its longest match is 0.0.0.0/0 -> NAT gateway,
//     and dc-4's 100.100.8.0/24 matches the system route 100.64.0.0/10:
//     cloud.vpc-onprem-routes FAIL;
//   - the leased line, PrivateZone and security groups below have the
//     faults their builders describe (cloud.vbr-bgp, cloud.privatezone,
//     cloud.security-groups); the ECI vSwitches are short of addresses
//     (12 free: WARN; 0 free: FAIL, cloud.eci-vswitches).
func Demo() (*DataSet, DemoSpec) {
	d := NewDataSet()
	vpc := d.AddVPC(DemoRegion, DemoVPC, "192.168.0.0/16")
	a := d.AddVSwitch(vpc, "vsw-uf6nodesa0000001", "cn-shanghai-l", "192.168.0.0/24")
	b := d.AddVSwitch(vpc, "vsw-uf6nodesb0000001", "cn-shanghai-l", "192.168.1.0/24")
	d.AddVSwitch(vpc, "vsw-uf6eci00000000001", "cn-shanghai-l", "192.168.50.0/24")
	system := d.SystemTable(vpc)
	custom := d.AddCustomTable(vpc, DemoCustomRT, b)

	d.AddInstance(a, DemoECS1, "192.168.0.11")
	d.AddInstance(b, DemoECS2, "192.168.1.12")
	d.AddInstance(a, DemoECSBad2, "192.168.0.13")

	for _, t := range []*RouteTable{system, custom} {
		t.Route("172.22.0.0/24", "Custom", ToInstance(DemoECS1))
		t.Route("0.0.0.0/0", "Custom", To("NatGateway", DemoNAT))
		t.Route("10.10.0.0/16", "Custom", ToVBR(DemoRI, DemoVBR))
		t.Route("172.21.0.0/24", "BGP", ToVBR(DemoRI, DemoVBR))
		t.Route("172.21.1.0/24", "BGP", ToVBR(DemoRI, DemoVBR))
	}
	system.Route("172.22.1.0/24", "Custom", ToInstance(DemoECS2))
	custom.Route("172.22.9.0/24", "Custom", ToInstance(DemoGone))

	spec := DemoSpec{Region: DemoRegion, VPCID: DemoVPC, OnPremCIDRs: []string{"10.10.0.0/16"},
		ECISecurityGroup: DemoECISG, ECIVSwitches: []string{DemoECIVSw1, DemoECIVSw2},
		InboundIPs: []string{"192.168.0.200", "192.168.1.200"}, OnPremResolvers: []string{"10.10.0.53"}}
	demoLeasedLine(d, vpc)
	demoPrivateZone(d, vpc, a, b, spec)
	demoSecurityGroups(d, vpc)
	eci2 := d.AddVSwitch(vpc, DemoECIVSw2, "cn-shanghai-m", "192.168.51.0/24")
	d.mu.Lock()
	for _, sw := range d.VSwitches {
		switch sw.ID {
		case DemoECIVSw1:
			sw.AvailableIPs = 12 // below 16: cloud.eci-vswitches WARN
		case eci2.ID:
			sw.AvailableIPs = 0 // cloud.eci-vswitches FAIL
		}
	}
	d.mu.Unlock()
	return d, spec
}

// demoLeasedLine is the VBR of the demo's leased line: one BGP peer, the
// on-prem router (AS 65001, Established); it advertises the VPC CIDR and
// the ECS pod range 172.22.0.0/16, and has learned dc-1's and dc-2's pod
// CIDRs (BIRD in the BGP lab does not advertise dc-3's) plus a static
// route for the on-prem network 10.10.0.0/16.
func demoLeasedLine(d *DataSet, vpc *VPC) {
	v := d.AddVBR(DemoRegion, DemoVBR, DemoPC, "10.254.255.1", "10.254.255.2")
	p := v.Peer("bgp-uf6onprem0000001", "10.254.255.2", DemoVBRPeerASN, "45104")
	p.Received, p.Advertised = 3, 2
	v.Advertise(vpc.ID, vpc.CIDR, "172.22.0.0/16")
	v.Table.Route("172.21.0.0/24", "BGP", ToLeasedLine(DemoPC))
	v.Table.Route("172.21.1.0/24", "BGP", ToLeasedLine(DemoPC))
	v.Table.Route("10.10.0.0/16", "Custom", ToLeasedLine(DemoPC))
	v.Table.Route(vpc.CIDR, "Custom", ToVPC("ri-uf6tovpc000000001", vpc.VRouterID))
}

// demoPrivateZone is the demo's PrivateZone side: svc.cloud.internal bound
// to the VPC; data.cloud.internal bound only to another team's VPC (a
// fault); svc.cluster.local bound to the VPC, inside the cluster domain
// (the FAQ's ClusterDomain trap, a fault); an inbound endpoint, and an
// outbound endpoint whose rule forwards corp.example to the on-prem
// resolver.
func demoPrivateZone(d *DataSet, vpc *VPC, a, b *VSwitch, spec DemoSpec) {
	here := ZoneVPC{RegionID: vpc.Region, VPCID: vpc.ID}
	d.AddZone("pz-uf6svccloud000001", "svc.cloud.internal", here)
	d.AddZone("pz-uf6datacloud00001", "data.cloud.internal", ZoneVPC{RegionID: DemoRegion, VPCID: DemoOtherVPC})
	d.AddZone("pz-uf6svccluster0001", "svc.cluster.local", here)
	d.AddEndpoint(DemoInbound, vpc, DemoNodeSG,
		EndpointIP{VSwitchID: a.ID, IP: spec.InboundIPs[0], CIDR: a.CIDR, Zone: a.Zone},
		EndpointIP{VSwitchID: b.ID, IP: spec.InboundIPs[1], CIDR: b.CIDR, Zone: b.Zone})
	out := d.AddEndpoint(DemoOutbound, vpc, DemoNodeSG,
		EndpointIP{VSwitchID: a.ID, IP: "192.168.0.201", CIDR: a.CIDR, Zone: a.Zone},
		EndpointIP{VSwitchID: b.ID, IP: "192.168.1.201", CIDR: b.CIDR, Zone: b.Zone})
	var targets []ForwardIP
	for _, ip := range spec.OnPremResolvers {
		targets = append(targets, ForwardIP{IP: ip, Port: 53})
	}
	d.AddRule("hr-uf6rulecorp000001", "corp.example", out, targets, here)
}

// SetDemoDNS points the demo's PrivateZone side at a DNS lab: the inbound
// endpoint answers on inbound (the addresses on-prem forwards the
// PrivateZone zones to) and the corp.example rule forwards to onPrem (the
// on-prem resolvers).
func (d *DataSet) SetDemoDNS(inbound, onPrem []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ep := d.endpoint(DemoInbound); ep != nil {
		ips := ep.IPs[:0]
		for i, ip := range inbound {
			tmpl := ep.IPs[min(i, len(ep.IPs)-1)]
			tmpl.IP = ip
			ips = append(ips, tmpl)
		}
		ep.IPs = ips
	}
	for _, r := range d.Rules {
		if r.ZoneName == "corp.example" {
			r.ForwardIPs = nil
			for _, ip := range onPrem {
				r.ForwardIPs = append(r.ForwardIPs, ForwardIP{IP: ip, Port: 53})
			}
		}
	}
}

// demoSecurityGroups are the demo's groups. The ECS nodes' group admits
// the on-prem pod range and network, TCP 53 from the pod ranges and
// everything from the ECI group, but a priority-1 Drop of UDP 53 from
// anywhere (meant against DNS amplification) beats the Accepts of the same
// priority: on-prem and ECI pods lose DNS to CoreDNS on the nodes. The ECI
// group admits the on-prem pod range but not the on-prem network
// 10.10.0.0/16. Both are faults of cloud.security-groups.
func demoSecurityGroups(d *DataSet, vpc *VPC) {
	nodes := d.AddSecurityGroup(vpc, DemoNodeSG, "normal", "Accept")
	nodes.Ingress(1, "Accept", "ALL", "-1/-1", "172.21.0.0/16", "on-prem pods")
	nodes.Ingress(1, "Accept", "ALL", "-1/-1", "10.10.0.0/16", "on-prem network")
	nodes.Ingress(1, "Accept", "ALL", "-1/-1", DemoECISG, "ECI pods")
	nodes.Ingress(10, "Accept", "TCP", "53/53", "172.16.0.0/12", "DNS over TCP from pods")
	nodes.Ingress(1, "Drop", "UDP", "53/53", "0.0.0.0/0", "no open resolver")
	eci := d.AddSecurityGroup(vpc, DemoECISG, "normal", "Accept")
	eci.Ingress(1, "Accept", "ALL", "-1/-1", "172.21.0.0/16", "on-prem pods")
	eci.Ingress(1, "Accept", "ALL", "-1/-1", "192.168.0.0/16", "the VPC")
}

// ScaleSpec sizes the benchmark's account.
type ScaleSpec struct {
	Tables          int // route tables (one system, the rest custom), one vSwitch each
	EntriesPerTable int // entries per table, system entries included
	Instances       int // ECS instances, spread over the vSwitches
	VBREntries      int // routes the VBR learned from on-prem
	Zones           int // PrivateZone zones bound to the VPC (and a rule per ten)
	GroupRules      int // inbound rules of the instances' security group
}

// Scale is a large account for the benchmark: Instances instances
// ("i-scale%07d", IP 10.<x>.<y>.<z>) in a VPC 10.0.0.0/8 with Tables
// vSwitches and route tables; each table holds EntriesPerTable entries,
// podCIDR routes 172.16.0.0/12 -> instance first.
func Scale(spec ScaleSpec) (*DataSet, DemoSpec) {
	d := NewDataSet()
	vpc := d.AddVPC("cn-hangzhou", "vpc-bp1scale00000001", "10.0.0.0/8")
	var tables []*RouteTable
	var vsws []*VSwitch
	for i := 0; i < spec.Tables; i++ {
		sw := d.AddVSwitch(vpc, fmt.Sprintf("vsw-bp1scale%08d", i), "cn-hangzhou-h", fmt.Sprintf("10.%d.0.0/16", i+1))
		vsws = append(vsws, sw)
		if i == 0 {
			tables = append(tables, d.SystemTable(vpc))
		} else {
			tables = append(tables, d.AddCustomTable(vpc, fmt.Sprintf("vtb-bp1scale%07d", i), sw))
		}
	}
	for i := 0; i < spec.Instances; i++ {
		sw := vsws[i%len(vsws)]
		k := i/len(vsws) + 10
		d.AddInstance(sw, ScaleInstance(i), fmt.Sprintf("10.%d.%d.%d", i%len(vsws)+1, k/250, k%250+1))
	}
	system := len(vsws) + 1 // vSwitch CIDRs and 100.64.0.0/10
	for _, t := range tables {
		for j := 0; j < spec.EntriesPerTable-system; j++ {
			t.Route(ScalePodCIDR(j), "Custom", ToInstance(ScaleInstance(j%max(1, spec.Instances))))
		}
	}
	// The leased line: one VBR whose table learned a route per on-prem
	// node, two peers, the VPC and pod ranges advertised.
	v := d.AddVBR("cn-hangzhou", "vbr-bp1scale00000001", "pc-bp1scale00000001", "10.254.255.1", "10.254.255.2")
	v.Peer("bgp-bp1scale00000001", "10.254.255.2", "65001", "45104")
	v.Peer("bgp-bp1scale00000002", "10.254.255.6", "65001", "45104")
	v.Advertise(vpc.ID, vpc.CIDR, "172.16.0.0/12")
	for j := 0; j < spec.VBREntries; j++ {
		v.Table.Route(fmt.Sprintf("10.%d.%d.0/24", 100+j/256, j%256), "BGP", ToLeasedLine("pc-bp1scale00000001"))
	}
	// PrivateZone: zones bound to the VPC, an inbound and an outbound
	// endpoint, a rule per on-prem zone.
	here := ZoneVPC{RegionID: vpc.Region, VPCID: vpc.ID}
	for j := 0; j < spec.Zones; j++ {
		d.AddZone(fmt.Sprintf("pz-bp1scale%08d", j), fmt.Sprintf("svc%d.cloud.internal", j), here)
	}
	d.AddEndpoint("hr-bp1scalein000001", vpc, "sg-"+suffix(vpc.ID), EndpointIP{VSwitchID: vsws[0].ID, IP: "10.1.0.200", CIDR: vsws[0].CIDR, Zone: vsws[0].Zone})
	out := d.AddEndpoint("hr-bp1scaleout00001", vpc, "sg-"+suffix(vpc.ID), EndpointIP{VSwitchID: vsws[0].ID, IP: "10.1.0.201", CIDR: vsws[0].CIDR, Zone: vsws[0].Zone})
	for j := 0; j < spec.Zones/10; j++ {
		d.AddRule(fmt.Sprintf("hr-bp1scalerule%04d", j), fmt.Sprintf("site%d.corp.example", j), out, []ForwardIP{{IP: "10.100.0.53", Port: 53}}, here)
	}
	// The instances' security group, with a rule per on-prem /24.
	g := d.AddSecurityGroup(vpc, "sg-"+suffix(vpc.ID), "normal", "Accept")
	for j := 0; j < spec.GroupRules; j++ {
		g.Ingress(1+j%100, "Accept", "ALL", "-1/-1", fmt.Sprintf("10.%d.%d.0/24", 100+j/256, j%256), "")
	}
	return d, DemoSpec{Region: "cn-hangzhou", VPCID: vpc.ID}
}

// ScaleInstance is the ID of the benchmark's i-th instance.
func ScaleInstance(i int) string { return fmt.Sprintf("i-bp1scale%010d", i) }

// ScalePodCIDR is the podCIDR of the benchmark's i-th node (a /24 in
// 172.16.0.0/12).
func ScalePodCIDR(i int) string { return fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256) }
