package dnsprobe

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"valid", nil, ""},
		{"no resolvers", func(c *Config) { c.OnPremResolvers, c.CloudResolvers = nil, nil }, "onPremResolvers, cloudResolvers: at least one resolver is required"},
		{"resolver without name", func(c *Config) { c.OnPremResolvers[0].Name = "" }, "onPremResolvers[0]: name is required"},
		{"duplicate name", func(c *Config) { c.CloudResolvers[0].Name = "dc1" }, `cloudResolvers[0]: duplicate resolver name "dc1"`},
		{"hostname address", func(c *Config) { c.OnPremResolvers[0].Address = "dns.corp.example" }, `onPremResolvers[0] "dc1": address: "dns.corp.example": host is not an IP address`},
		{"bad port", func(c *Config) { c.CloudResolvers[0].Address = "100.100.2.136:0" }, `cloudResolvers[0] "vpc-dns": address: "100.100.2.136:0": port "0" is not 1-65535`},
		{"empty address", func(c *Config) { c.OnPremResolvers[0].Address = "" }, `onPremResolvers[0] "dc1": address: empty address`},
		{"ipv6 with port", func(c *Config) { c.OnPremResolvers[0].Address = "[2001:db8::53]:5353" }, ""},
		{"bad resolver zone", func(c *Config) { c.OnPremResolvers[0].Zone = "a..b" }, `onPremResolvers[0] "dc1": zone "a..b" is not a domain name`},
		{"root as a PrivateZone", func(c *Config) { c.PrivateZones = []string{"."} }, `privateZones[0]: "." is not a domain name`},
		{"bad on-prem zone", func(c *Config) { c.OnPremZones = append(c.OnPremZones, "") }, `onPremZones[1]: "" is not a domain name`},
		{"name outside the zones", func(c *Config) { c.PrivateZoneNames[0].Name = "api.other.internal" }, `privateZoneNames[0]: "api.other.internal" is not inside any of privateZones [svc.cloud.internal]`},
		{"bad name", func(c *Config) { c.OnPremNames[0].Name = "" }, `onPremNames[0]: "" is not a domain name`},
		{"bad type", func(c *Config) { c.OnPremNames[0].Type = "MX" }, `onPremNames[0] "db.corp.example": type "MX": want A, AAAA, CNAME, SRV or SOA`},
		{"lower-case type", func(c *Config) { c.OnPremNames[0].Type = "srv" }, ""},
		{"forwarder without targets", func(c *Config) { c.Forwarders[0].Targets = nil }, `forwarders[0] "svc.cloud.internal": targets: at least one address is required`},
		{"forwarder bad target", func(c *Config) { c.Forwarders[1].Targets = []string{"ns1"} }, `forwarders[1] "corp.example": target: "ns1": host is not an IP address`},
		{"forwarder bad zone", func(c *Config) { c.Forwarders[0].Zone = "" }, `forwarders[0]: zone "" is not a domain name`},
		{"bad cluster domain", func(c *Config) { c.ClusterDomain = "." }, `clusterDomain: "." is not a domain name`},
		{"too many retries", func(c *Config) { c.Retries = 9 }, "retries: want 0 to 5, got 9"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency: must not be negative, got -1"},
		{"small udp size", func(c *Config) { c.UDPSize = 100 }, "udpSize: want 512 to 65535, got 100"},
		{"bad reachability", func(c *Config) { c.CloudReachable = "maybe" }, `cloudReachable: want true, false or "auto", got "maybe"`},
		{"two errors", func(c *Config) { c.Retries = -1; c.Concurrency = -2 }, "retries: want 0 to 5, got -1\nconcurrency: must not be negative, got -2"},
		{"same resolver as IPv4-mapped IPv6", func(c *Config) {
			c.OnPremResolvers = append(c.OnPremResolvers, Resolver{Name: "dc1-mapped", Address: "[::ffff:10.0.0.53]:53"})
		}, `onPremResolvers[1] "dc1-mapped": address 10.0.0.53:53 is also onPremResolvers[0] "dc1"`},
		{"same resolver on both sides", func(c *Config) { c.CloudResolvers[0].Address = "10.0.0.53:53" },
			`cloudResolvers[0] "vpc-dns": address 10.0.0.53:53 is also onPremResolvers[0] "dc1"`},
		{"zone-scoped IPv6", func(c *Config) { c.OnPremResolvers[0].Address = "fe80::1%lo" },
			`onPremResolvers[0] "dc1": address: "fe80::1%lo": zone-scoped IPv6 address (%lo) is not supported; use a global or unique-local address`},
		{"zone-scoped IPv6 with port", func(c *Config) { c.Forwarders[0].Targets = []string{"[fe80::1%eth0]:5353"} },
			`forwarders[0] "svc.cloud.internal": target: "[fe80::1%eth0]:5353": zone-scoped IPv6 address (%eth0) is not supported; use a global or unique-local address`},
		{"duplicate forward target", func(c *Config) { c.Forwarders[0].Targets = []string{"10.1.0.10", "::ffff:10.1.0.10"} },
			`forwarders[0] "svc.cloud.internal": targets[1] 10.1.0.10:53 is also targets[0]`},
		{"port with a sign", func(c *Config) { c.OnPremResolvers[0].Address = "10.0.0.53:+53" }, `onPremResolvers[0] "dc1": address: "10.0.0.53:+53": port "+53" is not 1-65535`},
		{"name outside many zones", func(c *Config) {
			c.PrivateZones = nil
			for i := range 50 {
				c.PrivateZones = append(c.PrivateZones, fmt.Sprintf("z%d.internal", i))
			}
		}, `privateZoneNames[0]: "api.svc.cloud.internal" is not inside any of privateZones [z0.internal z1.internal z2.internal z3.internal z4.internal z5.internal z6.internal z7.internal z8.internal z9.internal and 40 more]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHostPortCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.53":                 "10.0.0.53:53",
		"10.0.0.53:5353":            "10.0.0.53:5353",
		"::ffff:10.0.0.53":          "10.0.0.53:53",
		"[::ffff:10.0.0.53]:53":     "10.0.0.53:53",
		"2001:DB8:0:0::53":          "[2001:db8::53]:53",
		"[2001:db8::53]":            "[2001:db8::53]:53",
		"[2001:0db8::0053]:053":     "[2001:db8::53]:53",
		"100.100.2.136:65535":       "100.100.2.136:65535",
		"[::ffff:100.100.2.136]:99": "100.100.2.136:99",
	} {
		got, err := HostPort(in)
		if err != nil || got != want {
			t.Errorf("HostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// An address that does not parse is a configuration error naming it, so no
// query is ever silently dropped: the source is never built with it.
func TestBadAddressNotDropped(t *testing.T) {
	c := testConfig()
	c.CloudResolvers[0].Address = "vpc-dns.example"
	want := `dns: cloudResolvers[0] "vpc-dns": address: "vpc-dns.example": host is not an IP address`
	if _, err := NewProvider(&c, diag.Env{}); err == nil || err.Error() != want {
		t.Errorf("NewProvider: %v, want %s", err, want)
	}
	if _, _, err := ExpectedForward(&c, "corp.example", false); err == nil {
		t.Error("ExpectedForward accepted a bad address")
	}
}

func TestConfigYAML(t *testing.T) {
	tests := []struct {
		in   string
		want Reachability
		err  string
	}{
		{"cloudReachable: true", ReachYes, ""},
		{"cloudReachable: false", ReachNo, ""},
		{"cloudReachable: auto", ReachAuto, ""},
		{"", "", ""},
		{"cloudReachable: sometimes", "", `cloudReachable: want true, false or "auto", got "sometimes"`},
		{"cloudReachable: 1", "", "cloudReachable: want true, false or \"auto\", got 1"},
	}
	for _, tc := range tests {
		var c Config
		err := yaml.UnmarshalStrict([]byte("onPremResolvers: [{name: a, address: 10.0.0.1}]\n"+tc.in), &c)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case c.CloudReachable != tc.want:
			t.Errorf("%q: %q, want %q", tc.in, c.CloudReachable, tc.want)
		}
	}
	if err := yaml.UnmarshalStrict([]byte("onPremResolver: []"), &Config{}); err == nil {
		t.Error("unknown field accepted")
	}
}

// The example in deploy/dns must decode strictly and validate.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../deploy/dns/vnodediag-dns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		DNS *Config `json:"dns"`
	}
	if err := yaml.UnmarshalStrict(b, &file); err != nil {
		t.Fatal(err)
	}
	if err := file.DNS.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := canon(*file.DNS); c.Timeout.D() != 2*time.Second || c.CloudReachable != ReachAuto {
		t.Errorf("example: timeout %s reachability %s", c.Timeout.D(), c.CloudReachable)
	}
}

// The example Corefile forwards what the example configuration expects.
func TestExampleCorefile(t *testing.T) {
	b, err := os.ReadFile("../deploy/dns/vnodediag-dns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		DNS *Config `json:"dns"`
	}
	if err := yaml.UnmarshalStrict(b, &file); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../deploy/dns/Corefile.hybrid")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := corefile.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range [][]*pb.Result{evalCoreDNSForward(canon(*file.DNS), cf, nil), evalClusterDomainOverlap(canon(*file.DNS), cf)} {
		for _, r := range rs {
			if r.Status != pb.Status_PASS {
				t.Errorf("%s: %s", r.Status, r.Summary)
			}
		}
	}
}

func TestNewProvider(t *testing.T) {
	if _, err := NewProvider(&Config{}, diag.Env{}); err == nil || err.Error() != "dns: onPremResolvers, cloudResolvers: at least one resolver is required" {
		t.Errorf("empty config: %v", err)
	}
}

// A config written by a program (the demo marshals its sections with
// sigs.k8s.io/yaml) reads back strictly and equal.
func TestConfigRoundTrip(t *testing.T) {
	for _, r := range []Reachability{ReachYes, ReachNo, ReachAuto} {
		c := testConfig()
		c.CloudReachable = r
		c.Timeout = diag.Duration(1500 * time.Millisecond)
		b, err := yaml.Marshal(map[string]any{"dns": &c})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			DNS *Config `json:"dns"`
		}
		if err := yaml.UnmarshalStrict(b, &back); err != nil {
			t.Fatalf("%s\n%s", err, b)
		}
		if err := back.DNS.Validate(); err != nil {
			t.Fatal(err)
		}
		if back.DNS.CloudReachable != r || back.DNS.Timeout.D() != 1500*time.Millisecond || len(back.DNS.Forwarders) != 2 {
			t.Errorf("round trip of %s:\n%s", r, b)
		}
	}
}
