package cloud

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// Builders of small snapshots for the table tests.

const (
	tRegion = "cn-shanghai"
	tVPC    = "vpc-uf6test00000001"
	tVswA   = "vsw-uf6a00000000001"
	tVswB   = "vsw-uf6b00000000001"
	tSys    = "vtb-uf6system000001"
	tCustom = "vtb-uf6custom000001"
	tI1     = "i-uf6node100000001"
	tI2     = "i-uf6node200000001"
	tI3     = "i-uf6node300000001"
)

func testECSNode(name, instance, podCIDR, ip string) *corev1.Node {
	return kubelab.ECSNode(name, tRegion+"."+instance, podCIDR, ip)
}

func onPremNode(name, podCIDR string) *corev1.Node {
	return kubelab.OnPremNode(name, podCIDR, "10.10.0.1")
}

func inst(id, vsw, ip string) *Instance {
	return &Instance{ID: id, Region: tRegion, Status: "Running", VPCID: tVPC, VSwitchID: vsw, PrimaryIP: ip, PrivateIPs: []string{ip}}
}

func route(dest, typ string, hops ...NextHop) RouteEntry {
	return RouteEntry{ID: "rte-" + strings.NewReplacer(".", "", "/", "-").Replace(dest), Dest: netip.MustParsePrefix(dest), Type: typ, Status: "Available", NextHops: hops}
}

func toInst(id string) NextHop { return NextHop{Type: "Instance", ID: id, Enabled: true} }

func hop(typ, id string) NextHop { return NextHop{Type: typ, ID: id, Enabled: true} }

func toVBR() NextHop {
	return NextHop{Type: "RouterInterface", ID: "ri-uf6tovbr", OppositeType: "VirtualBorderRouter", OppositeID: "vbr-uf6line", Enabled: true}
}

func sysTable(entries ...RouteEntry) *RouteTable {
	base := []RouteEntry{route("192.168.0.0/24", "System"), route("192.168.1.0/24", "System"), route("100.64.0.0/10", "System")}
	return &RouteTable{ID: tSys, VPCID: tVPC, Type: "System", AssociateType: "VSwitch", VSwitchIDs: []string{tVswA}, Entries: append(base, entries...)}
}

func customTable(entries ...RouteEntry) *RouteTable {
	base := []RouteEntry{route("192.168.0.0/24", "System"), route("192.168.1.0/24", "System"), route("100.64.0.0/10", "System")}
	return &RouteTable{ID: tCustom, VPCID: tVPC, Type: "Custom", AssociateType: "VSwitch", VSwitchIDs: []string{tVswB}, Entries: append(base, entries...)}
}

// snapshot is a complete snapshot of tVPC with the given instances and
// tables; vSwitch A uses the system table, B the custom one.
func snapshot(instances []*Instance, tables ...*RouteTable) *Snapshot {
	s := &Snapshot{
		Region: tRegion, VPCID: tVPC, Credential: "test",
		VPC:          &VPC{ID: tVPC, CIDR: "192.168.0.0/16"},
		Instances:    map[string]*Instance{},
		Queried:      map[string]bool{},
		InstanceErrs: map[string]*PartError{},
		VSwitches: map[string]*VSwitch{
			tVswA: {ID: tVswA, VPCID: tVPC, CIDR: "192.168.0.0/24", RouteTableID: tSys, RouteTableType: "System"},
			tVswB: {ID: tVswB, VPCID: tVPC, CIDR: "192.168.1.0/24", RouteTableID: tCustom, RouteTableType: "Custom"},
		},
		Tables:          tables,
		Errors:          map[Part]*PartError{},
		RouteEntryQuota: 200,
	}
	for _, in := range instances {
		s.Instances[in.ID] = in
		s.Queried[in.ID] = true
	}
	return s
}

func one(t *testing.T, rs []*pb.Result, st pb.Status, sub string) *pb.Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("want one %s result with %q, got %d:%s", st, sub, len(rs), results(rs))
	}
	if rs[0].Status != st || !strings.Contains(rs[0].Summary, sub) {
		t.Fatalf("want %s %q, got:%s", st, sub, results(rs))
	}
	return rs[0]
}

