package cloudlab

import (
	"net/netip"
	"strings"
)

// VPC actions (2016-04-28).

// describeVpcs is DescribeVpcs: VpcId is a comma-separated list of at most
// 20 IDs; PageNumber/PageSize (max 50, default 10); DryRun.
func describeVpcs(s *Server, c *Call) (map[string]any, *APIError) {
	var want map[string]bool
	if v := c.Params["VpcId"]; v != "" {
		want = map[string]bool{}
		for _, id := range strings.Split(v, ",") {
			want[strings.TrimSpace(id)] = true
		}
		if len(want) > 20 {
			return nil, invalid("VpcId", v)
		}
	}
	if e := dryRun(c); e != nil {
		return nil, e
	}
	return s.list(c, true, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.VPCs, func(v *VPC) string { return v.ID }, func(v *VPC) bool {
			return v.Region == region && (want == nil || want[v.ID]) && eqIf(c.Params["VpcName"], v.Name)
		})
		return numbered(n, size, match, "Vpcs", "Vpc", func(v *VPC) any { return vpcJSON(d, v) })
	})
}

func vpcJSON(d *DataSet, v *VPC) any {
	var vsw, tables []string
	for _, sw := range d.VSwitches {
		if sw.VPCID == v.ID {
			vsw = append(vsw, sw.ID)
		}
	}
	for _, t := range d.RouteTables {
		if t.VPCID == v.ID {
			tables = append(tables, t.ID)
		}
	}
	return map[string]any{
		"VpcId":               v.ID,
		"RegionId":            v.Region,
		"VpcName":             v.Name,
		"Status":              v.Status,
		"CidrBlock":           v.CIDR,
		"SecondaryCidrBlocks": map[string]any{"SecondaryCidrBlock": nonNil(v.SecondaryCIDRs)},
		"UserCidrs":           map[string]any{"UserCidr": []string{}},
		"VRouterId":           v.VRouterID,
		"VSwitchIds":          map[string]any{"VSwitchId": nonNil(vsw)},
		"RouterTableIds":      map[string]any{"RouterTableIds": nonNil(tables)},
		"NatGatewayIds":       map[string]any{"NatGatewayIds": []string{}},
		"IsDefault":           false,
		"CreationTime":        "2024-05-20T08:00:00Z",
		"Description":         "",
		"ResourceGroupId":     "rg-acfmlab",
		"Ipv6CidrBlock":       "",
	}
}

// describeVSwitches is DescribeVSwitches: filters VpcId, VSwitchId,
// ZoneId, RouteTableId; PageNumber/PageSize (max 50, default 10); DryRun.
// Each vSwitch names its route table.
func describeVSwitches(s *Server, c *Call) (map[string]any, *APIError) {
	if c.Params["RegionId"] == "" && c.Params["VpcId"] == "" && c.Params["VSwitchId"] == "" {
		return nil, missing("RegionId")
	}
	if e := dryRun(c); e != nil {
		return nil, e
	}
	return s.list(c, false, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.VSwitches, func(sw *VSwitch) string { return sw.ID }, func(sw *VSwitch) bool {
			t := d.tableOf(sw)
			return eqIf(region, d.vpcRegion(sw.VPCID)) && eqIf(c.Params["VpcId"], sw.VPCID) && eqIf(c.Params["VSwitchId"], sw.ID) &&
				eqIf(c.Params["ZoneId"], sw.Zone) && (c.Params["RouteTableId"] == "" || (t != nil && t.ID == c.Params["RouteTableId"]))
		})
		return numbered(n, size, match, "VSwitches", "VSwitch", func(sw *VSwitch) any { return vswitchJSON(d, sw) })
	})
}

func vswitchJSON(d *DataSet, sw *VSwitch) any {
	rt := map[string]any{}
	if t := d.tableOf(sw); t != nil {
		rt = map[string]any{"RouteTableId": t.ID, "RouteTableType": t.Type}
	}
	return map[string]any{
		"VSwitchId":               sw.ID,
		"VpcId":                   sw.VPCID,
		"VSwitchName":             sw.Name,
		"Status":                  sw.Status,
		"CidrBlock":               sw.CIDR,
		"ZoneId":                  sw.Zone,
		"AvailableIpAddressCount": sw.AvailableIPs,
		"Description":             "",
		"IsDefault":               false,
		"CreationTime":            "2024-05-20T08:00:00Z",
		"ResourceGroupId":         "rg-acfmlab",
		"NetworkAclId":            "",
		"Ipv6CidrBlock":           "",
		"RouteTable":              rt,
	}
}

