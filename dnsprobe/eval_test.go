package dnsprobe

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const (
	onprem = "10.0.0.53:53"
	cloud  = "100.100.2.136:53"
	pzEP   = "10.1.0.10:53" // PrivateZone inbound endpoint
)

func testConfig() Config {
	return Config{
		OnPremResolvers:  []Resolver{{Name: "dc1", Address: "10.0.0.53"}},
		CloudResolvers:   []Resolver{{Name: "vpc-dns", Address: "100.100.2.136"}},
		CloudReachable:   ReachYes,
		PrivateZones:     []string{"svc.cloud.internal"},
		OnPremZones:      []string{"corp.example"},
		PrivateZoneNames: []Name{{Name: "api.svc.cloud.internal", Expect: []string{"10.255.2.20"}}},
		OnPremNames:      []Name{{Name: "db.corp.example"}},
		Forwarders: []Forwarder{
			{Zone: "svc.cloud.internal", Targets: []string{"10.1.0.10"}},
			{Zone: "corp.example", Targets: []string{"10.0.0.53"}},
		},
	}
}

// out builds an outcome; answers are A values.
func out(kind Kind, answers ...string) *Outcome {
	o := &Outcome{Kind: kind, Type: "A", RTT: time.Millisecond}
	for _, a := range answers {
		o.Answers = append(o.Answers, Record{Name: "x.", Type: "A", TTL: 60, Data: a})
	}
	return o
}

// canon is c as the source hands it to the checks: validated, canonical.
func canon(c Config) *Config {
	n, err := c.settings()
	if err != nil {
		panic(err)
	}
	return n
}

func observe(c Config, outcomes map[string]*Outcome) *Observations {
	obs := &Observations{Config: *canon(c), Outcomes: map[Query]*Outcome{}, Timeout: 2 * time.Second}
	for k, o := range outcomes {
		f := strings.Fields(k) // "server name type"
		t := dns.StringToType[f[2]]
		o.Server, o.Name, o.Type = f[0], dns.Fqdn(f[1]), f[2]
		obs.Outcomes[Query{Server: f[0], Name: dns.Fqdn(f[1]), Type: t}] = o
	}
	return obs
}

func check(t *testing.T, rs []*pb.Result, st pb.Status, fragments ...string) {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	text := r.Summary + "\n" + r.Remediation
	if r.Status != st {
		t.Fatalf("status %s, want %s\n%s", r.Status, st, text)
	}
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("missing %q in\n%s", f, text)
		}
	}
}

