package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// RoutingConfig is the `routing` section: how traffic to the cloud must
// leave the host vnodediag runs on.
type RoutingConfig struct {
	// LeasedLineGateway is the next hop toward the leased line (the VBR or
	// the on-prem edge router).
	LeasedLineGateway string `json:"leasedLineGateway,omitempty"`
	// LeasedLineInterface is the interface toward the leased line.
	LeasedLineInterface string `json:"leasedLineInterface,omitempty"`
	// ProbeAddresses are looked up in the host's routing table (default
	// the VPC DNS 100.100.2.136 and 100.100.2.138).
	ProbeAddresses []string `json:"probeAddresses,omitempty"`
}

// Validate checks the section without touching the network.
func (c *RoutingConfig) Validate() error {
	var errs []error
	if c.LeasedLineGateway == "" && c.LeasedLineInterface == "" {
		errs = append(errs, errors.New("leasedLineGateway or leasedLineInterface must be set"))
	}
	if c.LeasedLineGateway != "" {
		if a, err := netip.ParseAddr(c.LeasedLineGateway); err == nil && a.Zone() != "" {
			// The kernel reports a link-local gateway without its zone,
			// next to the interface.
			errs = append(errs, fmt.Errorf("leasedLineGateway: %q has a zone: give the address without it (%q) and the interface as leasedLineInterface (%q)",
				c.LeasedLineGateway, a.WithZone("").String(), a.Zone()))
		} else if _, err := parseAddr(c.LeasedLineGateway); err != nil {
			errs = append(errs, fmt.Errorf("leasedLineGateway: %w", err))
		}
	}
	if len(c.LeasedLineInterface) > 15 || strings.ContainsAny(c.LeasedLineInterface, " /") {
		errs = append(errs, fmt.Errorf("leasedLineInterface: %q is not an interface name", c.LeasedLineInterface))
	}
	for i, s := range c.ProbeAddresses {
		if _, err := parseAddr(s); err != nil {
			errs = append(errs, fmt.Errorf("probeAddresses[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
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
	return fmt.Sprintf("%s routing table: %d probe lookups, %d routes overlap %s", ns, len(h.Lookups), len(h.Overlapping), CGNAT)
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

// RoutesFrom returns the routes source of a run; nil when not gathered.
func RoutesFrom(in *diag.Inputs) *HostRoutes {
	h, _ := in.Value(diag.SourceRoutes).(*HostRoutes)
	return h
}

// EvaluateCloudServices is route.cloud-services: one result per probe.
func EvaluateCloudServices(h *HostRoutes) []*pb.Result {
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
				"from the VBR. Remove more specific routes that send part of it elsewhere.", CGNAT, CGNAT, h.leasedLine())
		}
		res.Objects = obj
		out = append(out, res)
	}
	if len(out) == 0 {
		out = append(out, diag.Skip("no probe address configured"))
	}
	return out
}

// EvaluateCGNATOverlap is route.cgnat-overlap: on-prem node podCIDRs and
// InternalIPs, Service CIDRs, and host routes inside 100.64.0.0/10 that do
// not go to the leased line. One result, the overlaps as its objects.
func EvaluateCGNATOverlap(s *kube.Snapshot, h *HostRoutes) []*pb.Result {
	type hit struct {
		obj  *pb.Object
		what string
	}
	var hits []hit
	for _, n := range s.Nodes {
		if kube.Classify(n).Class != kube.ClassOnPrem {
			continue
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Overlaps(CGNAT) {
				hits = append(hits, hit{diag.Obj("Node", "", n.Name), fmt.Sprintf("node %s podCIDR %s", n.Name, c)})
			}
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == "InternalIP" && CGNAT.Contains(ip) {
				hits = append(hits, hit{diag.Obj("Node", "", n.Name), fmt.Sprintf("node %s InternalIP %s", n.Name, ip)})
			}
		}
	}
	for _, c := range s.ServiceCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Overlaps(CGNAT) {
			hits = append(hits, hit{diag.Obj("Prefix", "", c), "Service CIDR " + c})
		}
	}
	if h != nil {
		for _, r := range h.Overlapping {
			if r.Dst.Bits() >= CGNAT.Bits() && !h.leased(r) {
				hits = append(hits, hit{diag.Obj("Route", "", r.Dst.String()), "host route " + r.String()})
			}
		}
	}
	if len(hits) == 0 {
		res := diag.Pass("nothing on-prem overlaps %s", CGNAT)
		res.Evidence = []*pb.Evidence{diag.Ev("overlaps", "none", "none")}
		return []*pb.Result{res}
	}
	res := diag.Fail("%d on-prem address ranges overlap %s: %s", len(hits), CGNAT, firstNames(hits, func(x hit) string { return x.what }))
	for i, x := range hits {
		res.Objects = append(res.Objects, x.obj)
		if i < listLimit {
			res.Evidence = append(res.Evidence, diag.Ev(x.what, "outside "+CGNAT.String(), "overlaps"))
		}
	}
	res.Remediation = fmt.Sprintf("%s holds the Alibaba Cloud service addresses (VPC DNS, OSS, SLS, RDS); on-prem "+
		"traffic to them must reach the leased line. Renumber pod/Service/node ranges out of it, and delete "+
		"host routes inside it that do not go to the leased line.", CGNAT)
	return []*pb.Result{res}
}
