package cloud

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// pzSnapshot has zone a.cloud bound to the VPC, an inbound endpoint (no
// rule uses it) and an outbound one whose rule forwards corp.example.
func pzSnapshot() *Snapshot {
	s := snapshot(nil, sysTable())
	s.Zones = []Zone{{ID: "z-a", Name: "a.cloud."}}
	s.ZoneLookups = map[string]*ZoneLookup{}
	s.Endpoints = []ResolverEndpoint{
		{ID: "ep-in", VPCID: tVPC, Status: "SUCCESS", IPs: []netip.Addr{netip.MustParseAddr("192.168.0.200"), netip.MustParseAddr("192.168.1.200")}},
		{ID: "ep-out", VPCID: tVPC, Status: "SUCCESS", IPs: []netip.Addr{netip.MustParseAddr("192.168.0.201")}},
	}
	s.Rules = []ResolverRule{{ID: "rule-corp", Type: "OUTBOUND", Zone: "corp.example.", EndpointID: "ep-out",
		Forward: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53")}, VPCs: []ZoneVPC{{VPCID: tVPC, Region: tRegion}}}}
	return s
}

func pzConfig() *dnsprobe.Config {
	return &dnsprobe.Config{
		OnPremResolvers: []dnsprobe.Resolver{{Name: "ns1", Address: "10.0.0.53:53"}},
		PrivateZones:    []string{"a.cloud."},
		OnPremZones:     []string{"corp.example."},
		Forwarders:      []dnsprobe.Forwarder{{Zone: "a.cloud.", Targets: []string{"192.168.0.200:53"}}},
	}
}

func TestEvalPrivateZone(t *testing.T) {
	local := []string{"cluster.local."}
	cases := []struct {
		name   string
		mut    func(*Snapshot, *dnsprobe.Config)
		status pb.Status
		sub    string
	}{
		{"all good", func(*Snapshot, *dnsprobe.Config) {}, pb.Status_PASS, "on-prem zone corp.example is forwarded from VPC vpc-uf6test00000001 to 10.0.0.53:53 (rule rule-corp, endpoint ep-out)"},
		{"zone bound elsewhere", func(s *Snapshot, c *dnsprobe.Config) {
			c.PrivateZones = append(c.PrivateZones, "b.cloud.")
			s.ZoneLookups["b.cloud."] = &ZoneLookup{Found: true, ID: "z-b", BoundTo: []ZoneVPC{{VPCID: "vpc-x", Region: "cn-beijing"}}}
		}, pb.Status_FAIL, "PrivateZone zone b.cloud is not bound to the cluster's VPC vpc-uf6test00000001 (it is bound to vpc-x (cn-beijing))"},
		{"zone bound nowhere", func(s *Snapshot, c *dnsprobe.Config) {
			c.PrivateZones = append(c.PrivateZones, "b.cloud.")
			s.ZoneLookups["b.cloud."] = &ZoneLookup{Found: true, ID: "z-b"}
		}, pb.Status_FAIL, "(it is bound to no VPC)"},
		{"zone absent", func(s *Snapshot, c *dnsprobe.Config) {
			c.PrivateZones = append(c.PrivateZones, "b.cloud.")
			s.ZoneLookups["b.cloud."] = &ZoneLookup{}
		}, pb.Status_FAIL, "PrivateZone zone b.cloud (dns.privateZones) does not exist"},
		{"zone lookup failed", func(s *Snapshot, c *dnsprobe.Config) {
			c.PrivateZones = append(c.PrivateZones, "b.cloud.")
			s.ZoneLookups["b.cloud."] = &ZoneLookup{Err: &PartError{Part: PartZones, Action: actionDescribeZones, Err: errors.New("denied"), Permission: true}}
		}, pb.Status_ERROR, "looking it up failed: denied"},
		{"the cluster domain contains a bound zone", func(s *Snapshot, _ *dnsprobe.Config) {
			s.Zones = append(s.Zones, Zone{ID: "z-svc", Name: "svc.cluster.local."})
		}, pb.Status_FAIL, "cluster domain cluster.local contains the PrivateZone zone svc.cluster.local"},
		{"a bound zone contains the cluster domain", func(s *Snapshot, _ *dnsprobe.Config) {
			s.Zones = append(s.Zones, Zone{ID: "z-local", Name: "local."})
		}, pb.Status_FAIL, "cluster domain cluster.local lies inside the PrivateZone zone local"},
		{"a forwarder is not the inbound endpoint", func(_ *Snapshot, c *dnsprobe.Config) {
			c.Forwarders[0].Targets = []string{"192.168.9.9:53"}
		}, pb.Status_FAIL, "on-prem forwards PrivateZone zones to addresses that are not the inbound endpoint's (192.168.0.200:53, 192.168.1.200:53): a.cloud -> 192.168.9.9:53"},
		{"no inbound endpoint", func(s *Snapshot, _ *dnsprobe.Config) { s.Endpoints = s.Endpoints[1:] }, pb.Status_FAIL, "VPC vpc-uf6test00000001 has no PrivateZone inbound endpoint"},
		{"the configured inbound endpoint", func(s *Snapshot, c *dnsprobe.Config) {
			s.Expect.InboundEndpoint = []string{"ep-out"}
			c.Forwarders[0].Targets = []string{"192.168.0.201:53"}
		}, pb.Status_PASS, "on-prem forwards the PrivateZone zones to the inbound endpoint ep-out (192.168.0.201:53)"},
		{"an unhealthy inbound endpoint", func(s *Snapshot, _ *dnsprobe.Config) { s.Endpoints[0].Status = "EXCEPTION" }, pb.Status_WARN, "inbound endpoint ep-in is not healthy: ep-in is EXCEPTION"},
		{"no rule for an on-prem zone", func(s *Snapshot, _ *dnsprobe.Config) { s.Rules = nil }, pb.Status_FAIL, "on-prem zone corp.example has no forwarding rule for VPC"},
		{"a rule of a parent zone serves", func(s *Snapshot, c *dnsprobe.Config) {
			c.OnPremZones = []string{"dc1.corp.example."}
		}, pb.Status_PASS, "on-prem zone dc1.corp.example is forwarded"},
		{"a rule not bound to the VPC", func(s *Snapshot, _ *dnsprobe.Config) { s.Rules[0].VPCs = []ZoneVPC{{VPCID: "vpc-x", Region: tRegion}} },
			pb.Status_FAIL, "on-prem zone corp.example: forwarding rule rule-corp is not bound to VPC vpc-uf6test00000001"},
		{"a rule forwarding to the wrong resolver", func(s *Snapshot, _ *dnsprobe.Config) {
			s.Rules[0].Forward = []netip.AddrPort{netip.MustParseAddrPort("10.0.0.99:53")}
		}, pb.Status_FAIL, "forwarding rule rule-corp forwards not to 10.0.0.53:53 and to 10.0.0.99:53, which is not an on-prem resolver"},
		{"the rule's endpoint is gone", func(s *Snapshot, _ *dnsprobe.Config) { s.Rules[0].EndpointID = "ep-gone" },
			pb.Status_FAIL, "forwarding rule rule-corp uses endpoint ep-gone, which does not exist"},
		{"the rule's endpoint is failing", func(s *Snapshot, _ *dnsprobe.Config) { s.Endpoints[1].Status = "FAILED" },
			pb.Status_WARN, "forwarding rule rule-corp is right, but its endpoint ep-out is FAILED"},
	}
	for _, c := range cases {
		s, cfg := pzSnapshot(), pzConfig()
		c.mut(s, cfg)
		rs := evalPrivateZone(s, cfg, local, "test")
		if r := findResult(rs, c.status, c.sub); r == nil {
			t.Errorf("%s: no %s %q in:\n%s", c.name, c.status, c.sub, diagtest.Dump(rs))
		}
	}
	// Without the dns section only the cluster domain is judged.
	rs := evalPrivateZone(pzSnapshot(), nil, local, "test")
	if diagtest.StatusNames(rs) != "PASS,SKIP" || !strings.Contains(rs[1].Summary, "no dns section") {
		t.Errorf("no dns: %s", diagtest.Dump(rs))
	}
}

func findResult(rs []*pb.Result, st pb.Status, sub string) *pb.Result {
	for _, r := range rs {
		if r.Status == st && strings.Contains(r.Summary, sub) {
			return r
		}
	}
	return nil
}

func TestEvalECIVSwitches(t *testing.T) {
	s := snapshot(nil, sysTable())
	s.VSwitches["vsw-big"] = &VSwitch{ID: "vsw-big", VPCID: tVPC, Zone: "z", CIDR: "192.168.64.0/18", AvailableIPs: 1000}
	s.VSwitches["vsw-small"] = &VSwitch{ID: "vsw-small", VPCID: tVPC, Zone: "z", CIDR: "192.168.2.0/26", AvailableIPs: 20}
	s.VSwitches["vsw-tight"] = &VSwitch{ID: "vsw-tight", VPCID: tVPC, Zone: "z", CIDR: "192.168.3.0/24", AvailableIPs: 15}
	s.VSwitches["vsw-full"] = &VSwitch{ID: "vsw-full", VPCID: tVPC, Zone: "z", CIDR: "192.168.4.0/24", AvailableIPs: 0}
	s.OtherVSwitches = map[string]*VSwitch{"vsw-other": {ID: "vsw-other", VPCID: "vpc-x", Zone: "z", CIDR: "10.0.0.0/24"}}
	s.ECI = ECIConfig{VSwitches: []string{"vsw-big", "vsw-small", "vsw-tight", "vsw-full", "vsw-other", "vsw-gone"}}
	rs := evalECIVSwitches(s)
	// 1000 of 16380 is 6 %: below 10 %.
	want := []string{"WARN 1000 of 16380 free", "PASS 20 of 60 free", "WARN 15 of 252 free", "FAIL has no free IP address", "FAIL is in VPC vpc-x", "FAIL does not exist"}
	for i, w := range want {
		st, sub, _ := strings.Cut(w, " ")
		if i >= len(rs) || rs[i].Status.String() != st || !strings.Contains(rs[i].Summary, sub) {
			t.Errorf("result %d: want %s:\n%s", i, w, diagtest.Dump(rs))
		}
	}
	s.ECI = ECIConfig{}
	if rs := evalECIVSwitches(s); diagtest.StatusNames(rs) != "SKIP" {
		t.Errorf("no ECI vSwitch: %s", diagtest.Dump(rs))
	}
	s.ECI = ECIConfig{Err: errors.New("forbidden")}
	if rs := evalECIVSwitches(s); diagtest.StatusNames(rs) != "ERROR" || !strings.Contains(rs[0].Summary, "configmap kube-system/eci-profile") {
		t.Errorf("profile unread: %s", diagtest.Dump(rs))
	}
}

func TestECIConfig(t *testing.T) {
	profile := kube.ParseECIProfile(kubelab.ECIProfileFor("sg-profile01", "vsw-p1", "vsw-p2").Data)
	c := eciConfig(&kube.Snapshot{ECIProfile: profile}, &settings{})
	if strings.Join(c.SecurityGroups, ",") != "sg-profile01" || strings.Join(c.VSwitches, ",") != "vsw-p1,vsw-p2" || c.From != "ConfigMap kube-system/eci-profile" {
		t.Errorf("profile: %+v", c)
	}
	c = eciConfig(&kube.Snapshot{ECIProfile: profile}, &settings{eciVSwitches: []string{"vsw-c"}})
	if strings.Join(c.VSwitches, ",") != "vsw-c" || c.From != "ConfigMap kube-system/eci-profile and cloud.eciVSwitchIds" {
		t.Errorf("config over profile: %+v", c)
	}
	c = eciConfig(&kube.Snapshot{PartErrors: map[string]error{kube.PartECIProfile: errors.New("forbidden")}}, &settings{})
	if c.Err == nil || len(c.SecurityGroups) != 0 {
		t.Errorf("unread: %+v", c)
	}
}

// TestEvalSecurityGroupsTargets: nodes sharing groups are one target;
// ECI is another; an unreadable group ERRORs its target only.
func TestEvalSecurityGroupsTargets(t *testing.T) {
	n1, n2 := inst(tI1, tVswA, "192.168.0.11"), inst(tI2, tVswB, "192.168.1.12")
	n1.SecurityGroupIDs, n2.SecurityGroupIDs = []string{"sg-nodes"}, []string{"sg-nodes"}
	s := snapshot([]*Instance{n1, n2}, sysTable())
	s.SecurityGroups = map[string]*SecurityGroup{
		"sg-nodes": group(t, "sg-nodes", "Accept", "1 accept all -1/-1 172.16.0.0/12", "1 accept all -1/-1 sg-eci"),
		"sg-eci":   group(t, "sg-eci", "Accept", "1 accept all -1/-1 172.21.0.0/16"),
	}
	s.ResourceErrs = map[string]*PartError{}
	s.Expect.RequiredPorts = allTraffic
	s.ECI = ECIConfig{SecurityGroups: []string{"sg-eci"}, From: "test"}
	nodes := []*corev1.Node{testECSNode("a", tI1, "172.22.0.0/24", "192.168.0.11"), testECSNode("b", tI2, "172.22.1.0/24", "192.168.1.12"), onPremNode("dc", "172.21.0.0/24")}
	rs := evalSecurityGroups(s, nodes)
	if diagtest.StatusNames(rs) != "PASS,PASS" || !strings.Contains(rs[0].Summary, "ECS nodes a, b (security groups sg-nodes) admit all 9 required flows") {
		t.Errorf("%s", diagtest.Dump(rs))
	}
	delete(s.SecurityGroups, "sg-eci")
	s.ResourceErrs["sg-eci"] = &PartError{Part: PartGroupList, Action: actionDescribeSecurityGroupAttribute, Err: errors.New("Forbidden.RAM"), Permission: true}
	rs = evalSecurityGroups(s, nodes)
	if diagtest.StatusNames(rs) != "PASS,ERROR" || !strings.Contains(rs[1].Summary, "security group sg-eci could not be read") {
		t.Errorf("%s", diagtest.Dump(rs))
	}
	// Only the configured ports are required from on-prem.
	s.ECI = ECIConfig{}
	s.SecurityGroups["sg-nodes"] = group(t, "sg-nodes", "Accept", "1 accept tcp 10250/10250 172.21.0.0/16", "1 accept udp 53/53 172.16.0.0/12", "1 accept tcp 53/53 172.16.0.0/12")
	s.Expect.RequiredPorts, _ = parsePortSpec("tcp/10250")
	if rs := evalSecurityGroups(s, nodes); diagtest.StatusNames(rs) != "PASS" {
		t.Errorf("required ports: %s", diagtest.Dump(rs))
	}
}
