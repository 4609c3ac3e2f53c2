package bgp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
)

func validConfig() bgp.Config {
	return bgp.Config{LocalASN: 65010, RouterID: "192.0.2.10", Peers: []bgp.PeerConfig{{Address: "10.0.0.1", ASN: 65001}}}
}

func TestConfigValidate(t *testing.T) {
	hold := func(v uint32) *uint32 { return &v }
	cases := []struct {
		name string
		mod  func(*bgp.Config)
		want string
	}{
		{"valid", func(*bgp.Config) {}, ""},
		{"valid full", func(c *bgp.Config) {
			c.ListenAddress, c.ListenPort, c.EstablishTimeout = "10.0.0.2", 179, diag.Duration(45*time.Second)
			c.Peers = append(c.Peers, bgp.PeerConfig{Name: "r2", Address: "10.0.0.9", ASN: 65002, Password: "x", Passive: true,
				Multihop: 2, HoldTime: hold(0), Families: []string{"ipv4-unicast", "ipv6-unicast"}, MaxPrefixes: 10})
			c.CloudPrefixes, c.ServiceAddresses = []string{"192.168.0.0/16"}, []string{"100.100.2.136"}
		}, ""},
		{"ipv6 peer next to an ipv4 one", func(c *bgp.Config) { c.Peers = append(c.Peers, bgp.PeerConfig{Address: "fd00::1", ASN: 65002}) }, ""},
		{"ipv6 listener and peer", func(c *bgp.Config) { c.ListenAddress, c.Peers[0].Address = "fd00::2", "fd00::1" }, ""},
		{"mapped router id", func(c *bgp.Config) { c.RouterID = "::ffff:192.0.2.10" }, ""},
		{"no asn", func(c *bgp.Config) { c.LocalASN = 0 }, "localASN: must be set (1-4294967295)"},
		{"router id", func(c *bgp.Config) { c.RouterID = "fd00::1" }, `routerID: "fd00::1" is not an IPv4 address like 192.0.2.1`},
		{"router id empty", func(c *bgp.Config) { c.RouterID = "" }, `routerID: "" is not an IPv4 address like 192.0.2.1`},
		{"listen address", func(c *bgp.Config) { c.ListenAddress = "eth0" }, `listenAddress: "eth0" is not an IP address`},
		{"listen port", func(c *bgp.Config) { c.ListenPort = 70000 }, "listenPort: 70000 is not a port (1-65535, 0 for the default 1179, -1 for no listener)"},
		{"no peers", func(c *bgp.Config) { c.Peers = nil }, "peers: at least one peer is needed"},
		{"peer address", func(c *bgp.Config) { c.Peers[0].Address = "router1" }, `peers[0].address: "router1" is not an IP address`},
		{"duplicate peer", func(c *bgp.Config) { c.Peers = append(c.Peers, bgp.PeerConfig{Address: "10.0.0.1", ASN: 1}) }, "peers[1].address: 10.0.0.1 is already peers[0]"},
		{"duplicate peer, ipv4-mapped", func(c *bgp.Config) { c.Peers = append(c.Peers, bgp.PeerConfig{Address: "::ffff:10.0.0.1", ASN: 1}) }, "peers[1].address: 10.0.0.1 is already peers[0]"},
		{"duplicate peer, mapped first", func(c *bgp.Config) {
			c.Peers[0].Address = "::ffff:127.0.0.3"
			c.Peers = append(c.Peers, bgp.PeerConfig{Address: "127.0.0.3", ASN: 1})
		}, "peers[1].address: 127.0.0.3 is already peers[0]"},
		{"zoned peer", func(c *bgp.Config) { c.Peers[0].Address = "fe80::1%lo" },
			`peers[0].address: "fe80::1%lo" has a zone (%lo): zone-scoped (link-local) addresses are not supported; use a global or unique-local address`},
		{"zoned listen address", func(c *bgp.Config) { c.ListenAddress = "fe80::2%eth0" },
			`listenAddress: "fe80::2%eth0" has a zone (%eth0): zone-scoped (link-local) addresses are not supported; use a global or unique-local address`},
		{"zoned router id", func(c *bgp.Config) { c.RouterID = "fe80::2%eth0" }, `routerID: "fe80::2%eth0" is not an IPv4 address like 192.0.2.1`},
		{"zoned service address", func(c *bgp.Config) { c.ServiceAddresses = []string{"fe80::3%eth0"} },
			`serviceAddresses[0]: "fe80::3%eth0" has a zone (%eth0): zone-scoped (link-local) addresses are not supported; use a global or unique-local address`},
		{"peer family differs from listenAddress", func(c *bgp.Config) { c.ListenAddress = "10.0.0.2"; c.Peers[0].Address = "fd00::1" },
			"peers[0].address: fd00::1 is IPv6 but listenAddress 10.0.0.2 is IPv4"},
		{"peer asn", func(c *bgp.Config) { c.Peers[0].ASN = 0 }, "peers[0].asn: must be set (1-4294967295)"},
		{"passive without listener", func(c *bgp.Config) { c.ListenPort = -1; c.Peers[0].Passive = true }, "peers[0].passive: a passive peer needs a listener, but listenPort is -1"},
		{"long password", func(c *bgp.Config) { c.Peers[0].Password = strings.Repeat("p", 81) }, "peers[0].password: longer than 80 bytes (81)"},
		{"hold time", func(c *bgp.Config) { c.Peers[0].HoldTime = hold(2) }, "peers[0].holdTime: 2 is not 0 or 3-65535 seconds"},
		{"family", func(c *bgp.Config) { c.Peers[0].Families = []string{"ipv4"} }, `peers[0].families: "ipv4" is not ipv4-unicast or ipv6-unicast`},
		{"family twice", func(c *bgp.Config) { c.Peers[0].Families = []string{"ipv4-unicast", "ipv4-unicast"} }, `peers[0].families: "ipv4-unicast" is listed twice`},
		{"cloud prefix", func(c *bgp.Config) { c.CloudPrefixes = []string{"192.168.0.0"} }, `cloudPrefixes[0]: "192.168.0.0" is not a CIDR`},
		{"cloud prefix host bits", func(c *bgp.Config) { c.CloudPrefixes = []string{"192.168.1.0/16"} }, `cloudPrefixes[0]: "192.168.1.0/16" has host bits set (did you mean 192.168.0.0/16?)`},
		{"service address", func(c *bgp.Config) { c.ServiceAddresses = []string{"dns"} }, `serviceAddresses[0]: "dns" is not an IP address`},
		{"two errors", func(c *bgp.Config) { c.LocalASN = 0; c.Peers[0].ASN = 0 }, "localASN: must be set (1-4294967295)\npeers[0].asn: must be set (1-4294967295)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigPasswordNotInErrors(t *testing.T) {
	c := validConfig()
	c.Peers[0].Password = "hunter2-secret"
	c.Peers[0].ASN = 0
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestInvalidConfigIsAnErrorAtOnce(t *testing.T) {
	if _, err := bgp.NewProvider(&bgp.Config{}, diag.Env{}); err == nil || !strings.HasPrefix(err.Error(), "bgp: localASN") {
		t.Errorf("NewProvider(invalid) = %v", err)
	}
}
