package dnsprobe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
)

// Config is the `dns` section of the configuration.
type Config struct {
	// OnPremResolvers are the on-prem DNS servers; they must resolve the
	// PrivateZone names (conditional forward to the PrivateZone inbound
	// endpoint).
	OnPremResolvers []Resolver `json:"onPremResolvers,omitempty"`
	// CloudResolvers are the cloud-side resolvers (VPC DNS 100.100.2.136,
	// 100.100.2.138); they must resolve the on-prem names (PrivateZone
	// forwarding rules to on-prem DNS).
	CloudResolvers []Resolver `json:"cloudResolvers,omitempty"`
	// CloudReachable says whether this host can query the cloud resolvers
	// directly: true, false, or "auto" (default: yes when one of them
	// answers). When it cannot, dns.onprem-from-cloud and the cloud side
	// of dns.resolver-reachable are judged only from the cloud-side agents
	// (the agent section).
	CloudReachable Reachability `json:"cloudReachable,omitempty"`
	// PrivateZones and OnPremZones are the zone names on each side.
	PrivateZones []string `json:"privateZones,omitempty"`
	OnPremZones  []string `json:"onPremZones,omitempty"`
	// PrivateZoneNames are resolved through every on-prem resolver; each must
	// lie in one of PrivateZones.
	PrivateZoneNames []Name `json:"privateZoneNames,omitempty"`
	// OnPremNames are resolved through every cloud resolver; each must lie in
	// one of OnPremZones.
	OnPremNames []Name `json:"onPremNames,omitempty"`
	// Forwarders are, per zone, the addresses the other side's resolvers
	// forward that zone to: the PrivateZone inbound endpoint IPs for a
	// PrivateZone zone, the on-prem DNS servers for an on-prem zone. They
	// are queried directly to tell which hop is broken, and they are the
	// forward targets expected in the CoreDNS Corefile.
	Forwarders []Forwarder `json:"forwarders,omitempty"`
	// ClusterDomain is used when the cluster has no CoreDNS ConfigMap
	// (default cluster.local).
	ClusterDomain string `json:"clusterDomain,omitempty"`
	// Timeout is the deadline of one query, retries included (default 2s).
	Timeout diag.Duration `json:"timeout,omitempty"`
	// Retries re-sends an unanswered UDP query within Timeout (default 0).
	Retries int `json:"retries,omitempty"`
	// Concurrency bounds the queries in flight (default 128). The section
	// takes one query deadline as long as the silent queries fit in it.
	Concurrency int `json:"concurrency,omitempty"`
	// UDPSize is the EDNS0 buffer size advertised (default 1232).
	UDPSize int `json:"udpSize,omitempty"`

	norm *Config
}

// Resolver is one DNS server to query.
type Resolver struct {
	Name string `json:"name"`
	// Address is host or host:port (default port 53).
	Address string `json:"address"`
	// Zone whose SOA dns.resolver-reachable asks for (default: the first
	// on-prem zone for an on-prem resolver, the first PrivateZone for a
	// cloud resolver, else the root).
	Zone string `json:"zone,omitempty"`
}

// Name is a name to resolve, with the answer expected when one is set.
type Name struct {
	Name string `json:"name"`
	// Type is A (default), AAAA, CNAME, SRV or SOA.
	Type string `json:"type,omitempty"`
	// Expect is the exact set of values of the answer (addresses, CNAME
	// target, "prio weight port target" for SRV); empty accepts any answer.
	Expect []string `json:"expect,omitempty"`
}

// Forwarder is where a zone is forwarded.
type Forwarder struct {
	Zone string `json:"zone"`
	// Targets are host or host:port (default port 53).
	Targets []string `json:"targets"`
}

// Reachability is true, false or auto.
type Reachability string

// The values of CloudReachable.
const (
	ReachAuto Reachability = "auto"
	ReachYes  Reachability = "true"
	ReachNo   Reachability = "false"
)

// UnmarshalJSON accepts a boolean or the string "auto".
func (r *Reachability) UnmarshalJSON(b []byte) error {
	var v bool
	if err := json.Unmarshal(b, &v); err == nil {
		*r = ReachNo
		if v {
			*r = ReachYes
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch strings.ToLower(s) {
		case "auto", "":
			*r = ReachAuto
			return nil
		case "true":
			*r = ReachYes
			return nil
		case "false":
			*r = ReachNo
			return nil
		}
	}
	return fmt.Errorf("cloudReachable: want true, false or \"auto\", got %s", b)
}

// MarshalJSON writes a boolean, or "auto".
func (r Reachability) MarshalJSON() ([]byte, error) {
	switch r {
	case ReachYes:
		return []byte("true"), nil
	case ReachNo:
		return []byte("false"), nil
	}
	return []byte(`"auto"`), nil
}

// Validate checks the section without touching the network and names the
// field that is wrong. Addresses are compared in canonical form, so
// 127.0.0.3 and ::ffff:127.0.0.3:53 are the same resolver.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	norm := c.canonical()
	c.norm = &norm
	return nil
}

