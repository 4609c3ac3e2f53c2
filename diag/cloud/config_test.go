package cloud

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
)

func TestValidate(t *testing.T) {
	ok := func() Config { return Config{RegionID: "cn-shanghai"} }
	cases := []struct {
		name string
		mut  func(*Config)
		err  string
	}{
		{"minimal", func(*Config) {}, ""},
		{"everything", func(c *Config) {
			c.VPCID, c.QPS, c.RequestTimeout, c.Profile = "vpc-uf6hybrid7demo01", 20, diag.Duration(5*time.Second), "prod"
			c.Endpoints = Endpoints{ECS: "ecs-vpc.cn-shanghai.aliyuncs.com", VPC: "https://vpc-vpc.cn-shanghai.aliyuncs.com", PVTZ: "http://127.0.0.1:8080"}
			c.OnPremCIDRs, c.RouteEntryQuota = []string{"10.10.0.0/16", "fd00:10::/48"}, 1000
		}, ""},
		{"no region", func(c *Config) { c.RegionID = "" }, "regionId: must be set"},
		{"bad region", func(c *Config) { c.RegionID = "Shanghai" }, `regionId: "Shanghai" is not a region ID`},
		{"bad VPC", func(c *Config) { c.VPCID = "vsw-123456" }, `vpcId: "vsw-123456" is not a VPC ID`},
		{"plain http off loopback", func(c *Config) { c.Endpoints.ECS = "http://ecs.internal.example.com" }, "endpoints.ecs: \"http://ecs.internal.example.com\": plain http would send signed requests"},
		{"endpoint with a path", func(c *Config) { c.Endpoints.VPC = "https://vpc.example.com/api" }, "endpoints.vpc: \"https://vpc.example.com/api\": want only a scheme and a host"},
		{"endpoint scheme", func(c *Config) { c.Endpoints.PVTZ = "ftp://pvtz.example.com" }, "endpoints.pvtz: \"ftp://pvtz.example.com\": scheme must be https"},
		{"negative qps", func(c *Config) { c.QPS = -2 }, "qps: -2 is not a rate"},
		{"bad profile", func(c *Config) { c.Profile = "a b" }, `profile: "a b" is not a profile name`},
		{"bad CIDR", func(c *Config) { c.OnPremCIDRs = []string{"10.10.0.0/16", "10.1.0.0/33"} }, `onPremCIDRs[1]: "10.1.0.0/33" is not a CIDR`},
		{"host bits", func(c *Config) { c.OnPremCIDRs = []string{"10.10.0.1/16"} }, `onPremCIDRs[0]: "10.10.0.1/16" has host bits set (did you mean 10.10.0.0/16?)`},
		{"negative quota", func(c *Config) { c.RouteEntryQuota = -1 }, "routeEntryQuota: must not be negative"},
		{"leased line and ECI", func(c *Config) {
			c.VBRIDs, c.OnPremASN, c.InboundEndpointIDs = []string{"vbr-uf6leasedline0001"}, 65001, []string{"hr-uf6inbound0000001"}
			c.ECISecurityGroupIDs, c.ECIVSwitchIDs, c.RequiredPorts = []string{"sg-uf6eci0000000001"}, []string{"vsw-uf6eci00000000001"}, []string{"tcp/10250", "udp/8000-9000", "icmp", "all"}
		}, ""},
		{"bad VBR", func(c *Config) { c.VBRIDs = []string{"vbr-uf6leasedline0001", "vpc-uf6x00000001"} }, `vbrIds[1]: "vpc-uf6x00000001" is not a VBR ID (vbr-...)`},
		{"bad ECI group", func(c *Config) { c.ECISecurityGroupIDs = []string{"sg x"} }, `eciSecurityGroupIds[0]: "sg x" is not a security group ID (sg-...)`},
		{"bad ECI vSwitch", func(c *Config) { c.ECIVSwitchIDs = []string{"vpc-uf6eci00000000001"} }, `eciVSwitchIds[0]: "vpc-uf6eci00000000001" is not a vSwitch ID (vsw-...)`},
		{"bad endpoint ID", func(c *Config) { c.InboundEndpointIDs = []string{"hr/1"} }, `inboundEndpointIds[0]: "hr/1" is not a resolver endpoint ID`},
		{"bad ports", func(c *Config) { c.RequiredPorts = []string{"tcp/80", "tcp/0-10"} }, `requiredPorts[1]: "tcp/0-10": ports "0-10" are not a range within 1-65535`},
		{"bad protocol", func(c *Config) { c.RequiredPorts = []string{"sctp/80"} }, `requiredPorts[0]: "sctp/80": want all, icmp, tcp/<port>[-<port>] or udp/<port>[-<port>]`},
	}
	for _, c := range cases {
		cfg := ok()
		c.mut(&cfg)
		err := cfg.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.err)
		}
	}
	// Every problem is reported at once, one per line, each named.
	bad := Config{RegionID: "x", VPCID: "y", QPS: -5}
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("joined errors: %v", err)
	}
}

// TestConfigYAML decodes the section as the config file does (YAML through
// JSON tags, strictly) and applies the defaults once.
func TestConfigYAML(t *testing.T) {
	doc := `
regionId: cn-shanghai
vpcId: vpc-uf6hybrid7demo01
endpoints:
  ecs: ecs-vpc.cn-shanghai.aliyuncs.com
qps: -1
requestTimeout: 3s
onPremCIDRs: [10.10.0.0/16]
`
	var c Config
	if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	s, err := c.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.qps != rate.Inf || s.requestTimeout != 3*time.Second || s.endpoints["ecs"] != (endpoint{"HTTPS", "ecs-vpc.cn-shanghai.aliyuncs.com"}) ||
		s.routeEntryQuota != DefaultRouteEntryQuota || len(s.onPrem) != 1 {
		t.Errorf("settings %+v", s)
	}
	d, _ := (&Config{RegionID: "cn-hangzhou"}).settings()
	if d.qps != DefaultQPS || d.requestTimeout != DefaultRequestTimeout || len(d.endpoints) != 0 {
		t.Errorf("defaults %+v", d)
	}
	if err := yaml.UnmarshalStrict([]byte("regionId: cn-shanghai\nregion: x\n"), &c); err == nil {
		t.Error("unknown field accepted")
	}
	if err := yaml.UnmarshalStrict([]byte("regionId: cn-shanghai\nrequestTimeout: 10\n"), &c); err == nil || !strings.Contains(err.Error(), `want a duration like "30s", got 10`) {
		t.Errorf("numeric duration: %v", err)
	}
	if err := yaml.UnmarshalStrict([]byte("regionId: cn-shanghai\nrequestTimeout: 0s\n"), &c); err == nil || !strings.Contains(err.Error(), `"0s" is not a positive duration`) {
		t.Errorf("zero duration: %v", err)
	}
}

// TestNotConfigured: no cloud section SKIPs the checks with the lines to
// add; a bad section is an error before anything runs.
func TestNotConfigured(t *testing.T) {
	p, err := NewProvider(nil, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Gather(context.Background())
	if !errors.Is(err, diag.ErrNotConfigured) || !containsAll(err.Error(), "no cloud section", "cloud:\n    regionId: cn-shanghai") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewProvider(&Config{RegionID: "cn-shanghai", QPS: -3, VPCID: "x"}, testEnv()); err == nil ||
		!containsAll(err.Error(), "cloud: vpcId:", "\nqps:") {
		t.Fatalf("got %v", err)
	}
}
