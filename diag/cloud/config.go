package cloud

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/vnodediag/vnodediag/diag"
)

// Defaults of the cloud section.
const (
	DefaultQPS             = 10
	DefaultRequestTimeout  = 10 * time.Second
	DefaultRouteEntryQuota = 200
)

// Config is the `cloud` section of the configuration.
type Config struct {
	// RegionID is the cluster's region, e.g. cn-shanghai.
	RegionID string `json:"regionId"`
	// VPCID is the cluster's VPC; empty discovers it from the ECS instances
	// of the cluster's nodes (two VPCs there is an error naming both).
	VPCID string `json:"vpcId,omitempty"`
	// Endpoints overrides the endpoint of a product, for VPC endpoints
	// (ecs-vpc.<region>.aliyuncs.com) and private clouds: a host, or an
	// https:// URL (http:// only to a loopback address).
	Endpoints Endpoints `json:"endpoints,omitempty"`
	// QPS limits the API requests per second of the whole source (default
	// 10; -1 for no limit). Alibaba Cloud throttles per account, and the
	// cloud controller manager shares that budget.
	QPS float64 `json:"qps,omitempty"`
	// RequestTimeout bounds each API request (default 10s); the source as a
	// whole is bounded by the runner's source timeout.
	RequestTimeout diag.Duration `json:"requestTimeout,omitempty"`
	// Profile selects a profile of the Alibaba Cloud CLI configuration
	// (~/.aliyun/config.json, then ~/.alibabacloud/credentials); when set,
	// only that profile is used.
	Profile string `json:"profile,omitempty"`
	// OnPremCIDRs are on-prem networks (besides the on-prem nodes'
	// podCIDRs) the VPC must route toward the leased line.
	OnPremCIDRs []string `json:"onPremCIDRs,omitempty"`
	// RouteEntryQuota is the custom route entries a route table may hold
	// (default 200, the VPC default quota); a table at 90 % of it WARNs.
	RouteEntryQuota int `json:"routeEntryQuota,omitempty"`
	// VBRIDs are the VBRs of the leased line (default: the VBRs that
	// advertise a network of the VPC, that the VPC routes to, or whose BGP
	// peers are the bgp section's routers).
	VBRIDs []string `json:"vbrIds,omitempty"`
	// OnPremASN is the AS every VBR BGP peer must have (default: the ASNs
	// of the bgp section's peers, when it is configured).
	OnPremASN uint32 `json:"onPremASN,omitempty"`
	// InboundEndpointIDs are the PrivateZone inbound endpoints on-prem
	// forwards to (default: the resolver endpoints of the VPC that no
	// forwarding rule uses).
	InboundEndpointIDs []string `json:"inboundEndpointIds,omitempty"`
	// RequiredPorts is what security groups must admit from on-prem:
	// "tcp/80", "udp/8000-9000", "icmp" (default: all of TCP, UDP, ICMP).
	RequiredPorts []string `json:"requiredPorts,omitempty"`
	// ECISecurityGroupIDs and ECIVSwitchIDs replace what the eci-profile
	// ConfigMap in kube-system says ECI pods use.
	ECISecurityGroupIDs []string `json:"eciSecurityGroupIds,omitempty"`
	ECIVSwitchIDs       []string `json:"eciVSwitchIds,omitempty"`

	norm *settings
}

// Endpoints are per-product endpoint overrides.
type Endpoints struct {
	ECS  string `json:"ecs,omitempty"`
	VPC  string `json:"vpc,omitempty"`
	PVTZ string `json:"pvtz,omitempty"`
}

