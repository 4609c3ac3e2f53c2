package cloudlab

import (
	"fmt"
)

// VBR is a virtual border router of the leased line (Express Connect):
// its one route table, its BGP peers (the on-prem routers) and the networks
// it advertises to them.
type VBR struct {
	ID, Region, Name string
	Status           string // active, unconfirmed, terminated
	// PhysicalConnectionID is the leased line the VBR's VLAN interface
	// sits on.
	PhysicalConnectionID string
	VlanID               int
	// LocalGatewayIP is the cloud side of the peering subnet,
	// PeerGatewayIP the on-prem router's side.
	LocalGatewayIP, PeerGatewayIP, PeeringSubnetMask string
	Table                                            *RouteTable
	Peers                                            []*BGPPeer
	Networks                                         []*BGPNetwork
}

// BGPPeer is a BGP peer of a VBR (DescribeBgpPeers). ASNs are strings, as
// the API answers them. AuthKey is the MD5 key, which the API returns and
// a client must never show.
type BGPPeer struct {
	ID, GroupID, Name string
	PeerIP            string
	PeerASN, LocalASN string
	BGPStatus         string // Idle, Connect, Active, Established, Down
	Status            string // Pending, Available, Modifying, Deleting, Deleted
	Advertised        int
	Received          int
	AuthKey           string
}

// BGPNetwork is a network a VBR advertises (DescribeBgpNetworks).
type BGPNetwork struct {
	Dest, VPCID, Status string
}

// AddVBR adds a VBR in region on the physical connection pc, with its
// route table ("vtb-" + the VBR ID's suffix + "vbr"), and returns it.
func (d *DataSet) AddVBR(region, id, pc, localIP, peerIP string) *VBR {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := &VBR{ID: id, Region: region, Name: id, Status: "active", PhysicalConnectionID: pc, VlanID: 100 + len(d.VBRs),
		LocalGatewayIP: localIP, PeerGatewayIP: peerIP, PeeringSubnetMask: "255.255.255.252"}
	v.Table = &RouteTable{ID: "vtb-" + suffix(id) + "vbr", VBRID: id, Name: id + " route table", Type: "System"}
	d.VBRs = append(d.VBRs, v)
	d.RouteTables = append(d.RouteTables, v.Table)
	return v
}

// Peer adds a BGP peer (an on-prem router) to the VBR, Established and
// Available.
func (v *VBR) Peer(id, peerIP, peerASN, localASN string) *BGPPeer {
	p := &BGPPeer{ID: id, GroupID: "bgpg-" + suffix(v.ID), Name: "onprem", PeerIP: peerIP, PeerASN: peerASN, LocalASN: localASN,
		BGPStatus: "Established", Status: "Available", AuthKey: "lab-md5-" + suffix(id)}
	v.Peers = append(v.Peers, p)
	return p
}

// Advertise adds networks the VBR advertises for vpcID.
func (v *VBR) Advertise(vpcID string, cidrs ...string) {
	for _, c := range cidrs {
		v.Networks = append(v.Networks, &BGPNetwork{Dest: c, VPCID: vpcID, Status: "Available"})
	}
}

// ToLeasedLine is a VBR route table's next hop toward the data centre
// over the physical connection. The API reference lists no next-hop type
// for a VBR's own routes; this name is the lab's.
func ToLeasedLine(pc string) NextHop { return NextHop{Type: "PhysicalConnectionInterface", ID: pc} }

// ToVPC is a VBR route table's next hop toward a VPC's vRouter.
func ToVPC(routerInterface, vrouter string) NextHop {
	return NextHop{Type: "RouterInterface", ID: routerInterface, OppositeType: "VRouter", OppositeID: vrouter}
}

func (d *DataSet) vbr(id string) *VBR { return byID(d.VBRs, id) }

// filters reads Filter.N.Key / Filter.N.Value.M (DescribeVirtualBorderRouters):
// at most 5 keys, the values of one key ORed.
func filters(c *Call) (map[string]map[string]bool, *APIError) {
	out := map[string]map[string]bool{}
	for n := 1; ; n++ {
		key, ok := c.Params[fmt.Sprintf("Filter.%d.Key", n)]
		if !ok {
			break
		}
		if n > 5 {
			return nil, invalid("Filter.N.Key", key)
		}
		vals := map[string]bool{}
		for m := 1; ; m++ {
			v, ok := c.Params[fmt.Sprintf("Filter.%d.Value.%d", n, m)]
			if !ok {
				break
			}
			vals[v] = true
		}
		out[key] = vals
	}
	return out, nil
}

func filterMatch(f map[string]map[string]bool, key, have string) bool {
	vals, ok := f[key]
	return !ok || len(vals) == 0 || vals[have]
}

