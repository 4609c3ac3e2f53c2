package host

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{HostRoot: "host"}, `hostRoot: "host" is not an absolute path`},
		{Config{Netns: "ns"}, `netns: "ns" is not an absolute path`},
		{Config{LeasedLineInterface: "all"}, `leasedLineInterface: "all" is not an interface name`},
		{Config{LeasedLineInterface: "a-very-long-interface"}, `leasedLineInterface: "a-very-long-interface" is not an interface name`},
		{Config{LeasedLineCIDRs: []string{"10.0.0.0/33"}}, `leasedLineCIDRs[0]: "10.0.0.0/33" is not a CIDR`},
		{Config{NodePortRange: "32767-30000"}, `nodePortRange: "32767-30000" is not a port range such as 30000-32767`},
		{Config{NodePortRange: "30000"}, `nodePortRange: "30000" is not a port range`},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	c := &Config{HostRoot: "/host/", NodePortRange: "20000-22767"}
	if err := c.Validate(); err != nil || c.norm.root != "/host" || c.norm.nodePorts != [2]int{20000, 22767} || c.norm.cidrs[0].String() != "100.64.0.0/10" {
		t.Errorf("defaults: %+v %v", c.norm, err)
	}
}

func TestParseResolvConf(t *testing.T) {
	rc := parseResolvConf("/etc/resolv.conf", "# comment\nnameserver 10.0.0.53 ; trailing\nnameserver 2001:db8::53\ndomain a.example\nsearch corp.example svc.example\noptions ndots:2 edns0\n")
	if strings.Join(rc.Nameservers, ",") != "10.0.0.53,2001:db8::53" || strings.Join(rc.Search, ",") != "corp.example,svc.example" || strings.Join(rc.Options, ",") != "ndots:2,edns0" {
		t.Errorf("%+v", rc)
	}
	if !parseResolvConf("", "nameserver 127.0.0.53\nnameserver ::1\n").loopbackOnly() || parseResolvConf("", "nameserver 127.0.0.53\nnameserver 10.0.0.1\n").loopbackOnly() {
		t.Error("loopbackOnly")
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		list   string
		lo, hi int
		want   bool
	}{
		{"30000-32767", 30000, 32767, true},
		{"30000-31000,31001-32767", 30000, 32767, true},
		{"30000-31000", 30000, 32767, false},
		{"", 30000, 32767, false},
		{"8080,30000-32767", 30000, 32767, true},
	} {
		if got := covers(tc.list, tc.lo, tc.hi); got != tc.want {
			t.Errorf("covers(%q, %d, %d) = %v", tc.list, tc.lo, tc.hi, got)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	for name, want := range map[string]string{
		"net.ipv4.ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.eth0.100.rp_filter": "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"net.netfilter.nf_conntrack_max":   "/proc/sys/net/netfilter/nf_conntrack_max",
	} {
		if got := SysctlPath(name); got != want {
			t.Errorf("%s: %s", name, got)
		}
	}
}

func TestEvalSysctls(t *testing.T) {
	base := func(kv ...string) *Facts {
		f := &Facts{NodePortRange: [2]int{30000, 32767}, LeasedLineInterface: "eth1", SysctlErrors: map[string]string{},
			Sysctls: map[string]string{sysIPForward: "1", sysRPFilterAll: "0", sysRPFilterDef: "0", rpFilter("eth1"): "0", sysPortRange: "32768 60999", sysReservedPorts: ""}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Sysctls[kv[i]] = kv[i+1]
		}
		return f
	}
	cases := []struct {
		name string
		f    *Facts
		want string
	}{
		{"good", base(), "PASS,PASS,PASS,PASS"},
		{"loose everywhere", base(sysRPFilterAll, "2", rpFilter("eth1"), "2"), "PASS,PASS,PASS,PASS"},
		{"default strict", base(sysRPFilterDef, "1"), "PASS,WARN,PASS,PASS"},
		{"tw_recycle on", base(sysTWRecycle, "1"), "PASS,PASS,FAIL,PASS"},
		{"range below", base(sysPortRange, "1024 29999"), "PASS,PASS,PASS,PASS"},
		{"range reserved", base(sysPortRange, "1024 65000", sysReservedPorts, "30000-32767"), "PASS,PASS,PASS,PASS"},
		{"range garbage", base(sysPortRange, "lots"), "PASS,PASS,PASS,ERROR"},
		{"unreadable", func() *Facts {
			f := base()
			delete(f.Sysctls, sysIPForward)
			f.SysctlErrors[sysIPForward] = "permission denied"
			return f
		}(), "ERROR,PASS,PASS,PASS"},
		{"another namespace", func() *Facts { f := base(); f.NetnsNote = "vnodediag runs in another network namespace"; return f }(), "WARN,WARN,WARN,WARN"},
	}
	for _, tc := range cases {
		if got := evalSysctls(tc.f); diagtest.StatusNames(got) != tc.want {
			t.Errorf("%s: %s", tc.name, diagtest.Dump(got))
		}
	}
}

func TestEvalConntrack(t *testing.T) {
	for _, tc := range []struct {
		count, max string
		want       pb.Status
	}{
		{"100", "1000", pb.Status_PASS}, {"800", "1000", pb.Status_WARN}, {"950", "1000", pb.Status_FAIL}, {"", "", pb.Status_SKIP}, {"x", "1000", pb.Status_ERROR},
	} {
		f := &Facts{Sysctls: map[string]string{}}
		if tc.count != "" {
			f.Sysctls[sysCTCount], f.Sysctls[sysCTMax] = tc.count, tc.max
		}
		if got := evalConntrack(f); got[0].Status != tc.want {
			t.Errorf("%s/%s: %s", tc.count, tc.max, diagtest.Dump(got))
		}
	}
}

func TestEvalFirewallUFW(t *testing.T) {
	rules := parseUFWRules("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### deny any any 0.0.0.0/0 any 192.168.10.0/24 in\nnot a tuple\n")
	f := &Facts{LeasedLineCIDRs: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, UFW: UFW{Installed: true, Enabled: true, DefaultForwardPolicy: "DROP", Rules: rules}}
	got := evalFirewall(f, nil)
	if diagtest.StatusNames(got) != "WARN" || !strings.HasSuffix(got[0].Summary, "its forward policy DROP drops traffic to and from the pods") ||
		!strings.Contains(diagtest.Dump(got), "deny in from 192.168.10.0/24 port any to 0.0.0.0/0 port any proto any") ||
		strings.Contains(diagtest.Dump(got), "allow in from 0.0.0.0/0") {
		t.Errorf("%s", diagtest.Dump(got))
	}
	f.UFW.Enabled = false
	f.Firewalld = Firewalld{Installed: true, Enabled: true}
	if got := evalFirewall(f, nil); diagtest.StatusNames(got) != "WARN" || !strings.HasPrefix(got[0].Summary, "firewalld is not running but is enabled") {
		t.Errorf("enabled: %s", diagtest.Dump(got))
	}
	f.Firewalld.Masked = true
	if got := evalFirewall(f, nil); diagtest.StatusNames(got) != "PASS" {
		t.Errorf("masked: %s", diagtest.Dump(got))
	}
	// Pod CIDRs from the cluster are watched too.
	z, err := parseZone("trusted", "/etc/firewalld/zones/trusted.xml", []byte(`<zone target="ACCEPT"><source address="172.21.0.0/16"/><rule family="ipv4"><destination address="172.21.3.0/24"/><drop/></rule></zone>`))
	if err != nil {
		t.Fatal(err)
	}
	f.Firewalld = Firewalld{Installed: true, Running: true, RunningWhy: "process 1 (firewalld)", DefaultZone: "public", Zones: []Zone{z}}
	got = evalFirewall(f, []netip.Prefix{netip.MustParsePrefix("172.21.3.0/24")})
	if !strings.Contains(diagtest.Dump(got), "touches: source 172.21.0.0/16; rule family=ipv4 destination address=172.21.3.0/24 drop") {
		t.Errorf("zone: %s", diagtest.Dump(got))
	}
}

func TestEvalResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *Facts
		want string
	}{
		{"none", &Facts{EtcResolv: &ResolvConf{Path: "/etc/resolv.conf"}}, "FAIL /etc/resolv.conf lists no nameserver"},
		{"stub, no kubelet config", &Facts{EtcResolv: parseResolvConf("/etc/resolv.conf", "nameserver 127.0.0.53\n")}, "WARN /etc/resolv.conf lists only loopback nameservers"},
		{"four", &Facts{EtcResolv: parseResolvConf("/etc/resolv.conf", "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n")},
			"WARN /etc/resolv.conf lists 4 nameservers: the resolver and the kubelet use only the first three (10.0.0.1, 10.0.0.2, 10.0.0.3)"},
		{"missing", &Facts{EtcResolv: &ResolvConf{Path: "/etc/resolv.conf", Err: "no such file"}}, "FAIL cannot read /etc/resolv.conf"},
	} {
		got := evalResolvConf(tc.f)
		if s := got[0].Status.String() + " " + got[0].Summary; !strings.HasPrefix(s, tc.want) {
			t.Errorf("%s: %s", tc.name, s)
		}
	}
}
