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
	// answers). When it cannot, dns.onprem-from-cloud SKIPs until the
	// cloud-side agent exists.
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
	Timeout string `json:"timeout,omitempty"`
	// Retries re-sends an unanswered UDP query within Timeout (default 0).
	Retries int `json:"retries,omitempty"`
	// Concurrency bounds the queries in flight (default 128). The section
	// takes one query deadline as long as the silent queries fit in it.
	Concurrency int `json:"concurrency,omitempty"`
	// UDPSize is the EDNS0 buffer size advertised (default 1232).
	UDPSize int `json:"udpSize,omitempty"`
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
			if !validZone(s) || normZone(s) == "." {
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
	if c.ClusterDomain != "" && (!validZone(c.ClusterDomain) || normZone(c.ClusterDomain) == ".") {
		add("clusterDomain: %q is not a domain name", c.ClusterDomain)
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			add("timeout: %q is not a positive duration like 2s", c.Timeout)
		}
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

// canonical returns a copy of c with every resolver address and forward
// target in the form HostPort gives ("10.0.0.53:53", "[2001:db8::53]:53"),
// which is the form queries and outcomes are keyed by. The checks work on
// the canonical copy, so no lookup by address needs to handle an error; a
// bad address is the error returned here, naming the field.
func (c *Config) canonical() (Config, error) {
	out := *c
	var errs []error
	canon := func(s string, field string, i int, name string) string {
		hp, err := HostPort(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", field, i, name, err))
			return s
		}
		return hp
	}
	out.OnPremResolvers = slices.Clone(c.OnPremResolvers)
	for i := range out.OnPremResolvers {
		r := &out.OnPremResolvers[i]
		r.Address = canon(r.Address, "onPremResolvers", i, r.Name)
	}
	out.CloudResolvers = slices.Clone(c.CloudResolvers)
	for i := range out.CloudResolvers {
		r := &out.CloudResolvers[i]
		r.Address = canon(r.Address, "cloudResolvers", i, r.Name)
	}
	out.Forwarders = slices.Clone(c.Forwarders)
	for i := range out.Forwarders {
		f := &out.Forwarders[i]
		f.Targets = slices.Clone(f.Targets)
		for j := range f.Targets {
			f.Targets[j] = canon(f.Targets[j], "forwarders", i, f.Zone)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("dns configuration: %w", err)
	}
	return out, nil
}

// QueryTimeout is the per-query deadline.
func (c *Config) QueryTimeout() time.Duration {
	if d, err := time.ParseDuration(c.Timeout); err == nil && d > 0 {
		return d
	}
	return 2 * time.Second
}

func (c *Config) concurrency() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return 128
}

func (c *Config) reachability() Reachability {
	if c.CloudReachable == "" {
		return ReachAuto
	}
	return c.CloudReachable
}

// forwardTargets are the targets of zone; c is canonical.
func (c *Config) forwardTargets(zone string) []string {
	var out []string
	for _, f := range c.Forwarders {
		if normZone(f.Zone) == normZone(zone) {
			out = append(out, f.Targets...)
		}
	}
	return out
}

// zoneOfResolver is the zone whose SOA proves the resolver answers.
func (c *Config) zoneOfResolver(r Resolver, cloud bool) string {
	switch {
	case r.Zone != "":
		return normZone(r.Zone)
	case !cloud && len(c.OnPremZones) > 0:
		return normZone(c.OnPremZones[0])
	case cloud && len(c.PrivateZones) > 0:
		return normZone(c.PrivateZones[0])
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

// normZone is a zone in canonical form: lower case, trailing dot, "." for
// the root.
func normZone(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "." {
		return "."
	}
	return dns.Fqdn(s)
}

// ZoneOf returns the most specific of zones that contains name, "" if none.
func ZoneOf(name string, zones []string) string {
	n := normZone(name)
	best := ""
	for _, z := range zones {
		z = normZone(z)
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
