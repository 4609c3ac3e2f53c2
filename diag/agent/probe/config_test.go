package probe

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", "  \n", "no settings: the file is empty"},
		{"case", "Interval: 1m\n", `line 1: unknown field "Interval"`},
		{"unknown field", "dns:\n  resolvers: [1.2.3.4]\n", `unknown field "resolvers"`},
		{"bad vpc resolver", "dns:\n  vpcResolvers: [vpc-dns]\n", `dns.vpcResolvers[0]: "vpc-dns": host is not an IP address`},
		{"name outside zones", "dns:\n  onPremZones: [corp.example]\n  names: [{name: db.other.example}]\n", `dns.names[0]: "db.other.example" is not inside any of dns.onPremZones or dns.privateZones [corp.example]`},
		{"bad type", "dns:\n  onPremZones: [corp.example]\n  names: [{name: db.corp.example, type: MX}]\n", `dns.names[0] "db.corp.example": type "MX": want A, AAAA, CNAME, SRV or SOA`},
		{"target host name", "targets: [{name: db, address: 'db.corp.example:5432'}]\n", `targets[0] "db": address: "db.corp.example:5432": host is not an IP address`},
		{"target no port", "targets: [{name: db, address: 10.0.0.1}]\n", `targets[0] "db": address: "10.0.0.1": want ip:port`},
		{"target port 0", "targets: [{name: db, address: '10.0.0.1:0'}]\n", `targets[0] "db": address: "10.0.0.1:0": port 0`},
		{"target without name", "targets: [{address: '10.0.0.1:1'}]\n", `targets[0]: name is required`},
		{"duplicate target", "targets: [{name: a, address: '10.0.0.1:1'}, {name: a, address: '10.0.0.1:2'}]\n", `targets[1]: duplicate name "a"`},
		{"metadata url", "metadata: {url: 'ftp://x'}\n", `metadata.url: "ftp://x" is not an http(s) URL`},
		{"interval short", "interval: 100ms\n", "interval: 100ms is shorter than 1s"},
		{"timeout long", "connectTimeout: 2m\n", "connectTimeout: 2m0s is longer than 1m0s"},
		{"bad duration", "interval: soon\n", `line 1: interval: "soon" is not a positive duration`},
		{"zero duration", "dns:\n  timeout: 0s\n", `line 2: dns.timeout: "0s" is not a positive duration`},
		{"concurrency", "concurrency: -1\n", "concurrency: want 1 to 4096, got -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPlanDefaults(t *testing.T) {
	c, err := Parse([]byte(`
dns:
  onPremZones: [Corp.Example]
  onPremResolvers: ["10.0.0.53", "10.0.0.53:53"]
  names:
    - name: DB.corp.example
      expect: [10.1.2.3]
targets:
  - {name: db, address: "10.1.2.3:5432"}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if p.ResolvConf != "/etc/resolv.conf" || p.MetadataUrl != "http://100.100.100.200/latest/meta-data" {
		t.Errorf("defaults: resolv.conf %q, metadata %q", p.ResolvConf, p.MetadataUrl)
	}
	if strings.Join(p.VpcResolvers, ",") != "100.100.2.136:53,100.100.2.138:53" {
		t.Errorf("vpc resolvers %v", p.VpcResolvers)
	}
	if strings.Join(p.OnpremResolvers, ",") != "10.0.0.53:53" {
		t.Errorf("on-prem resolvers not normalised and deduplicated: %v", p.OnpremResolvers)
	}
	if p.OnpremZones[0] != "corp.example." || p.Names[0].Name != "db.corp.example." || p.Names[0].Type != "A" {
		t.Errorf("names not normalised: %v %v", p.OnpremZones, p.Names)
	}
	if p.DnsTimeout.AsDuration() != 2*time.Second || p.ConnectTimeout.AsDuration() != 3*time.Second || p.Concurrency != 128 {
		t.Errorf("deadlines %v %v concurrency %d", p.DnsTimeout.AsDuration(), p.ConnectTimeout.AsDuration(), p.Concurrency)
	}
	if c.IntervalOrDefault() != time.Minute {
		t.Errorf("interval %v", c.IntervalOrDefault())
	}
	c.Metadata.Disabled = true
	if p, _ := c.Plan(); p.MetadataUrl != "" {
		t.Errorf("metadata disabled but url %q", p.MetadataUrl)
	}
}

// TestExampleConfigParses keeps the ConfigMap of deploy/agent valid.
func TestExampleConfigParses(t *testing.T) {
	doc := exampleConfig(t)
	if _, err := Parse([]byte(doc)); err != nil {
		t.Fatalf("deploy/agent plan: %v", err)
	}
}
