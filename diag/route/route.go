// Package route holds the host route source and the route.* checks: which
// route the kernel of the host vnodediag runs on picks for the cloud's
// service addresses in 100.64.0.0/10, and what on-prem overlaps that range.
// The source only looks routes up (netlink); evaluation is pure.
package route

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Source is the routes source's key.
var Source = diag.NewKey[*HostRoutes]("routes")

// The check IDs of this package (a public contract: runbooks match on them).
const (
	CheckCloudServices = "route.cloud-services"
	CheckCGNATOverlap  = "route.cgnat-overlap"
)

const refCGNAT = "Alibaba Cloud ECI hybrid cluster FAQ: route 100.64.0.0/10 (cloud service addresses, VPC DNS 100.100.2.136/138) over the leased line"

// Family is the route.* checks and the `routing` section.
func Family() diag.Family {
	return diag.Family{Name: "route", Checks: Checks, Section: diag.SectionOf("routing", NewProvider).WithExample(Example)}
}

// Checks returns the route.* checks.
func Checks() []diag.Check {
	return []diag.Check{
		{
			ID: CheckCloudServices, Title: "Traffic to 100.64.0.0/10 leaves through the leased line",
			Needs: diag.Needs(Source), Reference: refCGNAT,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result { return evalCloudServices(Source.Get(in)) },
		},
		{
			ID: CheckCGNATOverlap, Title: "Nothing on-prem overlaps 100.64.0.0/10",
			Needs: diag.Needs(kube.Source, Source), Reference: refCGNAT,
			Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
				return evalCGNATOverlap(kube.Source.Get(in), Source.Get(in))
			},
		},
	}
}

// Config is the `routing` section: how traffic to the cloud must leave the
// host vnodediag runs on.
type Config struct {
	// LeasedLineGateway is the next hop toward the leased line (the VBR or
	// the on-prem edge router).
	LeasedLineGateway string `json:"leasedLineGateway,omitempty"`
	// LeasedLineInterface is the interface toward the leased line.
	LeasedLineInterface string `json:"leasedLineInterface,omitempty"`
	// ProbeAddresses are looked up in the host's routing table (default
	// the VPC DNS 100.100.2.136 and 100.100.2.138).
	ProbeAddresses []string `json:"probeAddresses,omitempty"`
	// Netns is the path of a network namespace whose routing table to read
	// (/proc/1/ns/net from a pod sharing the host's PID namespace); empty
	// reads vnodediag's own.
	Netns string `json:"netns,omitempty"`

	norm *settings
}

// settings is a validated Config with its defaults.
type settings struct {
	gateway netip.Addr
	iface   string
	probes  []netip.Addr
	netns   string
}

// Validate checks the section without touching the network and keeps the
// settings the provider uses.
func (c *Config) Validate() error {
	var errs []error
	s := &settings{iface: c.LeasedLineInterface, netns: c.Netns}
	if c.LeasedLineGateway == "" && c.LeasedLineInterface == "" {
		errs = append(errs, errors.New("leasedLineGateway or leasedLineInterface must be set"))
	}
	if c.LeasedLineGateway != "" {
		if a, err := netip.ParseAddr(c.LeasedLineGateway); err == nil && a.Zone() != "" {
			// The kernel reports a link-local gateway without its zone,
			// next to the interface.
			errs = append(errs, fmt.Errorf("leasedLineGateway: %q has a zone: give the address without it (%q) and the interface as leasedLineInterface (%q)",
				c.LeasedLineGateway, a.WithZone("").String(), a.Zone()))
		} else if a, err := cloudnet.ParseAddr(c.LeasedLineGateway); err != nil {
			errs = append(errs, fmt.Errorf("leasedLineGateway: %w", err))
		} else {
			s.gateway = a
		}
	}
	if len(c.LeasedLineInterface) > 15 || strings.ContainsAny(c.LeasedLineInterface, " /") {
		errs = append(errs, fmt.Errorf("leasedLineInterface: %q is not an interface name", c.LeasedLineInterface))
	}
	for i, p := range c.ProbeAddresses {
		a, err := cloudnet.ParseAddr(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("probeAddresses[%d]: %w", i, err))
			continue
		}
		s.probes = append(s.probes, a)
	}
	if len(c.ProbeAddresses) == 0 {
		s.probes = cloudnet.VPCDNS
	}
	if c.Netns != "" && !strings.HasPrefix(c.Netns, "/") {
		errs = append(errs, fmt.Errorf("netns: %q is not an absolute path", c.Netns))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.norm = s
	return nil
}