func (d *DataSet) vpcRegion(vpcID string) string {
	for _, v := range d.VPCs {
		if v.ID == vpcID {
			return v.Region
		}
	}
	return ""
}

// describeRouteTableList is DescribeRouteTableList: filters VpcId (which
// implies RouterType VRouter), RouterType (VRouter, the default, or VBR),
// RouterId, RouteTableId, RouteTableName, RouteTableType;
// PageNumber/PageSize (max 50, default 10). The envelope carries Success,
// Code and Message besides the page fields.
func describeRouteTableList(s *Server, c *Call) (map[string]any, *APIError) {
	rt := c.Params["RouterType"]
	switch {
	case rt != "" && rt != "VRouter" && rt != "VBR":
		return nil, invalid("RouterType", rt)
	case rt == "VBR" && c.Params["VpcId"] != "":
		// A VBR's one route table belongs to no VPC.
		return nil, invalid("VpcId", c.Params["VpcId"])
	}
	return s.list(c, true, 10, 50, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.RouteTables, func(t *RouteTable) string { return t.ID }, func(t *RouteTable) bool {
			return (t.VBRID != "") == (rt == "VBR") && d.tableRegion(t) == region && eqIf(c.Params["VpcId"], t.VPCID) && eqIf(c.Params["RouterId"], d.routerOf(t)) &&
				eqIf(c.Params["RouteTableId"], t.ID) && eqIf(c.Params["RouteTableName"], t.Name) && eqIf(c.Params["RouteTableType"], t.Type)
		})
		out := numbered(n, size, match, "RouterTableList", "RouterTableListType", func(t *RouteTable) any { return tableJSON(d, t) })
		out["Success"], out["Code"], out["Message"] = true, "200", "successful"
		return out
	})
}

func tableJSON(d *DataSet, t *RouteTable) any {
	var vsw []string
	for _, sw := range d.VSwitches {
		if sw.VPCID == t.VPCID && d.tableOf(sw) == t {
			vsw = append(vsw, sw.ID)
		}
	}
	routerType := "VRouter"
	if t.VBRID != "" {
		routerType = "VBR"
	}
	return map[string]any{
		"VpcId":                  t.VPCID,
		"RouterId":               d.routerOf(t),
		"RouterType":             routerType,
		"RouteTableId":           t.ID,
		"RouteTableName":         t.Name,
		"RouteTableType":         t.Type,
		"AssociateType":          t.AssociateType,
		"Description":            "",
		"CreationTime":           "2024-05-20T08:00:00Z",
		"Status":                 "Available",
		"ResourceGroupId":        "rg-acfmlab",
		"RoutePropagationEnable": true,
		"VSwitchIds":             map[string]any{"VSwitchId": nonNil(vsw)},
		"GatewayIds":             map[string]any{"GatewayIds": []string{}},
		"Tags":                   map[string]any{"Tag": []map[string]any{}},
	}
}

func (d *DataSet) vpc(id string) *VPC { return byID(d.VPCs, id) }

// tableRegion is the region of a VPC's or a VBR's route table.
func (d *DataSet) tableRegion(t *RouteTable) string {
	if t.VBRID != "" {
		if v := d.vbr(t.VBRID); v != nil {
			return v.Region
		}
		return ""
	}
	return d.vpcRegion(t.VPCID)
}

// routerOf is the router a table belongs to: the VPC's vRouter or the VBR.
func (d *DataSet) routerOf(t *RouteTable) string {
	if t.VBRID != "" {
		return t.VBRID
	}
	if v := d.vpc(t.VPCID); v != nil {
		return v.VRouterID
	}
	return ""
}

func (d *DataSet) table(id string) *RouteTable { return byID(d.RouteTables, id) }

