package render

import (
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// demoReport is what `make demo` reports about its lab (test/lab/README.md
// lists the deliberate faults), shortened to a few results per family: the
// report the README's screenshot shows.
func demoReport() *pb.Report {
	start := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	type ev = pb.Evidence
	res := func(id string, st pb.Status, summary string, evidence []*ev, fix string, objects ...*pb.Object) *pb.Result {
		return &pb.Result{CheckId: id, Status: st, Summary: summary, Evidence: evidence, Remediation: fix, Objects: objects,
			Duration: durationpb.New(3 * time.Millisecond)}
	}
	node := func(name string) *pb.Object { return &pb.Object{Kind: "Node", Name: name} }
	pass, warn, fail := pb.Status_PASS, pb.Status_WARN, pb.Status_FAIL
	results := []*pb.Result{
		res("bgp.cloud-routes-learned", fail, "ecs-bad-2's podCIDR 172.22.2.0/24 is not covered by a route received from the cloud",
			[]*ev{{Label: "172.22.2.0/24", Expected: "received from the VBR", Observed: "no covering route"}},
			"Add ecs-bad-2's podCIDR to the VPC route table the VBR learns from, then check that the VBR advertises it."),
		res("bgp.podcidr-advertised", fail, "dc-3's podCIDR 172.21.2.0/24 is not advertised by core-1",
			[]*ev{{Label: "dc-3", Expected: "172.21.2.0/24 advertised", Observed: "longest match: none"}},
			"On core-1 (BIRD), export the route:\n  protocol static podcidrs {\n    ipv4;\n    route 172.21.2.0/24 via \"leased0\";\n  }", node("dc-3")),
		res("bgp.session", pass, "core-1 192.0.2.1 AS 65001: Established, End-of-RIB, 9 prefixes received, none advertised", nil, ""),
		res("cloud.ecs-instances", fail, "node ecs-2: instance i-uf6ecs2 has primary IP 192.168.1.12, the node reports 192.168.0.12",
			[]*ev{{Label: "primary private IP", Expected: "192.168.0.12", Observed: "192.168.1.12"}},
			"Re-register ecs-2 with --node-ip=192.168.1.12 or fix the instance's network interface.", node("ecs-2")),
		res("cloud.eci-vswitches", fail, "vSwitch vsw-eci-b has 0 free addresses",
			[]*ev{{Label: "vsw-eci-b (cn-shanghai-l, 192.168.32.0/24)", Expected: "free addresses", Observed: "0"}},
			"Add a vSwitch with free addresses to vSwitchIds in the eci-profile ConfigMap."),
		res("cloud.privatezone", fail, "zone data.cloud.internal is not bound to vpc-uf6hybrid7demo01",
			[]*ev{{Label: "data.cloud.internal", Expected: "bound to vpc-uf6hybrid7demo01", Observed: "bound to vpc-uf6otherteam"}},
			"Bind data.cloud.internal to vpc-uf6hybrid7demo01 in the PrivateZone console."),
		res("cloud.security-groups", fail, "sg-nodes drops UDP 53 from 0.0.0.0/0 at priority 1 (Drop wins at equal priority)",
			[]*ev{{Label: "10.10.0.0/16 -> udp/53", Expected: "accepted", Observed: "dropped by rule sgr-drop-dns"}},
			"Delete rule sgr-drop-dns of sg-nodes, or give it a lower priority than the Accepts."),
		res("cloud.vbr-bgp", fail, "4 prefixes are lost on the way: first at the on-prem router (1), the VBR (1), the VPC route tables (2)",
			[]*ev{{Label: "172.21.2.0/24 (dc-3)", Expected: "on-prem router -> VBR -> VPC", Observed: "lost at the on-prem router"}},
			"Advertise 172.21.2.0/24 from core-1; see bgp.podcidr-advertised."),
		res("cloud.vpc-onprem-routes", fail, "dc-3's 172.21.2.0/24 is routed to the NAT gateway, not to the leased line",
			[]*ev{{Label: "172.21.2.0/24", Expected: "BGP-learned or next hop the VBR", Observed: "0.0.0.0/0 -> ngw-uf6demo"}}, ""),
		res("cloud.vpc-pod-routes", fail, "route table vtb-custom lacks ecs-2's 172.22.1.0/24",
			[]*ev{{Label: "vtb-custom", Expected: "172.22.1.0/24 -> i-uf6ecs2", Observed: "no entry"}},
			"aliyun vpc CreateRouteEntry --RouteTableId vtb-custom --DestinationCidrBlock 172.22.1.0/24 --NextHopId i-uf6ecs2"),
		res("dns.coredns-forward", pass, "CoreDNS forwards corp.example and data.cloud.internal", nil, ""),
		res("dns.privatezone-from-onprem", fail, "pg.data.cloud.internal: SERVFAIL from 10.10.0.53 (unbound)",
			[]*ev{{Label: "10.10.0.53", Expected: "10.1.2.3", Observed: "SERVFAIL"}},
			"Add to unbound.conf:\nforward-zone:\n  name: \"data.cloud.internal.\"\n  forward-addr: 192.168.0.100"),
		res("dns.resolver-reachable", pass, "3 resolvers answer their zones", nil, ""),
		res("host.conntrack", fail, "conntrack table 97 % full (252,000 of 262,144)", nil, "sysctl -w net.netfilter.nf_conntrack_max=524288"),
		res("host.sysctls", fail, "ip_forward=0; rp_filter=1 on leased0",
			[]*ev{{Label: "net.ipv4.ip_forward", Expected: "1", Observed: "0"}, {Label: "net.ipv4.conf.leased0.rp_filter", Expected: "0 or 2", Observed: "1"}},
			"sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.leased0.rp_filter=2"),
		res("k8s.podcidr-assigned", pass, "all 8 non-virtual node(s) have a podCIDR", nil, ""),
		res("k8s.podcidr-overlap", fail, "dc-4's podCIDR 100.100.8.0/24 lies in 100.64.0.0/10; dc-5's podCIDR equals dc-1's",
			[]*ev{{Label: "dc-4", Expected: "outside 100.64.0.0/10", Observed: "100.100.8.0/24"}}, "", node("dc-4"), node("dc-5")),
		res("k8s.providerid-format", fail, `node ecs-bad-2: providerID "i-uf6cmf0kgbs9o4ex1v2q": missing region`,
			[]*ev{{Label: "spec.providerID", Expected: "<region-id>.<instance-id>", Observed: `"i-uf6cmf0kgbs9o4ex1v2q"`}},
			"On node ecs-bad-2 set --provider-id=cn-shanghai.i-uf6cmf0kgbs9o4ex1v2q and re-register the node.", node("ecs-bad-2")),
		res("k8s.kube-proxy", warn, "IPVS udpTimeout left to the kernel (300 s)", nil, ""),
		res("path.cloud-to-onprem", pass, "agent on virtual-kubelet-cn-shanghai-l connected to 3 of 3 targets", nil, ""),
		res("path.onprem-to-cloud", pass, "1 agent answers on 100.100.9.7:7444", nil, ""),
		res("route.cloud-services", pass, "100.100.2.136 and 100.100.2.138 leave through leased0", nil, ""),
		res("vnode.eci-profile", fail, "selector analytics: operator \"Equals\" is not a label selector operator", nil, "Use operator In."),
		res("vnode.nas-fsgroup", warn, "media/transcoder mounts NAS with fsGroup and without fsGroupChangePolicy: OnRootMismatch", nil,
			"spec:\n  securityContext:\n    fsGroupChangePolicy: OnRootMismatch"),
		res("vnode.present", pass, "1 VNode: virtual-kubelet-cn-shanghai-l, Ready, v1.37.2-vk", nil, ""),
	}
	sort.Slice(results, func(i, j int) bool { return results[i].CheckId < results[j].CheckId })
	s := diag.Summarize(results)
	ms := func(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Millisecond) }
	return &pb.Report{
		RunId: "3f2a9c0d1e7b4a55", Version: "v0.9.0",
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(4210 * time.Millisecond)),
		Cluster: &pb.ClusterIdentity{Server: "https://127.0.0.1:36111", Context: "lab-hybrid", Version: "v1.37.2", Uid: "5c1e8e0a-7d8b-4b8e-9f65-2f0d5f6f3a10"},
		Results: results, Summary: s,
		Sources: []*pb.SourceStatus{
			{Name: "kube", State: pb.SourceStatus_OK, Message: "9 nodes, 41 pods", Duration: ms(180)},
			{Name: "bgp", State: pb.SourceStatus_OK, Message: "core-1 Established", Duration: ms(2100)},
			{Name: "dns", State: pb.SourceStatus_OK, Message: "3 resolvers", Duration: ms(310)},
			{Name: "routes", State: pb.SourceStatus_OK, Message: "2 probe addresses", Duration: ms(2)},
			{Name: "host", State: pb.SourceStatus_OK, Message: "hostRoot /host", Duration: ms(4)},
			{Name: "cloud", State: pb.SourceStatus_OK, Message: "cn-shanghai, vpc-uf6hybrid7demo01", Duration: ms(640)},
			{Name: "agent", State: pb.SourceStatus_OK, Message: "1 agent", Duration: ms(220)},
		},
	}
}
