package dnsprobe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	// answers). When it cannot, dns.onprem-from-cloud judges the cloud
	// side only from the cloud-side agents (the agent section).
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
// field that is wrong.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.OnPremResolvers) == 0 && len(c.CloudResolvers) == 0 {
		add("onPremResolvers, cloudResolvers: at least one resolver is required")
	}
	names := map[string]bool{}
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
			if _, err := HostPort(r.Address); err != nil {
				add("%s[%d] %q: address: %v", side.field, i, r.Name, err)
			}
			if r.Zone != "" && !validZone(r.Zone) {
				add("%s[%d] %q: zone %q is not a domain name", side.field, i, r.Name, r.Zone)
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
				add("%s[%d]: %q is not inside any of %s %v", n.field, i, name.Name, n.zonesField, n.zones)
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
		for _, t := range f.Targets {
			if _, err := HostPort(t); err != nil {
				add("forwarders[%d] %q: target: %v", i, f.Zone, err)
			}
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

func (c *Config) forwardTargets(zone string) []string {
	var out []string
	for _, f := range c.Forwarders {
		if normZone(f.Zone) == normZone(zone) {
			for _, t := range f.Targets {
				hp, _ := HostPort(t)
				out = append(out, hp)
			}
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
// host must be an IP address: a resolver is not found through DNS.
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
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return net.JoinHostPort(ip.String(), port), nil
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
