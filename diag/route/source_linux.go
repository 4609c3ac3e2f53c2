package route

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"golang.org/x/sys/unix"
)

// Gather asks the kernel for the route of each probe and lists the routes
// of every table that overlap 100.64.0.0/10. Read-only netlink requests.
func (r *routeSource) Gather(ctx context.Context) (any, error) {
	h, err := r.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	out := &HostRoutes{Namespace: r.netns, Gateway: r.gateway, Interface: r.iface}
	names := map[int]string{}
	linkName := func(idx int) string {
		if idx == 0 {
			return ""
		}
		if n, ok := names[idx]; ok {
			return n
		}
		l, err := h.LinkByIndex(idx)
		if err != nil {
			names[idx] = fmt.Sprintf("if%d", idx)
		} else {
			names[idx] = l.Attrs().Name
		}
		return names[idx]
	}
	all := map[int][]netlink.Route{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("routes: list routes: %w", err)
		}
		all[fam] = rs
	}
	set := cloudnet.NewPrefixSet()
	var mainRoutes []HostRoute
	for _, rs := range all {
		for _, nr := range rs {
			if nr.Type != unix.RTN_UNICAST && nr.Type != unix.RTN_BLACKHOLE && nr.Type != unix.RTN_UNREACHABLE && nr.Type != unix.RTN_PROHIBIT {
				continue // local, broadcast, multicast entries
			}
			hr := toHostRoute(nr, linkName)
			if hr.Dst.Bits() > 0 && hr.Dst.Overlaps(cloudnet.CGNAT) {
				out.Overlapping = append(out.Overlapping, hr)
			}
			if nr.Table == unix.RT_TABLE_MAIN {
				set.Insert(hr.Dst, int32(len(mainRoutes)))
				mainRoutes = append(mainRoutes, hr)
			}
		}
	}
	for _, p := range r.probes {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("routes: %w", err)
		}
		l := RouteLookup{Probe: p}
		got, err := h.RouteGet(net.IP(p.AsSlice()))
		switch {
		case err != nil:
			l.Err = err.Error()
		case len(got) == 0:
			l.Err = "no route"
		default:
			l.Route = toHostRoute(got[0], linkName)
			l.Route.Dst = netip.Prefix{}
			// RouteGet names the next hop, not the table entry; the
			// longest match in the main table is the entry shown.
			if v, _, ok := set.Longest(netip.PrefixFrom(p, p.BitLen())); ok {
				l.Route.Dst = mainRoutes[v].Dst
				l.Route.Table = mainRoutes[v].Table
			} else {
				l.Route.Dst = netip.PrefixFrom(p, p.BitLen())
			}
		}
		out.Lookups = append(out.Lookups, l)
	}
	return out, nil
}

func (r *routeSource) handle() (*netlink.Handle, error) {
	if r.netns == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("routes: netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(r.netns)
	if err != nil {
		return nil, fmt.Errorf("routes: netns %s: %w", r.netns, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("routes: netlink in netns %s: %w", r.netns, err)
	}
	return h, nil
}

func toHostRoute(nr netlink.Route, linkName func(int) string) HostRoute {
	hr := HostRoute{Table: nr.Table, Interface: linkName(nr.LinkIndex)}
	if nr.Dst != nil {
		if a, ok := netip.AddrFromSlice(nr.Dst.IP); ok {
			ones, _ := nr.Dst.Mask.Size()
			hr.Dst = netip.PrefixFrom(a.Unmap(), ones)
		}
	} else if nr.Family == netlink.FAMILY_V6 {
		hr.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	} else {
		hr.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if a, ok := netip.AddrFromSlice(nr.Gw); ok {
		hr.Gateway = a.Unmap()
	}
	if !hr.Gateway.IsValid() && len(nr.MultiPath) > 0 {
		if a, ok := netip.AddrFromSlice(nr.MultiPath[0].Gw); ok {
			hr.Gateway = a.Unmap()
		}
		if hr.Interface == "" {
			hr.Interface = linkName(nr.MultiPath[0].LinkIndex)
		}
	}
	return hr
}