var (
	regionRe = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)
	vpcIDRe  = regexp.MustCompile(`^vpc-[a-z0-9]{6,}$`)
	vbrIDRe  = regexp.MustCompile(`^vbr-[a-z0-9]{6,}$`)
	sgIDRe   = regexp.MustCompile(`^sg-[a-z0-9]{6,}$`)
	vswIDRe  = regexp.MustCompile(`^vsw-[a-z0-9]{6,}$`)
	// PrivateZone endpoint IDs are short opaque strings ("hr-...").
	endpointIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{2,64}$`)
	profileRe    = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
)

// Validate checks the section without touching the network and keeps the
// settings the provider uses. Messages name the field, as
// `endpoints.ecs: ...`.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.RegionID == "":
		add("regionId: must be set (the cluster's region, e.g. cn-shanghai)")
	case !regionRe.MatchString(c.RegionID):
		add("regionId: %q is not a region ID (e.g. cn-shanghai)", c.RegionID)
	}
	if c.VPCID != "" && !vpcIDRe.MatchString(c.VPCID) {
		add("vpcId: %q is not a VPC ID (vpc-...)", c.VPCID)
	}
	for _, e := range []struct{ name, value string }{{"ecs", c.Endpoints.ECS}, {"vpc", c.Endpoints.VPC}, {"pvtz", c.Endpoints.PVTZ}} {
		if e.value == "" {
			continue
		}
		if _, err := parseEndpoint(e.value); err != nil {
			add("endpoints.%s: %v", e.name, err)
		}
	}
	if c.QPS < 0 && c.QPS != -1 {
		add("qps: %v is not a rate (a positive number, 0 for the default %d, -1 for no limit)", c.QPS, DefaultQPS)
	}
	if c.Profile != "" && !profileRe.MatchString(c.Profile) {
		add("profile: %q is not a profile name", c.Profile)
	}
	for i, s := range c.OnPremCIDRs {
		if p, err := netip.ParsePrefix(s); err != nil {
			add("onPremCIDRs[%d]: %q is not a CIDR", i, s)
		} else if p.Masked() != p {
			add("onPremCIDRs[%d]: %q has host bits set (did you mean %s?)", i, s, p.Masked())
		}
	}
	if c.RouteEntryQuota < 0 {
		add("routeEntryQuota: must not be negative")
	}
	for _, f := range []struct {
		name string
		ids  []string
		re   *regexp.Regexp
		what string
	}{
		{"vbrIds", c.VBRIDs, vbrIDRe, "a VBR ID (vbr-...)"},
		{"inboundEndpointIds", c.InboundEndpointIDs, endpointIDRe, "a resolver endpoint ID"},
		{"eciSecurityGroupIds", c.ECISecurityGroupIDs, sgIDRe, "a security group ID (sg-...)"},
		{"eciVSwitchIds", c.ECIVSwitchIDs, vswIDRe, "a vSwitch ID (vsw-...)"},
	} {
		for i, id := range f.ids {
			if !f.re.MatchString(id) {
				add("%s[%d]: %q is not %s", f.name, i, id, f.what)
			}
		}
	}
	for i, p := range c.RequiredPorts {
		if _, err := parsePortSpec(p); err != nil {
			add("requiredPorts[%d]: %v", i, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.norm = c.normalise()
	return nil
}

// endpoint is where a product's requests go.
type endpoint struct {
	scheme string // HTTPS or HTTP
	host   string // host[:port]
}

// parseEndpoint accepts "host", "host:port" or an http(s) URL without path.
// Plain http is refused except to loopback: requests carry the signature
// and, with STS credentials, the security token in the query string.
func parseEndpoint(s string) (endpoint, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("%q is not a host or an https:// URL", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("%q: want only a scheme and a host, e.g. https://ecs-vpc.cn-shanghai.aliyuncs.com", s)
	}
	switch u.Scheme {
	case "https":
		return endpoint{scheme: "HTTPS", host: u.Host}, nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return endpoint{}, fmt.Errorf("%q: plain http would send signed requests (and STS tokens) in clear text; use https (http is accepted only to a loopback address)", s)
		}
		return endpoint{scheme: "HTTP", host: u.Host}, nil
	}
	return endpoint{}, fmt.Errorf("%q: scheme must be https", s)
}

// settings is a validated Config with defaults applied, made once.
type settings struct {
	region          string
	vpcID           string
	endpoints       map[string]endpoint // product key: ecs, vpc, pvtz
	qps             rate.Limit
	requestTimeout  time.Duration
	profile         string
	onPrem          []netip.Prefix
	routeEntryQuota int
	expect          Expectations
	eciGroups       []string
	eciVSwitches    []string
}

// settings returns the settings Validate kept, validating now if it has
// not run.
func (c *Config) settings() (*settings, error) {
	if c.norm == nil {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
	}
	return c.norm, nil
}

// normalise applies the defaults to a valid c.
func (c *Config) normalise() *settings {
	s := &settings{
		region:          c.RegionID,
		vpcID:           c.VPCID,
		endpoints:       map[string]endpoint{},
		qps:             DefaultQPS,
		requestTimeout:  DefaultRequestTimeout,
		profile:         c.Profile,
		routeEntryQuota: DefaultRouteEntryQuota,
	}
	for k, v := range map[string]string{"ecs": c.Endpoints.ECS, "vpc": c.Endpoints.VPC, "pvtz": c.Endpoints.PVTZ} {
		if v != "" {
			s.endpoints[k], _ = parseEndpoint(v)
		}
	}
	switch {
	case c.QPS == -1:
		s.qps = rate.Inf
	case c.QPS > 0:
		s.qps = rate.Limit(c.QPS)
	}
	if c.RequestTimeout > 0 {
		s.requestTimeout = c.RequestTimeout.D()
	}
	for _, p := range c.OnPremCIDRs {
		s.onPrem = append(s.onPrem, netip.MustParsePrefix(p))
	}
	if c.RouteEntryQuota > 0 {
		s.routeEntryQuota = c.RouteEntryQuota
	}
	s.expect = Expectations{VBRIDs: c.VBRIDs, OnPremASN: c.OnPremASN, InboundEndpoint: c.InboundEndpointIDs}
	for _, p := range c.RequiredPorts {
		ps, _ := parsePortSpec(p) // validated
		s.expect.RequiredPorts = append(s.expect.RequiredPorts, ps...)
	}
	if len(s.expect.RequiredPorts) == 0 {
		s.expect.RequiredPorts = allTraffic
	}
	s.eciGroups, s.eciVSwitches = c.ECISecurityGroupIDs, c.ECIVSwitchIDs
	return s
}

// notConfigured is why the cloud checks SKIP without a cloud section, and
// the lines that turn them on.
const notConfigured = `no cloud section in the configuration: add cloud.regionId (credentials come from the Alibaba Cloud default chain):
  cloud:
    regionId: cn-shanghai        # the cluster's region
    # vpcId: vpc-...             # default: the VPC of the ECS nodes' instances
    # onPremCIDRs: [10.10.0.0/16]`