func TestEvalPrivateZoneFromOnPrem(t *testing.T) {
	via := onprem + " api.svc.cloud.internal A"
	direct := pzEP + " api.svc.cloud.internal A"
	soa := onprem + " corp.example SOA"
	tests := []struct {
		name     string
		mutate   func(*Config)
		outcomes map[string]*Outcome
		status   pb.Status
		frags    []string
	}{
		{"answered as expected", nil, map[string]*Outcome{via: out(Answered, "10.255.2.20")}, pb.Status_PASS, []string{"resolves api.svc.cloud.internal A"}},
		{"expected compares as a set, case and dot insensitive", func(c *Config) {
			c.PrivateZoneNames[0] = Name{Name: "API.svc.cloud.internal.", Expect: []string{"10.255.2.21", "10.255.2.20"}}
		}, map[string]*Outcome{via: out(Answered, "10.255.2.20", "10.255.2.21")}, pb.Status_PASS, nil},
		{"wrong answer", nil, map[string]*Outcome{via: out(Answered, "10.9.9.9"), direct: out(Answered, "10.255.2.20")},
			pb.Status_FAIL, []string{"with 10.9.9.9, expected 10.255.2.20", "directly: " + pzEP}},
		{"extra answer is wrong", nil, map[string]*Outcome{via: out(Answered, "10.255.2.20", "10.9.9.9")}, pb.Status_FAIL, []string{"expected 10.255.2.20"}},
		{"no expectation accepts any answer", func(c *Config) { c.PrivateZoneNames[0].Expect = nil },
			map[string]*Outcome{via: out(Answered, "10.9.9.9")}, pb.Status_PASS, nil},
		{"NODATA", nil, map[string]*Outcome{via: out(NoData)}, pb.Status_FAIL, []string{"no A record (NODATA)"}},
		{"NXDOMAIN but the endpoint has it", nil, map[string]*Outcome{via: out(NXDomain), direct: out(Answered, "10.255.2.20")},
			pb.Status_FAIL, []string{"does not forward svc.cloud.internal", "  forward-zone:\n    name: \"svc.cloud.internal.\"\n    forward-addr: 10.1.0.10@53\n", "  server=/svc.cloud.internal/10.1.0.10#53"}},
		{"NXDOMAIN everywhere", nil, map[string]*Outcome{via: out(NXDomain), direct: out(NXDomain)},
			pb.Status_FAIL, []string{"does not exist in the PrivateZone zone svc.cloud.internal"}},
		{"NXDOMAIN without forwarders", func(c *Config) { c.Forwarders = nil }, map[string]*Outcome{via: out(NXDomain)},
			pb.Status_FAIL, []string{"the record is missing, or", "PrivateZone inbound endpoint IPs"}},
		{"SERVFAIL, endpoint fine: no forwarder", nil, map[string]*Outcome{via: out(ServFail), direct: out(Answered, "10.255.2.20")},
			pb.Status_FAIL, []string{"SERVFAIL", "no working forwarder", "(the forward target answers it directly)", "BIND:\n  zone \"svc.cloud.internal\" { type forward; forward only; forwarders { 10.1.0.10 port 53; }; };"}},
		{"REFUSED, endpoint down", nil, map[string]*Outcome{via: out(Refused), direct: out(ConnRefused)},
			pb.Status_FAIL, []string{"REFUSED", "forward target is broken: 10.1.0.10:53: connection refused"}},
		{"timeout, resolver dead", nil, map[string]*Outcome{via: out(Timeout), direct: out(Answered, "10.255.2.20"), soa: out(Timeout)},
			pb.Status_FAIL, []string{"does not answer at all"}},
		{"timeout, resolver alive, endpoint dead", nil, map[string]*Outcome{via: out(Timeout), direct: out(Timeout), soa: out(Answered)},
			pb.Status_FAIL, []string{"is up but silent", "the hop dc1 (10.0.0.53:53) -> 10.1.0.10:53 is broken", "the forward target for svc.cloud.internal is broken"}},
		{"timeout, resolver alive, endpoint fine", nil, map[string]*Outcome{via: out(Timeout), direct: out(Answered, "10.255.2.20"), soa: out(NoData)},
			pb.Status_FAIL, []string{"is up but silent", "forwards svc.cloud.internal somewhere else or cannot reach them"}},
		{"timeout, resolver alive, no forwarders", func(c *Config) { c.Forwarders = nil }, map[string]*Outcome{via: out(Timeout), soa: out(Answered)},
			pb.Status_FAIL, []string{"is up but silent", "configure forwarders for svc.cloud.internal"}},
		{"connection refused", nil, map[string]*Outcome{via: out(ConnRefused)}, pb.Status_FAIL, []string{"is down: nothing listens on 10.0.0.53:53"}},
		{"truncated, TCP failed", nil, map[string]*Outcome{via: {Kind: TruncatedTCPFailed, Err: "tcp 10.0.0.53:53: connection refused"}},
			pb.Status_FAIL, []string{"does not fit UDP and TCP failed", "allow TCP 53 to 10.0.0.53:53"}},
		{"malformed", nil, map[string]*Outcome{via: {Kind: Malformed, Err: "malformed reply from x"}}, pb.Status_FAIL, []string{"malformed reply"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			check(t, evalPrivateZoneFromOnPrem(observe(c, tc.outcomes)), tc.status, tc.frags...)
		})
	}
}