// settings returns the canonical copy Validate made, validating now if it
// has not run.
func (c *Config) settings() (*Config, error) {
	if c.norm == nil {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
	}
	return c.norm, nil
}

// validate names every field that is wrong.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.OnPremResolvers) == 0 && len(c.CloudResolvers) == 0 {
		add("onPremResolvers, cloudResolvers: at least one resolver is required")
	}
	names := map[string]bool{}
	addrs := map[string]string{} // canonical address -> the resolver that has it
	for _, side := range []struct {
		field string
		rs    []Resolver
	}{{"onPremResolvers", c.OnPremResolvers}, {"cloudResolvers", c.CloudResolvers}} {
		for i, r := range side.rs {
			switch {
			case r.Name == "":
				add("%s[%d]: name is required", side.field, i)
			case names[r.Name]:
				add("%s[%d]: duplicate resolver name %q", side.field, i, r.Name)
			}
			names[r.Name] = true
			self := fmt.Sprintf("%s[%d] %q", side.field, i, r.Name)
			hp, err := HostPort(r.Address)
			switch {
			case err != nil:
				add("%s: address: %v", self, err)
			case addrs[hp] != "":
				add("%s: address %s is also %s", self, hp, addrs[hp])
			default:
				addrs[hp] = self
			}
			if r.Zone != "" && !validZone(r.Zone) {
				add("%s: zone %q is not a domain name", self, r.Zone)
			}
		}
	}
	for _, z := range []struct {
		field string
		zones []string
	}{{"privateZones", c.PrivateZones}, {"onPremZones", c.OnPremZones}} {
		for i, s := range z.zones {
			if !validZone(s) || corefile.CanonicalName(s) == "." {
				add("%s[%d]: %q is not a domain name", z.field, i, s)
			}
		}
	}
	for _, n := range []struct {
		field, zonesField string
		names             []Name
		zones             []string
	}{{"privateZoneNames", "privateZones", c.PrivateZoneNames, c.PrivateZones}, {"onPremNames", "onPremZones", c.OnPremNames, c.OnPremZones}} {
		for i, name := range n.names {
			if _, ok := dns.IsDomainName(name.Name); !ok || name.Name == "" {
				add("%s[%d]: %q is not a domain name", n.field, i, name.Name)
				continue
			}
			if _, ok := QType(name.Type); !ok {
				add("%s[%d] %q: type %q: want A, AAAA, CNAME, SRV or SOA", n.field, i, name.Name, name.Type)
			}
			if ZoneOf(name.Name, n.zones) == "" {
				add("%s[%d]: %q is not inside any of %s %s", n.field, i, name.Name, n.zonesField, capList(n.zones, maxListed))
			}
		}
	}
	for i, f := range c.Forwarders {
		if !validZone(f.Zone) {
			add("forwarders[%d]: zone %q is not a domain name", i, f.Zone)
		}
		if len(f.Targets) == 0 {
			add("forwarders[%d] %q: targets: at least one address is required", i, f.Zone)
		}
		seen := map[string]int{}
		for j, t := range f.Targets {
			hp, err := HostPort(t)
			if err != nil {
				add("forwarders[%d] %q: target: %v", i, f.Zone, err)
				continue
			}
			if k, dup := seen[hp]; dup {
				add("forwarders[%d] %q: targets[%d] %s is also targets[%d]", i, f.Zone, j, hp, k)
				continue
			}
			seen[hp] = j
		}
	}
	if c.ClusterDomain != "" && (!validZone(c.ClusterDomain) || corefile.CanonicalName(c.ClusterDomain) == ".") {
		add("clusterDomain: %q is not a domain name", c.ClusterDomain)
	}
	if c.Retries < 0 || c.Retries > 5 {
		add("retries: want 0 to 5, got %d", c.Retries)
	}
	if c.Concurrency < 0 {
		add("concurrency: must not be negative, got %d", c.Concurrency)
	}
	if c.UDPSize != 0 && (c.UDPSize < 512 || c.UDPSize > 65535) {
		add("udpSize: want 512 to 65535, got %d", c.UDPSize)
	}
	switch c.CloudReachable {
	case "", ReachAuto, ReachYes, ReachNo:
	default:
		add("cloudReachable: want true, false or \"auto\", got %q", string(c.CloudReachable))
	}
	return errors.Join(errs...)
}

// maxListed caps the values an error message lists.
const maxListed = 10

