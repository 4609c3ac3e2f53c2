package probe

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// readRoutes lists the main table's unicast routes (a netlink dump request,
// which needs no capability).
func readRoutes() ([]*pb.NetRoute, error) {
	var out []*pb.NetRoute
	names := map[int]string{}
	linkName := func(idx int) string {
		if idx == 0 {
			return ""
		}
		if n, ok := names[idx]; ok {
			return n
		}
		if ifc, err := net.InterfaceByIndex(idx); err == nil {
			names[idx] = ifc.Name
		} else {
			names[idx] = fmt.Sprintf("if%d", idx)
		}
		return names[idx]
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return out, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			nr := &pb.NetRoute{Interface: linkName(r.LinkIndex), Mtu: int32(r.MTU)}
			switch {
			case r.Dst == nil || r.Dst.IP.IsUnspecified() && ones(r.Dst) == 0:
				nr.Destination = "default"
			default:
				nr.Destination = r.Dst.String()
			}
			if r.Gw != nil {
				nr.Gateway = r.Gw.String()
			}
			if r.Src != nil {
				nr.Source = r.Src.String()
			}
			switch r.Type {
			case unix.RTN_BLACKHOLE:
				nr.Gateway = "blackhole"
			case unix.RTN_UNREACHABLE:
				nr.Gateway = "unreachable"
			case unix.RTN_PROHIBIT:
				nr.Gateway = "prohibit"
			}
			out = append(out, nr)
		}
	}
	return out, nil
}

func ones(n *net.IPNet) int {
	o, _ := n.Mask.Size()
	return o
}