// describeVirtualBorderRouters is DescribeVirtualBorderRouters: RegionId
// required; Filter.N (VbrId, Status, Name, PhysicalConnectionId);
// PageNumber/PageSize (max 50, default 10); VirtualBorderRouterSet.VirtualBorderRouterType[].
func describeVirtualBorderRouters(s *Server, c *Call) (map[string]any, *APIError) {
	f, e := filters(c)
	if e != nil {
		return nil, e
	}
	return s.list(c, true, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.VBRs, func(v *VBR) string { return v.ID }, func(v *VBR) bool {
			return v.Region == region && filterMatch(f, "VbrId", v.ID) && filterMatch(f, "Status", v.Status) &&
				filterMatch(f, "Name", v.Name) && filterMatch(f, "PhysicalConnectionId", v.PhysicalConnectionID)
		})
		return numbered(n, size, match, "VirtualBorderRouterSet", "VirtualBorderRouterType", func(v *VBR) any {
			return map[string]any{
				"VbrId": v.ID, "Name": v.Name, "Description": "", "Status": v.Status, "Type": "pconnVBR",
				"CreationTime": "2024-05-20T08:00:00Z", "ActivationTime": "2024-05-20T08:10:00Z", "RecoveryTime": "", "TerminationTime": "",
				"PhysicalConnectionId": v.PhysicalConnectionID, "PhysicalConnectionStatus": "Enabled", "PhysicalConnectionBusinessStatus": "Normal",
				"PhysicalConnectionOwnerUid": "", "AccessPointId": "ap-" + suffix(v.ID), "CircuitCode": "lab-circuit",
				"VlanId": v.VlanID, "VlanInterfaceId": "ri-vlan" + suffix(v.ID), "RouteTableId": v.Table.ID,
				"LocalGatewayIp": v.LocalGatewayIP, "PeerGatewayIp": v.PeerGatewayIP, "PeeringSubnetMask": v.PeeringSubnetMask,
				"EnableIpv6": false, "LocalIpv6GatewayIp": "", "PeerIpv6GatewayIp": "", "PeeringIpv6SubnetMask": "",
				"MinRxInterval": 300, "MinTxInterval": 300, "DetectMultiplier": 3, "Bandwidth": 1000, "ResourceGroupId": "rg-acfmlab",
				"AssociatedPhysicalConnections": map[string]any{"AssociatedPhysicalConnection": []map[string]any{}},
				"AssociatedCens":                map[string]any{"AssociatedCen": []map[string]any{}},
			}
		})
	})
}

// onVBR is an item of one of the region's VBRs (a BGP peer or network).
type onVBR[T any] struct {
	v    *VBR
	item T
}

// vbrItems lists every item of every VBR of region that RouterId (when
// given) names.
func vbrItems[T any](d *DataSet, c *Call, region string, items func(*VBR) []T) []onVBR[T] {
	var out []onVBR[T]
	for _, v := range d.VBRs {
		if v.Region == region && eqIf(c.Params["RouterId"], v.ID) {
			for _, x := range items(v) {
				out = append(out, onVBR[T]{v, x})
			}
		}
	}
	return out
}

// describeBgpPeers is DescribeBgpPeers: RegionId required; filters
// RouterId, BgpPeerId, BgpGroupId; PageNumber/PageSize (max 50, default
// 10); BgpPeers.BgpPeer[] with ASNs as strings (and the AuthKey).
func describeBgpPeers(s *Server, c *Call) (map[string]any, *APIError) {
	return s.list(c, true, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		all := vbrItems(d, c, region, func(v *VBR) []*BGPPeer { return v.Peers })
		match := visible(c, all, func(r onVBR[*BGPPeer]) string { return r.item.ID }, func(r onVBR[*BGPPeer]) bool {
			return eqIf(c.Params["BgpPeerId"], r.item.ID) && eqIf(c.Params["BgpGroupId"], r.item.GroupID)
		})
		return numbered(n, size, match, "BgpPeers", "BgpPeer", func(r onVBR[*BGPPeer]) any {
			p := r.item
			return map[string]any{
				"BgpPeerId": p.ID, "BgpGroupId": p.GroupID, "Name": p.Name, "Description": "", "RouterId": r.v.ID, "RegionId": r.v.Region,
				"PeerIpAddress": p.PeerIP, "PeerAsn": p.PeerASN, "LocalAsn": p.LocalASN, "BgpStatus": p.BGPStatus, "Status": p.Status,
				"IpVersion": "IPv4", "Hold": "30", "Keepalive": "10", "RouteLimit": "110", "AuthKey": p.AuthKey, "IsFake": false,
				"EnableBfd": false, "BfdMultiHop": 255, "AdvertisedRouteCount": p.Advertised, "ReceivedRouteCount": p.Received,
				"GmtModified": "2024-05-20T08:00:00Z",
			}
		})
	})
}

// describeBgpNetworks is DescribeBgpNetworks: RegionId required; filter
// RouterId; PageNumber/PageSize (max 50, default 10); BgpNetworks.BgpNetwork[].
func describeBgpNetworks(s *Server, c *Call) (map[string]any, *APIError) {
	return s.list(c, true, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		all := vbrItems(d, c, region, func(v *VBR) []*BGPNetwork { return v.Networks })
		match := visible(c, all, func(r onVBR[*BGPNetwork]) string { return r.v.ID }, func(onVBR[*BGPNetwork]) bool { return true })
		return numbered(n, size, match, "BgpNetworks", "BgpNetwork", func(r onVBR[*BGPNetwork]) any {
			return map[string]any{"RouterId": r.v.ID, "VpcId": r.item.VPCID, "DstCidrBlock": r.item.Dest, "Status": r.item.Status, "IpVersion": ipVersionName(r.item.Dest)}
		})
	})
}

// ipVersionName is IPv4 or IPv6, as the BGP APIs spell it.
func ipVersionName(cidr string) string {
	if ipVersion(cidr) == "ipv6" {
		return "IPv6"
	}
	return "IPv4"
}
