package cloud

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// rule builds a parsed rule: "1 accept tcp 80/80 10.0.0.0/8" or with a
// group source "1 accept all -1/-1 sg-x".
func rule(t *testing.T, id, spec string) SGRule {
	t.Helper()
	f := strings.Fields(spec)
	src, group, plist := f[4], "", ""
	switch {
	case strings.HasPrefix(src, "sg-"):
		src, group = "", src
	case strings.HasPrefix(src, "pl-"):
		src, plist = "", src
	}
	r, err := parseRule(id, f[0], f[1], f[2], f[3], src, group, plist, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func group(t *testing.T, id, inner string, rules ...string) *SecurityGroup {
	t.Helper()
	g := &SecurityGroup{ID: id, InnerAccessPolicy: inner}
	for i, r := range rules {
		g.Rules = append(g.Rules, rule(t, fmt.Sprintf("r%d", i+1), r))
	}
	return g
}

func cidrSource(cidrs ...string) flowSource {
	s := flowSource{Label: strings.Join(cidrs, ",")}
	for _, c := range cidrs {
		s.Prefixes = append(s.Prefixes, netip.MustParsePrefix(c))
	}
	return s
}

// verdicts renders evaluateFlow's answer compactly: "1-52 ok r1; 53 drop r2".
func verdicts(vs []segmentVerdict) string {
	var out []string
	for _, v := range vs {
		seg := ""
		if v.Lo != 0 || v.Hi != 0 {
			seg = fmt.Sprintf("%d-%d ", v.Lo, v.Hi)
		}
		switch {
		case v.Admitted:
			out = append(out, seg+"ok "+v.Rule.group+"/"+v.Rule.ID)
		case v.Rule != nil && v.Partial:
			out = append(out, seg+"partial-drop "+v.Rule.group+"/"+v.Rule.ID)
		case v.Rule != nil:
			out = append(out, seg+"drop "+v.Rule.group+"/"+v.Rule.ID)
		case v.PartlyAdmitted != nil:
			out = append(out, seg+"part "+v.PartlyAdmitted.ID)
		default:
			out = append(out, seg+"none")
		}
		if len(v.Unjudged) > 0 {
			out[len(out)-1] += " (unjudged " + v.Unjudged[0].ID + ")"
		}
	}
	return strings.Join(out, "; ")
}

func TestEvaluateFlow(t *testing.T) {
	tcpAll := PortSpec{"tcp", 1, 65535}
	udp53 := PortSpec{"udp", 53, 53}
	icmp := PortSpec{"icmp", 0, 0}
	onprem := cidrSource("172.21.0.0/24")
	cases := []struct {
		name   string
		groups []*SecurityGroup
		src    flowSource
		spec   PortSpec
		want   string
	}{
		{"nothing admits", []*SecurityGroup{group(t, "sg-a", "Accept")}, onprem, tcpAll, "1-65535 none"},
		{"accept all -1/-1", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 172.21.0.0/16")}, onprem, tcpAll, "1-65535 ok sg-a/r1"},
		{"accept tcp -1/-1 is every port", []*SecurityGroup{group(t, "sg-a", "Accept", "5 accept tcp -1/-1 0.0.0.0/0")}, onprem, tcpAll, "1-65535 ok sg-a/r1"},
		{"drop beats accept at equal priority", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 accept all -1/-1 172.21.0.0/16", "1 drop udp 53/53 0.0.0.0/0")}, onprem, udp53, "53-53 drop sg-a/r2"},
		{"a smaller number is decided first", []*SecurityGroup{group(t, "sg-a", "Accept",
			"2 drop udp 53/53 0.0.0.0/0", "1 accept udp 53/53 172.21.0.0/24")}, onprem, udp53, "53-53 ok sg-a/r2"},
		{"a drop of one port splits the range", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 accept tcp 1/65535 172.21.0.0/16", "1 drop tcp 22/22 0.0.0.0/0")}, onprem, tcpAll, "1-21 ok sg-a/r1; 22-22 drop sg-a/r2; 23-65535 ok sg-a/r1"},
		{"accepts of adjacent ranges together admit", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 accept tcp 1/1024 172.21.0.0/24", "1 accept tcp 1025/65535 172.21.0.0/24")}, onprem, tcpAll, "1-1024 ok sg-a/r1; 1025-65535 ok sg-a/r2"},
		{"an accept of part of the source does not admit it", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 accept all -1/-1 172.21.0.128/25")}, onprem, tcpAll, "1-65535 part r1"},
		{"a drop of part of the source drops part", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 drop all -1/-1 172.21.0.5/32", "2 accept all -1/-1 172.21.0.0/24")}, onprem, tcpAll, "1-65535 partial-drop sg-a/r1"},
		{"a drop of another source does not matter", []*SecurityGroup{group(t, "sg-a", "Accept",
			"1 drop all -1/-1 10.0.0.0/8", "2 accept all -1/-1 172.21.0.0/24")}, onprem, tcpAll, "1-65535 ok sg-a/r2"},
		{"another protocol does not admit", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept tcp -1/-1 0.0.0.0/0")}, onprem, icmp, "none"},
		{"icmp by all", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 0.0.0.0/0")}, onprem, icmp, "ok sg-a/r1"},
		{"rules of every group merge", []*SecurityGroup{group(t, "sg-a", "Accept"), group(t, "sg-b", "Accept", "3 accept udp 53/53 172.16.0.0/12")}, onprem, udp53, "53-53 ok sg-b/r1"},
		{"a drop of one group beats an accept of another", []*SecurityGroup{group(t, "sg-a", "Accept", "1 drop udp 53/53 0.0.0.0/0"),
			group(t, "sg-b", "Accept", "1 accept udp 53/53 172.16.0.0/12")}, onprem, udp53, "53-53 drop sg-a/r1"},
		{"group source", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 sg-eci")}, flowSource{Groups: []string{"sg-eci"}}, udp53, "53-53 ok sg-a/r1"},
		{"group source, other group", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 sg-other")}, flowSource{Groups: []string{"sg-eci"}}, udp53, "53-53 none"},
		{"a CIDR rule covers pods by their addresses", []*SecurityGroup{group(t, "sg-a", "Drop", "1 accept all -1/-1 192.168.0.0/16")},
			flowSource{Groups: []string{"sg-eci"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24")}}, udp53, "53-53 ok sg-a/r1"},
		{"inner access Accept admits the group's own instances", []*SecurityGroup{group(t, "sg-a", "Accept")}, flowSource{Groups: []string{"sg-a"}}, udp53,
			"53-53 ok sg-a/inner-access policy Accept"},
		{"inner access Drop does not", []*SecurityGroup{group(t, "sg-a", "Drop")}, flowSource{Groups: []string{"sg-a"}}, udp53, "53-53 none"},
		{"an explicit drop beats the inner-access policy", []*SecurityGroup{group(t, "sg-a", "Accept", "100 drop udp 53/53 0.0.0.0/0")},
			flowSource{Groups: []string{"sg-a"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24")}}, udp53, "53-53 drop sg-a/r1"},
		{"a prefix-list rule is not judged", []*SecurityGroup{group(t, "sg-a", "Accept", "1 drop all -1/-1 pl-onprem", "2 accept all -1/-1 0.0.0.0/0")},
			onprem, udp53, "53-53 ok sg-a/r2 (unjudged r1)"},
		{"an IPv6 source needs an IPv6 rule", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 0.0.0.0/0")}, cidrSource("fd00:21::/64"), udp53, "53-53 none"},
		{"IPv6", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 fd00::/8")}, cidrSource("fd00:21::/64"), udp53, "53-53 ok sg-a/r1"},
		{"a plain address is a /32", []*SecurityGroup{group(t, "sg-a", "Accept", "1 accept all -1/-1 172.21.0.9")}, cidrSource("172.21.0.9/32"), icmp, "ok sg-a/r1"},
	}
	for _, c := range cases {
		got := verdicts(evaluateFlow(c.groups, flow{Src: c.src, Spec: c.spec}))
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestEvaluateFlowDescribe(t *testing.T) {
	g := group(t, "sg-a", "Accept", "1 accept all -1/-1 172.21.0.0/16", "1 drop udp 53/53 0.0.0.0/0", "5 accept tcp 53/53 0.0.0.0/0", "1 drop tcp 53/53 0.0.0.0/0")
	udp := evaluateFlow([]*SecurityGroup{g}, flow{Src: cidrSource("172.21.0.0/24"), Spec: PortSpec{"udp", 53, 53}})[0]
	if d := udp.describe(); !strings.Contains(d, "dropped by sg-a rule r2 (priority 1 Drop UDP 53/53 from 0.0.0.0/0); the Accept r1 (priority 1 Accept ALL -1/-1 from 172.21.0.0/16) has the same priority") {
		t.Errorf("udp: %s", d)
	}
	tcp := evaluateFlow([]*SecurityGroup{g}, flow{Src: cidrSource("10.0.0.0/8"), Spec: PortSpec{"tcp", 53, 53}})[0]
	if d := tcp.describe(); !strings.Contains(d, "dropped by sg-a rule r4") || !strings.Contains(d, "the Accept r3 (priority 5 Accept TCP 53/53 from 0.0.0.0/0) comes after it") {
		t.Errorf("tcp: %s", d)
	}
}

func TestParseRuleAndPorts(t *testing.T) {
	bad := []struct{ prio, policy, proto, ports, src, want string }{
		{"0", "accept", "tcp", "80/80", "10.0.0.0/8", `priority "0" is not 1-100`},
		{"101", "accept", "tcp", "80/80", "10.0.0.0/8", `priority "101" is not 1-100`},
		{"1", "allow", "tcp", "80/80", "10.0.0.0/8", `policy "allow" is neither Accept nor Drop`},
		{"1", "accept", "tcp", "90/80", "10.0.0.0/8", `ports "90/80" are not a range`},
		{"1", "accept", "tcp", "0/80", "10.0.0.0/8", `ports "0/80" are not a range`},
		{"1", "accept", "sctp", "-1/-1", "10.0.0.0/8", `protocol "sctp" is unknown`},
		{"1", "accept", "tcp", "80/80", "10.0.0", `source "10.0.0" is not a CIDR block`},
	}
	for _, b := range bad {
		if _, err := parseRule("r", b.prio, b.policy, b.proto, b.ports, b.src, "", "", ""); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: got %v, want %q", b, err, b.want)
		}
	}
	r, err := parseRule("r", "", "", "TCP", "", "10.1.2.3/8", "", "", "")
	if err != nil || r.Priority != 1 || r.Drop || r.Ports != [2]int{1, 65535} || r.Source.String() != "10.0.0.0/8" {
		t.Errorf("defaults: %+v %v", r, err)
	}
	specs := map[string]string{"all": "tcp/all ports,udp/all ports,icmp", "ICMP": "icmp", "tcp/80": "tcp/80", "udp/8000-9000": "udp/8000-9000"}
	for in, want := range specs {
		ps, err := parsePortSpec(in)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("parsePortSpec(%q) = %v %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"tcp", "tcp/0", "udp/9-8", "sctp/80", "tcp/70000", "tcp/a-b"} {
		if _, err := parsePortSpec(in); err == nil {
			t.Errorf("parsePortSpec(%q) accepted", in)
		}
	}
}