func TestEvalOnPremFromCloud(t *testing.T) {
	via := cloud + " db.corp.example A"
	tests := []struct {
		name     string
		mutate   func(*Config)
		outcomes map[string]*Outcome
		status   pb.Status
		frags    []string
	}{
		{"answered", nil, map[string]*Outcome{via: out(Answered, "10.255.1.10")}, pb.Status_PASS, nil},
		{"REFUSED: no forwarding rule", nil, map[string]*Outcome{via: out(Refused), onprem + " db.corp.example A": out(Answered, "10.255.1.10")},
			pb.Status_FAIL, []string{"REFUSED", "add a PrivateZone forwarding rule", "for corp.example to 10.0.0.53:53"}},
		{"cloudReachable false", func(c *Config) { c.CloudReachable = ReachNo }, nil, pb.Status_SKIP, []string{"cloud-side agent"}},
		{"auto, cloud unreachable", func(c *Config) { c.CloudReachable = ReachAuto },
			map[string]*Outcome{via: out(Timeout), cloud + " svc.cloud.internal SOA": out(Timeout)}, pb.Status_SKIP, []string{"not reachable from here"}},
		{"auto, cloud reachable", func(c *Config) { c.CloudReachable = "" },
			map[string]*Outcome{via: out(ServFail), cloud + " svc.cloud.internal SOA": out(Answered)}, pb.Status_FAIL, []string{"SERVFAIL"}},
		{"no cloud resolvers", func(c *Config) { c.CloudResolvers = nil }, nil, pb.Status_SKIP, []string{"no dns.cloudResolvers"}},
		{"no names", func(c *Config) { c.OnPremNames = nil }, nil, pb.Status_SKIP, []string{"no dns.onPremNames"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			check(t, evalOnPremFromCloud(observe(c, tc.outcomes)), tc.status, tc.frags...)
		})
	}
}

func TestEvalResolverReachable(t *testing.T) {
	soa := onprem + " corp.example SOA"
	other := onprem + " db.corp.example A"
	tests := []struct {
		name     string
		outcomes map[string]*Outcome
		status   pb.Status
		frags    []string
	}{
		{"answers", map[string]*Outcome{soa: out(Answered)}, pb.Status_PASS, []string{"dc1 (10.0.0.53:53) answers"}},
		{"NXDOMAIN still proves it answers", map[string]*Outcome{soa: out(NXDomain)}, pb.Status_PASS, nil},
		{"SERVFAIL for its own zone", map[string]*Outcome{soa: out(ServFail)}, pb.Status_WARN, []string{"is up but answers SERVFAIL"}},
		{"connection refused", map[string]*Outcome{soa: out(ConnRefused)}, pb.Status_FAIL, []string{"is down", "connection refused"}},
		{"dead", map[string]*Outcome{soa: out(Timeout)}, pb.Status_FAIL, []string{"does not answer: no reply within 2s"}},
		{"silent forwarder", map[string]*Outcome{soa: out(Timeout), other: out(Answered)},
			pb.Status_FAIL, []string{"is up (it answered other queries) but silent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.CloudResolvers = nil
			check(t, evalResolverReachable(observe(c, tc.outcomes)), tc.status, tc.frags...)
		})
	}

	t.Run("cloud resolvers skipped when not reachable", func(t *testing.T) {
		c := testConfig()
		c.CloudReachable = ReachNo
		rs := evalResolverReachable(observe(c, map[string]*Outcome{soa: out(Answered)}))
		if len(rs) != 2 || rs[0].Status != pb.Status_PASS || rs[1].Status != pb.Status_SKIP {
			t.Fatalf("got %v", rs)
		}
	})
}

func TestPlan(t *testing.T) {
	c := testConfig()
	var got []string
	for _, q := range canon(c).plan() {
		got = append(got, q.String())
	}
	want := []string{
		"corp.example SOA @10.0.0.53:53",
		"svc.cloud.internal SOA @100.100.2.136:53",
		"svc.cloud.internal SOA @10.1.0.10:53",
		"api.svc.cloud.internal A @10.0.0.53:53",
		"api.svc.cloud.internal A @10.1.0.10:53",
		"db.corp.example A @100.100.2.136:53",
		"db.corp.example A @10.0.0.53:53",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c.CloudReachable = ReachNo
	for _, q := range canon(c).plan() {
		if q.Server == cloud {
			t.Errorf("cloudReachable false, but %s is planned", q)
		}
	}
}
