package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Defaults of the agent's configuration.
const (
	DefaultInterval        = time.Minute
	DefaultDNSTimeout      = 2 * time.Second
	DefaultConnectTimeout  = 3 * time.Second
	DefaultMetadataTimeout = 2 * time.Second
	DefaultConcurrency     = 128
	DefaultResolvConf      = "/etc/resolv.conf"
	// DefaultMetadataURL is the ECI MetaServer.
	DefaultMetadataURL = "http://100.100.100.200/latest/meta-data"
	// DefaultPort is the port ProbeService listens on.
	DefaultPort = 7444
)

// Limits that keep one round bounded, whatever the plan says.
const (
	maxNames   = 2000
	maxTargets = 500
	maxServers = 16
)

// Config is the agent's configuration file (a ConfigMap in the cluster):
// the probe plan and the time between rounds.
type Config struct {
	// Interval between rounds (default 1m).
	Interval diag.Duration `json:"interval,omitempty"`
	// Concurrency bounds the probes in flight (default 128). A round costs
	// about one deadline as long as the silent probes fit in it.
	Concurrency int       `json:"concurrency,omitempty"`
	DNS         DNSConfig `json:"dns,omitempty"`
	// Targets are on-prem TCP endpoints to connect to.
	Targets []Target `json:"targets,omitempty"`
	// ConnectTimeout is the deadline of one TCP connect (default 3s).
	ConnectTimeout diag.Duration  `json:"connectTimeout,omitempty"`
	Metadata       MetadataConfig `json:"metadata,omitempty"`
}

// DNSConfig is what the agent resolves and through which servers.
type DNSConfig struct {
	// ResolvConf is the resolv.conf whose nameservers are the pod's own
	// resolver path (default /etc/resolv.conf).
	ResolvConf string `json:"resolvConf,omitempty"`
	// VPCResolvers are queried directly (default 100.100.2.136, 100.100.2.138);
	// host or host:port.
	VPCResolvers []string `json:"vpcResolvers,omitempty"`
	// OnPremResolvers are the on-prem DNS servers the PrivateZone forwarding
	// rules point to, queried directly over the leased line.
	OnPremResolvers []string `json:"onPremResolvers,omitempty"`
	// OnPremZones and PrivateZones are the zones of each side; every name
	// lies in one of them.
	OnPremZones  []string `json:"onPremZones,omitempty"`
	PrivateZones []string `json:"privateZones,omitempty"`
	// Names to resolve, with the expected answer when one is set.
	Names []dnsprobe.Name `json:"names,omitempty"`
	// Timeout is the deadline of one query (default 2s).
	Timeout diag.Duration `json:"timeout,omitempty"`
}

// Target is an on-prem TCP endpoint.
type Target struct {
	Name string `json:"name"`
	// Address is ip:port.
	Address string `json:"address"`
}

// MetadataConfig is where the ECI metadata is read.
type MetadataConfig struct {
	// URL is the MetaServer base (default
	// http://100.100.100.200/latest/meta-data).
	URL string `json:"url,omitempty"`
	// Disabled skips the metadata reads.
	Disabled bool `json:"disabled,omitempty"`
	// Timeout of one read (default 2s).
	Timeout diag.Duration `json:"timeout,omitempty"`
}