func TestEvalECSInstances(t *testing.T) {
	n1 := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
	permErr := &PartError{Part: PartInstances, Action: actionDescribeInstances, Permission: true, Err: errors.New("ecs:DescribeInstances: Forbidden.RAM (HTTP 403)")}
	cases := []struct {
		name  string
		nodes []*corev1.Node
		snap  func() *Snapshot
		want  pb.Status
		sub   string
		more  []string // in summary, evidence or remediation
	}{
		{"all good", []*corev1.Node{n1}, func() *Snapshot { return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")}) },
			pb.Status_PASS, "all 1 ECS node(s) map to Running instances", []string{"in VPC " + tVPC}},
		{"alicloud:// prefix", []*corev1.Node{kubelab.ECSNode("n1", "alicloud://cn-shanghai."+tI1, "172.22.0.0/24", "192.168.0.11")},
			func() *Snapshot { return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")}) }, pb.Status_PASS, "all 1 ECS node(s)", nil},
		{"no ECS node", []*corev1.Node{onPremNode("dc", "172.21.0.0/24")}, func() *Snapshot { return snapshot(nil) },
			pb.Status_SKIP, "no ECS node", nil},
		{"joined after the node list", []*corev1.Node{n1}, func() *Snapshot { return snapshot(nil) },
			pb.Status_ERROR, "node n1 joined after the cloud source read the node list", nil},
		{"lookup failed", []*corev1.Node{n1}, func() *Snapshot {
			s := snapshot(nil)
			s.Queried[tI1], s.InstanceErrs[tI1] = true, permErr
			return s
		}, pb.Status_ERROR, "node n1: instance " + tI1 + " could not be looked up: ecs:DescribeInstances: Forbidden.RAM", []string{`"Action": ["ecs:DescribeInstances"]`}},
		{"absent", []*corev1.Node{n1}, func() *Snapshot {
			s := snapshot(nil)
			s.Queried[tI1] = true
			return s
		}, pb.Status_FAIL, "node n1: instance " + tI1 + " does not exist in region cn-shanghai", []string{"kubectl delete node n1", "DryRun confirmed"}},
		{"absent from the list but routed to", []*corev1.Node{n1}, func() *Snapshot {
			s := snapshot(nil, sysTable(route("172.22.0.0/24", "Custom", toInst(tI1))))
			s.Queried[tI1] = true
			return s
		}, pb.Status_ERROR, "is not visible to this credential, yet the VPC routes to it", []string{"172.22.0.0/24 (Custom) -> Instance " + tI1}},
		{"other region", []*corev1.Node{kubelab.ECSNode("n1", "cn-beijing."+tI1, "172.22.0.0/24", "192.168.0.11")}, func() *Snapshot {
			return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")})
		}, pb.Status_FAIL, "the instance is in region cn-shanghai, not cn-beijing as the providerID says", []string{"--provider-id to cn-shanghai." + tI1}},
		{"providerID without region", []*corev1.Node{kubelab.ECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")}, func() *Snapshot {
			return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")})
		}, pb.Status_WARN, "providerID has no region; the instance is in cn-shanghai", []string{"cn-shanghai." + tI1, "k8s.providerid-format"}},
		{"stopped", []*corev1.Node{n1}, func() *Snapshot {
			in := inst(tI1, tVswA, "192.168.0.11")
			in.Status = "Stopped"
			return snapshot([]*Instance{in})
		}, pb.Status_FAIL, "the instance is Stopped, not Running", []string{"aliyun ecs StartInstance --RegionId cn-shanghai --InstanceId " + tI1}},
		{"starting", []*corev1.Node{n1}, func() *Snapshot {
			in := inst(tI1, tVswA, "192.168.0.11")
			in.Status = "Starting"
			return snapshot([]*Instance{in})
		}, pb.Status_WARN, "the instance is Starting", nil},
		{"other IP", []*corev1.Node{n1}, func() *Snapshot { return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.99")}) },
			pb.Status_FAIL, "InternalIP 192.168.0.11 is not the instance's primary private IP 192.168.0.99", []string{"kubelet --node-ip=192.168.0.99"}},
		{"secondary IP", []*corev1.Node{n1}, func() *Snapshot {
			in := inst(tI1, tVswA, "192.168.0.99")
			in.PrivateIPs = append(in.PrivateIPs, "192.168.0.11")
			return snapshot([]*Instance{in})
		}, pb.Status_FAIL, "(it is a secondary IP of the instance)", nil},
		{"no InternalIP", []*corev1.Node{func() *corev1.Node {
			n := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
			n.Status.Addresses = nil
			return n
		}()}, func() *Snapshot { return snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")}) }, pb.Status_FAIL, "the node has no InternalIP", nil},
		{"other VPC", []*corev1.Node{n1}, func() *Snapshot {
			in := inst(tI1, tVswA, "192.168.0.11")
			in.VPCID = "vpc-uf6elsewhere0001"
			return snapshot([]*Instance{in})
		}, pb.Status_FAIL, "the instance is in VPC vpc-uf6elsewhere0001, not the cluster's VPC " + tVPC, []string{"ModifyInstanceVpcAttribute"}},
		{"several problems, worst wins", []*corev1.Node{n1}, func() *Snapshot {
			in := inst(tI1, tVswA, "192.168.0.99")
			in.Status = "Starting"
			return snapshot([]*Instance{in})
		}, pb.Status_FAIL, "the instance is Starting; InternalIP 192.168.0.11 is not", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := one(t, evalECSInstances(c.snap(), c.nodes), c.want, c.sub)
			all := r.Summary + r.Remediation + fmt.Sprint(r.Evidence)
			for _, m := range c.more {
				if !strings.Contains(all, m) {
					t.Errorf("result lacks %q: %s | %s | %v", m, r.Summary, r.Remediation, r.Evidence)
				}
			}
		})
	}
}

func TestEvalECSInstancesUnknownVPC(t *testing.T) {
	s := snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")})
	s.VPCID = ""
	s.Errors[PartVPC] = &PartError{Part: PartVPC, Action: actionDescribeInstances, Err: errors.New("the ECS nodes' instances are in 2 VPCs")}
	rs := evalECSInstances(s, []*corev1.Node{testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")})
	one(t, rs, pb.Status_ERROR, "the cluster's VPC is unknown, so no instance's VPC was judged: the ECS nodes' instances are in 2 VPCs")
}

func TestEvalPodRoutes(t *testing.T) {
	n1 := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
	n2 := testECSNode("n2", tI2, "172.22.1.0/24", "192.168.0.12")
	i1, i2 := inst(tI1, tVswA, "192.168.0.11"), inst(tI2, tVswA, "192.168.0.12")
	good1, good2 := route("172.22.0.0/24", "Custom", toInst(tI1)), route("172.22.1.0/24", "Custom", toInst(tI2))
	type want struct {
		st  pb.Status
		sub string
	}
	cases := []struct {
		name  string
		nodes []*corev1.Node
		snap  *Snapshot
		want  []want
		more  []string
	}{
		{"one table, all routed", []*corev1.Node{n1, n2}, snapshot([]*Instance{i1, i2}, sysTable(good1, good2)),
			[]want{{pb.Status_PASS, "route table " + tSys + " (system, vSwitches of n1, n2): all 2 ECS podCIDR(s) route to their instances"}}, nil},
		{"missing, an aggregate covers it", []*corev1.Node{n1, n2}, snapshot([]*Instance{i1, i2}, sysTable(good1, route("172.22.0.0/16", "Custom", toInst(tI3)))),
			[]want{{pb.Status_FAIL, "1 of 2 ECS podCIDR(s) not routed to their instance: 172.22.1.0/24 (node n2)"}},
			[]string{"missing; longest match: 172.22.0.0/16 (Custom) -> Instance " + tI3}},
		{"next hop is another node's instance", []*corev1.Node{n1, n2}, snapshot([]*Instance{i1, i2}, sysTable(good1, route("172.22.1.0/24", "Custom", toInst(tI1)))),
			[]want{{pb.Status_FAIL, "172.22.1.0/24 (node n2)"}},
			[]string{"wrong entry: 172.22.1.0/24 (Custom) -> Instance " + tI1 + " (node n1's instance)", "DeleteRouteEntry"}},
		{"next hop is an ENI", []*corev1.Node{n1}, snapshot([]*Instance{i1}, sysTable(route("172.22.0.0/24", "Custom", hop("NetworkInterface", "eni-uf6x")))),
			[]want{{pb.Status_FAIL, "172.22.0.0/24 (node n1)"}}, []string{"NetworkInterface eni-uf6x"}},
		{"ECMP over two instances", []*corev1.Node{n1}, snapshot([]*Instance{i1}, sysTable(route("172.22.0.0/24", "Custom", toInst(tI1), toInst(tI3)))),
			[]want{{pb.Status_FAIL, "172.22.0.0/24 (node n1)"}}, nil},
		{"learned, not custom", []*corev1.Node{n1}, snapshot([]*Instance{i1}, sysTable(route("172.22.0.0/24", "BGP", toVBR()))),
			[]want{{pb.Status_FAIL, "172.22.0.0/24 (node n1)"}}, []string{"(BGP) -> RouterInterface"}},
		{"two tables, present in one only", []*corev1.Node{n1, n2}, func() *Snapshot {
			b := inst(tI2, tVswB, "192.168.1.12")
			return snapshot([]*Instance{i1, b}, sysTable(good1, good2), customTable(good1))
		}(), []want{
			{pb.Status_PASS, "route table " + tSys + " (system, vSwitches of n1)"},
			{pb.Status_FAIL, "route table " + tCustom + " (custom, vSwitches of n2): 1 of 2 ECS podCIDR(s) not routed to their instance: 172.22.1.0/24 (node n2) (1 of them present in another route table of the VPC)"},
		}, []string{"present in " + tSys, `routeTableIDs: "` + tSys + "," + tCustom + `"`}},
		{"association from the table's vSwitch list", []*corev1.Node{n1}, func() *Snapshot {
			s := snapshot([]*Instance{inst(tI1, tVswB, "192.168.0.11")}, sysTable(), customTable(good1))
			s.VSwitches = map[string]*VSwitch{}
			return s
		}(), []want{{pb.Status_PASS, "route table " + tCustom}}, nil},
		{"unlisted vSwitch uses the system table", []*corev1.Node{n1}, func() *Snapshot {
			s := snapshot([]*Instance{inst(tI1, "vsw-uf6unlisted0001", "192.168.0.11")}, sysTable(good1), customTable())
			return s
		}(), []want{{pb.Status_PASS, "route table " + tSys}}, nil},
		{"stale route to a released instance", []*corev1.Node{n1}, snapshot([]*Instance{i1}, sysTable(good1, route("172.22.9.0/24", "Custom", toInst("i-uf6gone00000001")),
			route("10.99.0.0/24", "Custom", toInst("i-uf6vpnbox000001")))),
			[]want{{pb.Status_PASS, "all 1 ECS podCIDR(s)"}, {pb.Status_WARN, "1 stale pod route(s) for no current node: 172.22.9.0/24 -> i-uf6gone00000001 (no current node's instance)"}},
			[]string{"DeleteRouteEntry --RegionId cn-shanghai --RouteTableId " + tSys + " --RouteEntryId rte-1722290-24"}},
		{"stale route to a node's old podCIDR", []*corev1.Node{n1}, snapshot([]*Instance{i1}, sysTable(good1, route("172.22.7.0/24", "Custom", toInst(tI1)))),
			[]want{{pb.Status_PASS, ""}, {pb.Status_WARN, "172.22.7.0/24 -> " + tI1 + " (node n1's instance, which has another podCIDR now)"}}, nil},
		{"a route for an on-prem podCIDR is not stale", []*corev1.Node{n1, onPremNode("dc", "172.22.8.0/24")}, snapshot([]*Instance{i1}, sysTable(good1, route("172.22.8.0/24", "Custom", toInst(tI3)))),
			[]want{{pb.Status_PASS, ""}}, nil},
		{"pending", []*corev1.Node{n1}, func() *Snapshot {
			e := good1
			e.Status = "Pending"
			return snapshot([]*Instance{i1}, sysTable(e))
		}(), []want{{pb.Status_PASS, ""}, {pb.Status_WARN, "1 pod route(s) not yet Available: 172.22.0.0/24 (node n1): Pending"}}, nil},
		{"near the quota", []*corev1.Node{n1}, func() *Snapshot {
			es := []RouteEntry{good1}
			for i := 0; i < 180; i++ {
				es = append(es, route(fmt.Sprintf("10.%d.%d.0/24", 100+i/200, i%200), "Custom", hop("VpnGateway", "vpn-uf6x")))
			}
			return snapshot([]*Instance{i1}, sysTable(es...))
		}(), []want{{pb.Status_PASS, ""}, {pb.Status_WARN, "holds 181 custom route entries of its quota 200"}}, []string{"vpc_quota_route_entrys_num"}},
		{"entries not read", []*corev1.Node{n1, n2}, func() *Snapshot {
			b := inst(tI2, tVswB, "192.168.1.12")
			c := customTable()
			c.EntriesErr = &PartError{Part: PartTables, Action: actionDescribeRouteEntryList, Permission: true, Err: errors.New("vpc:DescribeRouteEntryList: Forbidden.RAM (HTTP 403)")}
			return snapshot([]*Instance{i1, b}, sysTable(good1, good2), c)
		}(), []want{{pb.Status_PASS, tSys}, {pb.Status_ERROR, "route table " + tCustom + " (custom, vSwitches of n2): entries could not be read: vpc:DescribeRouteEntryList: Forbidden.RAM"}}, nil},
		{"instance in another VPC is left to ecs-instances", []*corev1.Node{n1, n2}, func() *Snapshot {
			o := inst(tI2, tVswA, "192.168.0.12")
			o.VPCID = "vpc-uf6elsewhere0001"
			return snapshot([]*Instance{i1, o}, sysTable(good1))
		}(), []want{{pb.Status_PASS, "all 1 ECS podCIDR(s)"}}, nil},
		{"IPv6 podCIDR too", []*corev1.Node{func() *corev1.Node {
			n := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
			n.Spec.PodCIDRs = []string{"172.22.0.0/24", "fd00:22::/64"}
			return n
		}()}, snapshot([]*Instance{i1}, sysTable(good1)), []want{{pb.Status_FAIL, "1 of 2 ECS podCIDR(s) not routed to their instance: fd00:22::/64 (node n1)"}}, nil},
		{"no ECS node in the VPC", []*corev1.Node{n1}, func() *Snapshot {
			o := inst(tI1, tVswA, "192.168.0.11")
			o.VPCID = "vpc-uf6elsewhere0001"
			return snapshot([]*Instance{o}, sysTable())
		}(), []want{{pb.Status_SKIP, "no ECS node's instance is in the cluster's VPC"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := evalPodRoutes(c.snap, c.nodes)
			if len(rs) != len(c.want) {
				t.Fatalf("%d results, want %d:%s", len(rs), len(c.want), results(rs))
			}
			var all strings.Builder
			for i, w := range c.want {
				if rs[i].Status != w.st || !strings.Contains(rs[i].Summary, w.sub) {
					t.Errorf("result %d: want %s %q:%s", i, w.st, w.sub, results(rs))
				}
				fmt.Fprint(&all, rs[i].Summary, rs[i].Remediation, rs[i].Evidence)
			}
			for _, m := range c.more {
				if !strings.Contains(all.String(), m) {
					t.Errorf("results lack %q:\n%s", m, all.String())
				}
			}
		})
	}
}

func TestEvalPodRoutesNetworkUnavailable(t *testing.T) {
	cond := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated", Message: "Node created without a route"}
	n1 := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
	n1.Status.Conditions = append(n1.Status.Conditions, cond)
	i1 := inst(tI1, tVswA, "192.168.0.11")

	rs := evalPodRoutes(snapshot([]*Instance{i1}, sysTable()), []*corev1.Node{n1})
	r := one(t, rs, pb.Status_FAIL, "172.22.0.0/24 (node n1)")
	if !strings.Contains(fmt.Sprint(r.Evidence), "node reports NetworkUnavailable=True (NoRouteCreated") {
		t.Errorf("evidence %v", r.Evidence)
	}
	rs = evalPodRoutes(snapshot([]*Instance{i1}, sysTable(route("172.22.0.0/24", "Custom", toInst(tI1)))), []*corev1.Node{n1})
	if len(rs) != 2 || rs[1].Status != pb.Status_WARN || !strings.Contains(rs[1].Summary, "routed in every table but still report NetworkUnavailable: n1") {
		t.Errorf("got:%s", results(rs))
	}
}

func TestEvalPodRoutesPartErrors(t *testing.T) {
	n1 := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
	s := snapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")})
	s.Errors[PartTables] = &PartError{Part: PartTables, Action: actionDescribeRouteTableList, Permission: true, Err: errors.New("no route table listed")}
	r := one(t, evalPodRoutes(s, []*corev1.Node{n1}), pb.Status_ERROR, "could not read the route tables: no route table listed")
	if !strings.Contains(r.Remediation, "vpc:DescribeRouteTableList") {
		t.Errorf("remediation %q", r.Remediation)
	}

	s = snapshot(nil, sysTable())
	s.Queried[tI1] = true
	s.InstanceErrs[tI1] = &PartError{Part: PartInstances, Action: actionDescribeInstances, Permission: true, Err: errors.New("denied")}
	rs := evalPodRoutes(s, []*corev1.Node{n1})
	if len(rs) != 2 || rs[0].Status != pb.Status_ERROR || !strings.Contains(rs[0].Summary, "the instances of 1 ECS node(s) could not be read") {
		t.Errorf("got:%s", results(rs))
	}
}

func TestEvalOnPremRoutes(t *testing.T) {
	n1 := testECSNode("n1", tI1, "172.22.0.0/24", "192.168.0.11")
	dc := onPremNode("dc-1", "172.21.0.0/24")
	i1 := inst(tI1, tVswA, "192.168.0.11")
	nat := route("0.0.0.0/0", "Custom", hop("NatGateway", "ngw-uf6x"))
	cases := []struct {
		name    string
		nodes   []*corev1.Node
		onPrem  []string
		entries []RouteEntry
		want    pb.Status
		sub     string
		more    []string
	}{
		{"learned by BGP", []*corev1.Node{n1, dc}, nil, []RouteEntry{nat, route("172.21.0.0/24", "BGP", toVBR())},
			pb.Status_PASS, "1 on-prem CIDR(s) route toward the leased line in the route tables of the ECS nodes' vSwitches (" + tSys + "): 172.21.0.0/24 (node dc-1)", nil},
		{"an aggregate learned by BGP", []*corev1.Node{n1, dc}, nil, []RouteEntry{nat, route("172.21.0.0/16", "BGP", toVBR())}, pb.Status_PASS, "172.21.0.0/24", nil},
		{"static to the VBR", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom", toVBR())}, pb.Status_PASS, "", nil},
		{"via an Express Connect Router", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "ECR", hop("Ecr", "ecr-uf6x"))}, pb.Status_PASS, "", nil},
		{"via a transit router", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom", hop("Attachment", "tr-attach-x"))}, pb.Status_PASS, "", nil},
		{"learned from CEN", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "CEN", hop("Attachment", "tr-attach-x"))}, pb.Status_PASS, "", nil},
		{"NAT default route", []*corev1.Node{n1, dc}, nil, []RouteEntry{nat},
			pb.Status_FAIL, "on-prem CIDR 172.21.0.0/24 (node dc-1) is not routed toward the leased line: in " + tSys + " its longest match is 0.0.0.0/0 (Custom) -> NatGateway ngw-uf6x",
			[]string{"bgp.podcidr-advertised", "--NextHopType RouterInterface --NextHopId <router interface of the VBR>"}},
		{"no route at all", []*corev1.Node{n1, dc}, nil, nil, pb.Status_FAIL, "its longest match is no route: the VPC drops it", nil},
		{"an instance", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/16", "Custom", toInst("i-uf6router00001"))}, pb.Status_FAIL, "Instance i-uf6router00001", nil},
		{"a HaVip", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom", hop("HaVip", "havip-x"))}, pb.Status_FAIL, "HaVip havip-x", nil},
		{"a secondary ENI", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom", hop("NetworkInterface", "eni-x"))}, pb.Status_FAIL, "NetworkInterface eni-x", nil},
		{"a peer VPC's router interface", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom",
			NextHop{Type: "RouterInterface", ID: "ri-peer", OppositeType: "VRouter", OppositeID: "vrt-peer"})}, pb.Status_FAIL, "(to VRouter vrt-peer)", nil},
		{"a VPN gateway", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "Custom", hop("VpnGateway", "vpn-x"))}, pb.Status_WARN, "over a VPN gateway, not the leased line", nil},
		{"a custom route overrides the BGP one", []*corev1.Node{n1, dc}, nil, []RouteEntry{route("172.21.0.0/24", "BGP", toVBR()), route("172.21.0.0/24", "Custom", hop("NatGateway", "ngw-y"))},
			pb.Status_FAIL, "NatGateway ngw-y", nil},
		{"part of it goes elsewhere", []*corev1.Node{n1}, []string{"10.10.0.0/16"}, []RouteEntry{route("10.10.0.0/16", "BGP", toVBR()), route("10.10.5.0/24", "Custom", toInst("i-uf6lab00000001"))},
			pb.Status_WARN, "part of it, 10.10.5.0/24, goes elsewhere", nil},
		{"overlaps the VPC", []*corev1.Node{n1, onPremNode("dc-9", "192.168.1.0/24")}, nil, []RouteEntry{nat}, pb.Status_FAIL, "the system route 192.168.1.0/24 of a vSwitch: the CIDR overlaps the VPC",
			[]string{"overlaps the VPC CIDR 192.168.0.0/16"}},
		{"inside 100.64.0.0/10", []*corev1.Node{n1, onPremNode("dc-4", "100.100.8.0/24")}, nil, []RouteEntry{nat}, pb.Status_FAIL, "the system route for Alibaba Cloud services 100.64.0.0/10",
			[]string{"k8s.podcidr-overlap"}},
		{"a configured network", []*corev1.Node{n1}, []string{"10.10.0.0/16"}, []RouteEntry{route("10.10.0.0/16", "Custom", toVBR())}, pb.Status_PASS, "10.10.0.0/16 (cloud.onPremCIDRs)", nil},
		{"nothing on-prem", []*corev1.Node{n1}, nil, nil, pb.Status_SKIP, "no on-prem node has a podCIDR and cloud.onPremCIDRs is empty", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := snapshot([]*Instance{i1}, sysTable(c.entries...))
			for _, p := range c.onPrem {
				s.OnPremCIDRs = append(s.OnPremCIDRs, netip.MustParsePrefix(p))
			}
			r := one(t, evalOnPremRoutes(s, c.nodes), c.want, c.sub)
			all := r.Summary + r.Remediation + fmt.Sprint(r.Evidence)
			for _, m := range c.more {
				if !strings.Contains(all, m) {
					t.Errorf("result lacks %q: %s", m, all)
				}
			}
		})
	}
}

func TestEvalOnPremRoutesTables(t *testing.T) {
	dc := onPremNode("dc-1", "172.21.0.0/24")
	bgpRoute := route("172.21.0.0/24", "BGP", toVBR())
	nat := route("0.0.0.0/0", "Custom", hop("NatGateway", "ngw-uf6x"))

	// No ECS node: every vSwitch table of the VPC is judged; a gateway
	// table is not; the fix names the VBR router interface in use.
	gw := &RouteTable{ID: "vtb-uf6gateway00001", VPCID: tVPC, Type: "Custom", AssociateType: "Gateway"}
	s := snapshot(nil, sysTable(bgpRoute, route("10.0.0.0/8", "Custom", toVBR())), customTable(nat), gw)
	rs := evalOnPremRoutes(s, []*corev1.Node{dc})
	r := one(t, rs, pb.Status_FAIL, "in "+tCustom+" its longest match is 0.0.0.0/0")
	if strings.Contains(r.Summary, tSys) || !strings.Contains(r.Remediation, "--RouteTableId "+tCustom+" --DestinationCidrBlock 172.21.0.0/24 --NextHopType RouterInterface --NextHopId ri-uf6tovbr") {
		t.Errorf("got %s | %s", r.Summary, r.Remediation)
	}

	// A table whose entries were not read: ERROR for it, the others judged.
	c := customTable()
	c.EntriesErr = &PartError{Part: PartTables, Action: actionDescribeRouteEntryList, Err: errors.New("timed out")}
	rs = evalOnPremRoutes(snapshot(nil, sysTable(bgpRoute), c), []*corev1.Node{dc})
	if len(rs) != 2 || rs[0].Status != pb.Status_ERROR || !strings.Contains(rs[0].Summary, "route table "+tCustom+": entries could not be read: timed out") || rs[1].Status != pb.Status_PASS {
		t.Errorf("got:%s", results(rs))
	}

	// The VPC itself is unknown: one ERROR.
	s = snapshot(nil)
	s.VPCID = ""
	s.Errors[PartVPC] = &PartError{Part: PartVPC, Action: actionDescribeInstances, Err: errors.New("set cloud.vpcId")}
	one(t, evalOnPremRoutes(s, []*corev1.Node{dc}), pb.Status_ERROR, "set cloud.vpcId")
}

func TestLongestMatchAndPodRange(t *testing.T) {
	ix := indexTable(sysTable(route("0.0.0.0/0", "Custom", hop("NatGateway", "n")), route("172.16.0.0/12", "BGP", toVBR()), route("172.21.0.0/16", "Custom", toVBR()),
		route("172.21.4.0/24", "Custom", toInst("i-x")), route("fd00::/8", "Custom", toVBR())))
	for in, want := range map[string]string{
		"172.21.0.0/24": "172.21.0.0/16", "172.21.4.0/24": "172.21.4.0/24", "172.21.4.128/25": "172.21.4.0/24",
		"172.20.0.0/24": "172.16.0.0/12", "8.8.8.0/24": "0.0.0.0/0", "192.168.1.7/32": "192.168.1.0/24",
		"100.100.2.136/32": "100.64.0.0/10", "172.16.0.0/11": "0.0.0.0/0", "fd00:1::/64": "fd00::/8", "2001:db8::/32": "",
	} {
		got := ix.longest(netip.MustParsePrefix(in))
		if (got == nil && want != "") || (got != nil && got.Dest.String() != want) {
			t.Errorf("longest(%s) = %v, want %s", in, got, want)
		}
	}
	if ms := ix.moreSpecific(netip.MustParsePrefix("172.21.0.0/16")); len(ms) != 1 || ms[0].Dest.String() != "172.21.4.0/24" {
		t.Errorf("moreSpecific = %v", ms)
	}
	for _, c := range []struct {
		in     []string
		v4, v6 string
	}{
		{[]string{"172.22.0.0/24", "172.22.1.0/24"}, "172.22.0.0/16", "invalid Prefix"},
		{[]string{"172.22.0.0/24", "172.23.9.0/24"}, "172.22.0.0/15", "invalid Prefix"},
		{[]string{"10.0.0.0/24", "172.22.0.0/24"}, "0.0.0.0/0", "invalid Prefix"},
		{[]string{"10.244.3.0/24", "fd00:10:244:3::/64"}, "10.244.0.0/16", "fd00:10:244::/48"},
	} {
		var ps []netip.Prefix
		for _, s := range c.in {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		v4, v6 := podRange(ps)
		if v4.String() != c.v4 || v6.String() != c.v6 {
			t.Errorf("podRange(%v) = %s, %s; want %s, %s", c.in, v4, v6, c.v4, c.v6)
		}
	}
}