// capList formats values as [a b c], at most n of them and then how many
// more, so that an error about a long list stays readable.
func capList(values []string, n int) string {
	if len(values) <= n {
		return fmt.Sprint(values)
	}
	return fmt.Sprintf("%v and %d more]", strings.TrimSuffix(fmt.Sprint(values[:n]), "]"), len(values)-n)
}

// canonical returns a copy of a validated c in the one form the source and
// the checks use: every resolver address and forward target as HostPort
// gives it ("10.0.0.53:53", "[2001:db8::53]:53"), which queries and
// outcomes are keyed by, and every zone and name lower case with its
// trailing dot. Nothing downstream normalises configuration again.
func (c *Config) canonical() Config {
	out := *c
	out.norm = nil
	addr := func(s string) string {
		hp, _ := HostPort(s) // validated
		return hp
	}
	resolvers := func(rs []Resolver) []Resolver {
		rs = slices.Clone(rs)
		for i := range rs {
			rs[i].Address = addr(rs[i].Address)
			if rs[i].Zone != "" {
				rs[i].Zone = corefile.CanonicalName(rs[i].Zone)
			}
		}
		return rs
	}
	zones := func(zs []string) []string {
		out := make([]string, len(zs))
		for i, z := range zs {
			out[i] = corefile.CanonicalName(z)
		}
		return out
	}
	names := func(ns []Name) []Name {
		ns = slices.Clone(ns)
		for i := range ns {
			ns[i].Name = corefile.CanonicalName(ns[i].Name)
			if ns[i].Type == "" {
				ns[i].Type = "A"
			}
			ns[i].Type = strings.ToUpper(ns[i].Type)
		}
		return ns
	}
	out.OnPremResolvers, out.CloudResolvers = resolvers(c.OnPremResolvers), resolvers(c.CloudResolvers)
	out.PrivateZones, out.OnPremZones = zones(c.PrivateZones), zones(c.OnPremZones)
	out.PrivateZoneNames, out.OnPremNames = names(c.PrivateZoneNames), names(c.OnPremNames)
	out.Forwarders = slices.Clone(c.Forwarders)
	for i := range out.Forwarders {
		f := &out.Forwarders[i]
		f.Zone = corefile.CanonicalName(f.Zone)
		f.Targets = slices.Clone(f.Targets)
		for j := range f.Targets {
			f.Targets[j] = addr(f.Targets[j])
		}
	}
	if out.ClusterDomain != "" {
		out.ClusterDomain = corefile.CanonicalName(out.ClusterDomain)
	}
	if out.Timeout == 0 {
		out.Timeout = diag.Duration(2 * time.Second)
	}
	if out.Concurrency == 0 {
		out.Concurrency = 128
	}
	if out.CloudReachable == "" {
		out.CloudReachable = ReachAuto
	}
	return out
}

// The helpers below read a canonical Config (see canonical).

// forwardTargets are the targets of zone.
func (c *Config) forwardTargets(zone string) []string {
	var out []string
	for _, f := range c.Forwarders {
		if f.Zone == zone {
			out = append(out, f.Targets...)
		}
	}
	return out
}

// zoneOfResolver is the zone whose SOA proves the resolver answers.
func (c *Config) zoneOfResolver(r Resolver, cloud bool) string {
	switch {
	case r.Zone != "":
		return r.Zone
	case !cloud && len(c.OnPremZones) > 0:
		return c.OnPremZones[0]
	case cloud && len(c.PrivateZones) > 0:
		return c.PrivateZones[0]
	}
	return "."
}

// HostPort normalizes host or host:port (default port 53) to host:port. The
// host must be an IP address: a resolver is not found through DNS. The form
// is canonical (netip): an IPv4-mapped IPv6 address becomes IPv4, IPv6 is
// compressed and bracketed, so that one server has one spelling. Zone-scoped
// IPv6 addresses (fe80::1%eth0) are rejected: a zone names an interface of
// this host only, so the address would mean another server, or none, from
// the cloud side and in the CoreDNS Corefile.
func HostPort(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty address")
	}
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("%q: host is not an IP address", s)
	}
	if ip.Zone() != "" {
		return "", fmt.Errorf("%q: zone-scoped IPv6 address (%%%s) is not supported; use a global or unique-local address", s, ip.Zone())
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)).String(), nil
}

func validZone(s string) bool {
	if s == "" {
		return false
	}
	_, ok := dns.IsDomainName(s)
	return ok
}

// ZoneOf returns the most specific of zones that contains name, "" if none.
func ZoneOf(name string, zones []string) string {
	n := corefile.CanonicalName(name)
	best := ""
	for _, z := range zones {
		z = corefile.CanonicalName(z)
		if dns.IsSubDomain(z, n) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

// trimDot is a name for display: no trailing dot, except the root.
func trimDot(s string) string {
	if s == "." {
		return s
	}
	return strings.TrimSuffix(s, ".")
}