// Load reads and validates the agent's configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes one YAML document strictly, as vnodediag's own
// configuration (exact field names, errors naming their line), and
// validates it.
func Parse(b []byte) (*Config, error) {
	c := &Config{}
	if err := config.DecodeYAML(b, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the configuration without touching the network and names
// the field that is wrong.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Concurrency < 0 || c.Concurrency > 4096 {
		add("concurrency: want 1 to 4096, got %d", c.Concurrency)
	}
	for _, s := range []struct {
		field string
		addrs []string
	}{{"dns.vpcResolvers", c.DNS.VPCResolvers}, {"dns.onPremResolvers", c.DNS.OnPremResolvers}} {
		if len(s.addrs) > maxServers {
			add("%s: at most %d servers, got %d", s.field, maxServers, len(s.addrs))
		}
		for i, a := range s.addrs {
			if _, err := dnsprobe.HostPort(a); err != nil {
				add("%s[%d]: %v", s.field, i, err)
			}
		}
	}
	for _, z := range []struct {
		field string
		zones []string
	}{{"dns.onPremZones", c.DNS.OnPremZones}, {"dns.privateZones", c.DNS.PrivateZones}} {
		for i, s := range z.zones {
			if _, ok := dns.IsDomainName(s); !ok || s == "" || s == "." {
				add("%s[%d]: %q is not a domain name", z.field, i, s)
			}
		}
	}
	if len(c.DNS.Names) > maxNames {
		add("dns.names: at most %d names, got %d", maxNames, len(c.DNS.Names))
	}
	zones := append(append([]string{}, c.DNS.OnPremZones...), c.DNS.PrivateZones...)
	for i, n := range c.DNS.Names {
		if _, ok := dns.IsDomainName(n.Name); !ok || n.Name == "" {
			add("dns.names[%d]: %q is not a domain name", i, n.Name)
			continue
		}
		if _, ok := dnsprobe.QType(n.Type); !ok {
			add("dns.names[%d] %q: type %q: want A, AAAA, CNAME, SRV or SOA", i, n.Name, n.Type)
		}
		if dnsprobe.ZoneOf(n.Name, zones) == "" {
			add("dns.names[%d]: %q is not inside any of dns.onPremZones or dns.privateZones %v", i, n.Name, zones)
		}
	}
	if len(c.Targets) > maxTargets {
		add("targets: at most %d targets, got %d", maxTargets, len(c.Targets))
	}
	names := map[string]bool{}
	for i, t := range c.Targets {
		switch {
		case t.Name == "":
			add("targets[%d]: name is required", i)
		case names[t.Name]:
			add("targets[%d]: duplicate name %q", i, t.Name)
		}
		names[t.Name] = true
		if _, err := targetAddr(t.Address); err != nil {
			add("targets[%d] %q: address: %v", i, t.Name, err)
		}
	}
	if c.Metadata.URL != "" {
		if u, err := url.Parse(c.Metadata.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("metadata.url: %q is not an http(s) URL", c.Metadata.URL)
		}
	}
	for _, d := range []struct {
		field string
		d     diag.Duration
		max   time.Duration
	}{
		{"interval", c.Interval, 24 * time.Hour},
		{"dns.timeout", c.DNS.Timeout, time.Minute},
		{"connectTimeout", c.ConnectTimeout, time.Minute},
		{"metadata.timeout", c.Metadata.Timeout, time.Minute},
	} {
		if d.d.D() > d.max {
			add("%s: %s is longer than %s", d.field, d.d.D(), d.max)
		}
	}
	if c.Interval != 0 && c.Interval.D() < time.Second {
		add("interval: %s is shorter than 1s", c.Interval.D())
	}
	return errors.Join(errs...)
}

// targetAddr normalises ip:port; a target is not found through DNS, so that
// a DNS problem never hides behind a connect failure.
func targetAddr(s string) (string, error) {
	ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
	if err != nil {
		host, port, serr := net.SplitHostPort(s)
		if serr != nil {
			return "", fmt.Errorf("%q: want ip:port", s)
		}
		if _, perr := netip.ParseAddr(host); perr != nil {
			return "", fmt.Errorf("%q: host is not an IP address", s)
		}
		return "", fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	if ap.Port() == 0 {
		return "", fmt.Errorf("%q: port 0", s)
	}
	return ap.String(), nil
}

// Plan is the validated configuration as the round's plan, with defaults
// applied and addresses normalised.
func (c *Config) Plan() (*pb.ProbePlan, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &pb.ProbePlan{
		ResolvConf:      orDefault(c.DNS.ResolvConf, DefaultResolvConf),
		OnpremZones:     normZones(c.DNS.OnPremZones),
		PrivateZones:    normZones(c.DNS.PrivateZones),
		DnsTimeout:      durationpb.New(orDuration(c.DNS.Timeout, DefaultDNSTimeout)),
		ConnectTimeout:  durationpb.New(orDuration(c.ConnectTimeout, DefaultConnectTimeout)),
		MetadataTimeout: durationpb.New(orDuration(c.Metadata.Timeout, DefaultMetadataTimeout)),
		Concurrency:     int32(c.Concurrency),
	}
	if p.Concurrency == 0 {
		p.Concurrency = DefaultConcurrency
	}
	vpc := c.DNS.VPCResolvers
	if vpc == nil {
		vpc = cloudnet.VPCDNSStrings()
	}
	p.VpcResolvers = hostPorts(vpc)
	p.OnpremResolvers = hostPorts(c.DNS.OnPremResolvers)
	for _, n := range c.DNS.Names {
		t, _ := dnsprobe.QType(n.Type)
		p.Names = append(p.Names, &pb.ProbeName{Name: corefile.CanonicalName(n.Name), Type: dns.TypeToString[t], Expect: n.Expect})
	}
	for _, t := range c.Targets {
		a, _ := targetAddr(t.Address)
		p.Targets = append(p.Targets, &pb.ProbeTarget{Name: t.Name, Address: a})
	}
	if !c.Metadata.Disabled {
		p.MetadataUrl = strings.TrimSuffix(orDefault(c.Metadata.URL, DefaultMetadataURL), "/")
	}
	return p, nil
}

// IntervalOrDefault is the time between rounds.
func (c *Config) IntervalOrDefault() time.Duration { return orDuration(c.Interval, DefaultInterval) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d diag.Duration, def time.Duration) time.Duration {
	if d.D() <= 0 {
		return def
	}
	return d.D()
}

func hostPorts(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range in {
		hp, err := dnsprobe.HostPort(a)
		if err != nil || seen[hp] {
			continue
		}
		seen[hp] = true
		out = append(out, hp)
	}
	return out
}

func normZones(in []string) []string {
	out := make([]string, len(in))
	for i, z := range in {
		out[i] = corefile.CanonicalName(z)
	}
	return out
}