// HostRoutes is the routes source of one run.
type HostRoutes struct {
	// Namespace is the network namespace read ("" for the host's own).
	Namespace string
	// Gateway and Interface are the configured leased line (either may be empty).
	Gateway   netip.Addr
	Interface string
	// Lookups are the kernel's answers for the probe addresses.
	Lookups []RouteLookup
	// Overlapping are the routes of every table that overlap 100.64.0.0/10
	// (default routes excluded).
	Overlapping []HostRoute
}

// HostRoute is one kernel route.
type HostRoute struct {
	Dst       netip.Prefix
	Gateway   netip.Addr
	Interface string
	Table     int
}

func (r HostRoute) String() string {
	var b strings.Builder
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Interface != "" {
		b.WriteString(" dev " + r.Interface)
	}
	if r.Table != 0 && r.Table != 254 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	return b.String()
}

// RouteLookup is the route the kernel chose for one probe address.
type RouteLookup struct {
	Probe netip.Addr
	// Route is the chosen next hop and interface; Route.Dst is the table
	// entry that matched (longest prefix), the zero prefix for "default".
	Route HostRoute
	// Err is the lookup's error (e.g. network is unreachable).
	Err string
}

// Describe is the source's one-line description in the report.
func (h *HostRoutes) Describe() string {
	ns := "host"
	if h.Namespace != "" {
		ns = "netns " + h.Namespace
	}
	return fmt.Sprintf("%s routing table: %d probe lookups, %d routes overlap %s", ns, len(h.Lookups), len(h.Overlapping), cloudnet.CGNAT)
}

// leased reports whether r leaves through the configured leased line.
func (h *HostRoutes) leased(r HostRoute) bool {
	if h.Gateway.IsValid() && r.Gateway != h.Gateway {
		return false
	}
	if h.Interface != "" && r.Interface != h.Interface {
		return false
	}
	return true
}

func (h *HostRoutes) leasedLine() string {
	var s []string
	if h.Gateway.IsValid() {
		s = append(s, "via "+h.Gateway.String())
	}
	if h.Interface != "" {
		s = append(s, "dev "+h.Interface)
	}
	return strings.Join(s, " ")
}

// evalCloudServices is route.cloud-services: one result per probe.
func evalCloudServices(h *HostRoutes) []*pb.Result {
	var out []*pb.Result
	for _, l := range h.Lookups {
		obj := []*pb.Object{diag.Obj("Route", "", l.Probe.String())}
		var res *pb.Result
		switch {
		case l.Err != "":
			res = diag.Fail("no route to %s: %s", l.Probe, l.Err)
			res.Evidence = []*pb.Evidence{diag.Ev("route to "+l.Probe.String(), h.leasedLine(), "none: "+l.Err)}
		case h.leased(l.Route):
			res = diag.Pass("%s leaves through the leased line: %s", l.Probe, l.Route)
			res.Evidence = []*pb.Evidence{diag.Ev("route to "+l.Probe.String(), h.leasedLine(), l.Route.String())}
		default:
			what := "a route that is not the leased line"
			if l.Route.Dst.Bits() == 0 {
				what = "the default route"
			}
			res = diag.Fail("%s leaves through %s (%s), not the leased line (%s)", l.Probe, what, l.Route, h.leasedLine())
			res.Evidence = []*pb.Evidence{diag.Ev("route to "+l.Probe.String(), h.leasedLine(), l.Route.String())}
			for _, r := range h.Overlapping {
				if h.leased(r) && r.Dst.Contains(l.Probe) {
					res.Evidence = append(res.Evidence, diag.Ev("leased-line route shadowed by "+l.Route.Dst.String(), "used", r.String()))
				}
			}
		}
		if res.Status != pb.Status_PASS {
			res.Remediation = fmt.Sprintf("Route %s over the leased line on this host (or on its gateway): "+
				"ip route replace %s %s; make it persistent in the network configuration, or learn it by BGP "+
				"from the VBR. Remove more specific routes that send part of it elsewhere.", cloudnet.CGNAT, cloudnet.CGNAT, h.leasedLine())
		}
		res.Objects = obj
		out = append(out, res)
	}
	if len(out) == 0 {
		out = append(out, diag.Skip("no routing.probeAddresses configured: add the cloud addresses to look up"))
	}
	return out
}