// describeRouteEntryList is DescribeRouteEntryList: RouteTableId is
// required; filters RouteEntryId, DestinationCidrBlock, RouteEntryName,
// IpVersion, RouteEntryType, NextHopId, NextHopType; paging NextToken with
// MaxResult (1-100, default 10). Entries carry their next hops in
// NextHops.NextHop[].
func describeRouteEntryList(s *Server, c *Call) (map[string]any, *APIError) {
	region := c.Params["RegionId"]
	if region == "" {
		return nil, missing("RegionId")
	}
	id := c.Params["RouteTableId"]
	if id == "" {
		return nil, missing("RouteTableId")
	}
	d := s.Data
	d.mu.RLock()
	t := d.table(id)
	if t == nil || d.tableRegion(t) != region {
		d.mu.RUnlock()
		return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table does not exist.")
	}
	d.mu.RUnlock()
	var match []*RouteEntry
	if !c.deniedEmpty() && !c.hidden(t.ID) {
		for _, e := range d.Entries(t) {
			if !eqIf(c.Params["RouteEntryId"], e.ID) || !eqIf(c.Params["DestinationCidrBlock"], e.Dest) ||
				!eqIf(c.Params["RouteEntryName"], e.Name) || !eqIf(c.Params["RouteEntryType"], e.Type) ||
				!eqFoldIf(c.Params["IpVersion"], ipVersion(e.Dest)) || !hopMatch(c, e) {
				continue
			}
			match = append(match, e)
		}
	}
	items, next, e := tokenPage(c, match, "MaxResult", 10, 100)
	if e != nil {
		return nil, e
	}
	list := make([]wireEntry, 0, len(items))
	for _, en := range items {
		w := wireEntry{
			RouteEntryID: en.ID, RouteTableID: t.ID, DestinationCidrBlock: en.Dest, Type: en.Type, Status: en.Status,
			IPVersion: ipVersion(en.Dest), RouteEntryName: en.Name, Description: en.Description, GmtModified: "2024-05-20T08:00:00Z",
		}
		w.NextHops.NextHop = make([]wireHop, 0, len(en.NextHops))
		for _, h := range en.NextHops {
			w.NextHops.NextHop = append(w.NextHops.NextHop, wireHop{
				NextHopType: h.Type, NextHopID: h.ID, Enabled: h.Enabled, Weight: h.Weight, NextHopRegionID: region,
				NextHopOppsiteType: h.OppositeType, NextHopOppsiteInstanceID: h.OppositeID, NextHopOppsiteRegionID: h.OppositeRegion,
			})
		}
		list = append(list, w)
	}
	return map[string]any{"NextToken": next, "RouteEntrys": map[string]any{"RouteEntry": list}}, nil
}

func hopMatch(c *Call, e *RouteEntry) bool {
	id, typ := c.Params["NextHopId"], c.Params["NextHopType"]
	if id == "" && typ == "" {
		return true
	}
	for _, h := range e.NextHops {
		if eqIf(id, h.ID) && eqIf(typ, h.Type) {
			return true
		}
	}
	return false
}

func eqFoldIf(want, have string) bool { return want == "" || strings.EqualFold(want, have) }

func ipVersion(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil && p.Addr().Is6() {
		return "ipv6"
	}
	return "ipv4"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Wire types of DescribeRouteEntryList: RouteEntrys.RouteEntry[] with
// NextHops.NextHop[] (the API's own spelling, "Oppsite" included).
type (
	wireEntry struct {
		RouteEntryID         string `json:"RouteEntryId"`
		RouteTableID         string `json:"RouteTableId"`
		DestinationCidrBlock string
		Type                 string
		Status               string
		IPVersion            string `json:"IpVersion"`
		RouteEntryName       string
		Description          string
		GmtModified          string
		NextHops             struct {
			NextHop []wireHop
		}
	}
	wireHop struct {
		NextHopType              string
		NextHopID                string `json:"NextHopId"`
		Enabled                  int
		Weight                   int
		NextHopRegionID          string `json:"NextHopRegionId"`
		NextHopOppsiteType       string
		NextHopOppsiteInstanceID string `json:"NextHopOppsiteInstanceId"`
		NextHopOppsiteRegionID   string `json:"NextHopOppsiteRegionId"`
		NextHopRelatedInfo       struct {
			InstanceID   string `json:"InstanceId"`
			InstanceType string
			RegionID     string `json:"RegionId"`
		}
	}
)