// evalCGNATOverlap is route.cgnat-overlap: on-prem node podCIDRs and
// InternalIPs, Service CIDRs, and host routes inside 100.64.0.0/10 that do
// not go to the leased line. One result, the overlaps as its objects.
func evalCGNATOverlap(s *kube.Snapshot, h *HostRoutes) []*pb.Result {
	type hit struct {
		obj  *pb.Object
		what string
	}
	var hits []hit
	for _, n := range s.Nodes {
		if kube.ClassOf(n) != kube.ClassOnPrem {
			continue
		}
		for _, p := range kube.PodCIDRs(n) {
			if p.Overlaps(cloudnet.CGNAT) {
				hits = append(hits, hit{diag.Obj("Node", "", n.Name), fmt.Sprintf("node %s podCIDR %s", n.Name, p)})
			}
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == "InternalIP" && cloudnet.CGNAT.Contains(ip) {
				hits = append(hits, hit{diag.Obj("Node", "", n.Name), fmt.Sprintf("node %s InternalIP %s", n.Name, ip)})
			}
		}
	}
	for _, c := range s.ServiceCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Overlaps(cloudnet.CGNAT) {
			hits = append(hits, hit{diag.Obj("Prefix", "", c), "Service CIDR " + c})
		}
	}
	for _, r := range h.Overlapping {
		if r.Dst.Bits() >= cloudnet.CGNAT.Bits() && !h.leased(r) {
			hits = append(hits, hit{diag.Obj("Route", "", r.Dst.String()), "host route " + r.String()})
		}
	}
	if len(hits) == 0 {
		res := diag.Pass("nothing on-prem overlaps %s", cloudnet.CGNAT)
		res.Evidence = []*pb.Evidence{diag.Ev("overlaps", "none", "none")}
		return []*pb.Result{res}
	}
	whats := make([]string, len(hits))
	for i, x := range hits {
		whats[i] = x.what
	}
	res := diag.Fail("%d on-prem address ranges overlap %s: %s", len(hits), cloudnet.CGNAT, diag.JoinFirst(whats, 5))
	for i, x := range hits {
		res.Objects = append(res.Objects, x.obj)
		if i < diag.ListLimit {
			res.Evidence = append(res.Evidence, diag.Ev(x.what, "outside "+cloudnet.CGNAT.String(), "overlaps"))
		}
	}
	res.Remediation = fmt.Sprintf("%s holds the Alibaba Cloud service addresses (VPC DNS, OSS, SLS, RDS); on-prem "+
		"traffic to them must reach the leased line. Renumber pod/Service/node ranges out of it, and delete "+
		"host routes inside it that do not go to the leased line.", cloudnet.CGNAT)
	return []*pb.Result{res}
}

// Example is the `routing` section of `vnodediag config example`: every field,
// commented.
const Example = `routing:                            # host route lookups (netlink), for route.*
  leasedLineGateway: 10.1.0.1       # and/or leasedLineInterface: eth1
  probeAddresses: [100.100.2.136, 100.100.2.138]
`
