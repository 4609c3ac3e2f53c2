package cloudlab

import (
	"strings"
)

// PrivateZone actions (pvtz 2018-01-01). The service is global: RegionId
// is not a parameter; zones are bound to VPCs of any region.

// Zone is a PrivateZone zone and the VPCs it is bound to.
type Zone struct {
	ID, Name    string
	RecordCount int
	VPCs        []ZoneVPC
}

// ZoneVPC is a VPC a zone or a forwarding rule is bound to.
type ZoneVPC struct {
	RegionID, VPCID string
}

// ResolverEndpoint is a PrivateZone resolver endpoint in a VPC, with its
// IP addresses (one per vSwitch/zone). The API answers no direction: the
// endpoints a forwarding rule names are outbound.
type ResolverEndpoint struct {
	ID, Name, VPCID, Region, SecurityGroupID string
	Status                                   string // SUCCESS, INIT, FAILED, CHANGE_INIT, CHANGE_FAILED, EXCEPTION
	IPs                                      []EndpointIP
}

// EndpointIP is one address of an endpoint.
type EndpointIP struct {
	VSwitchID, IP, CIDR, Zone string
}

// ResolverRule is an outbound forwarding rule: queries for ZoneName from
// the bound VPCs go out through EndpointID to ForwardIPs.
type ResolverRule struct {
	ID, Name, ZoneName, EndpointID string
	ForwardIPs                     []ForwardIP
	VPCs                           []ZoneVPC
}

// ForwardIP is a forward target of a rule.
type ForwardIP struct {
	IP   string
	Port int
}

// AddZone adds a zone bound to vpcs and returns it.
func (d *DataSet) AddZone(id, name string, vpcs ...ZoneVPC) *Zone {
	d.mu.Lock()
	defer d.mu.Unlock()
	z := &Zone{ID: id, Name: name, RecordCount: 3, VPCs: vpcs}
	d.Zones = append(d.Zones, z)
	return z
}

// AddEndpoint adds a resolver endpoint in vpc (region, security group)
// with one address per vSwitch given as vSwitch=IP.
func (d *DataSet) AddEndpoint(id string, vpc *VPC, securityGroup string, ips ...EndpointIP) *ResolverEndpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := &ResolverEndpoint{ID: id, Name: id, VPCID: vpc.ID, Region: vpc.Region, SecurityGroupID: securityGroup, Status: "SUCCESS", IPs: ips}
	d.Endpoints = append(d.Endpoints, e)
	return e
}

// AddRule adds an outbound forwarding rule for zone through endpoint,
// forwarding to targets, bound to vpcs.
func (d *DataSet) AddRule(id, zone string, endpoint *ResolverEndpoint, targets []ForwardIP, vpcs ...ZoneVPC) *ResolverRule {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &ResolverRule{ID: id, Name: id, ZoneName: zone, EndpointID: endpoint.ID, ForwardIPs: targets, VPCs: vpcs}
	d.Rules = append(d.Rules, r)
	return r
}

func (d *DataSet) endpoint(id string) *ResolverEndpoint { return byID(d.Endpoints, id) }

// pvtzPage is the answer of a PrivateZone list: PageNumber, PageSize,
// TotalItems and TotalPages (not TotalCount), and the page's rows under
// key, as they come from wrap (Zones nests them: Zones.Zone[]).
func pvtzPage[T any](number, size int, items []T, key string, wrap func([]any) any, row func(T) any) map[string]any {
	return map[string]any{"PageNumber": number, "PageSize": size, "TotalItems": len(items), "TotalPages": (len(items) + size - 1) / size,
		key: wrap(rows(page(items, number, size), row))}
}

func plain(list []any) any { return list }

// keyword reports whether name holds the Keyword parameter (%keyword%).
func keyword(c *Call, name string) bool {
	return c.Params["Keyword"] == "" || strings.Contains(name, c.Params["Keyword"])
}

func zoneVPCs(vs []ZoneVPC) []map[string]any {
	out := []map[string]any{}
	for _, v := range vs {
		out = append(out, map[string]any{"VpcId": v.VPCID, "VpcName": v.VPCID, "RegionId": v.RegionID, "RegionName": v.RegionID, "VpcType": "STANDARD"})
	}
	return out
}

// describeZones is DescribeZones: filters QueryVpcId (zones bound to that
// VPC), QueryRegionId, Keyword with SearchMode (EXACT, the default, or
// LIKE, case-insensitive); PageNumber/PageSize (max 100, default 20);
// Zones.Zone[].
func describeZones(s *Server, c *Call) (map[string]any, *APIError) {
	mode := strings.ToUpper(c.Params["SearchMode"])
	if mode != "" && mode != "EXACT" && mode != "LIKE" {
		return nil, invalid("SearchMode", c.Params["SearchMode"])
	}
	kw := c.Params["Keyword"]
	return s.list(c, false, 20, 100, func(d *DataSet, _ string, n, size int) map[string]any {
		return zonesJSON(c, d, kw, mode, n, size)
	})
}

func zonesJSON(c *Call, d *DataSet, kw, mode string, n, size int) map[string]any {
	match := visible(c, d.Zones, func(z *Zone) string { return z.ID }, func(z *Zone) bool {
		switch {
		case kw != "" && mode == "LIKE" && !strings.Contains(strings.ToLower(z.Name), strings.ToLower(kw)),
			kw != "" && mode != "LIKE" && z.Name != kw:
			return false
		}
		return boundTo(z.VPCs, c.Params["QueryVpcId"], c.Params["QueryRegionId"])
	})
	return pvtzPage(n, size, match, "Zones", func(l []any) any { return map[string]any{"Zone": l} }, func(z *Zone) any {
		return map[string]any{
			"ZoneId": z.ID, "ZoneName": z.Name, "RecordCount": z.RecordCount, "IsPtr": false, "ProxyPattern": "ZONE",
			"ZoneType": "AUTH_ZONE", "ZoneTag": "", "Remark": "", "ResourceGroupId": "rg-acfmlab", "DnsGroup": "NORMAL_ZONE", "DnsGroupChanging": false,
			"Creator": "lab", "CreatorType": "USER", "CreatorSubType": "",
			"CreateTime": "2024-05-20T08:00Z", "CreateTimestamp": 1716192000000, "UpdateTime": "2024-05-20T08:00Z", "UpdateTimestamp": 1716192000000,
			"ResourceTags": map[string]any{"ResourceTag": []map[string]any{}},
		}
	})
}

// boundTo reports whether vs holds the VPC vpcID (and region, when given);
// an empty vpcID and region filter nothing.
func boundTo(vs []ZoneVPC, vpcID, region string) bool {
	if vpcID == "" && region == "" {
		return true
	}
	for _, v := range vs {
		if eqIf(vpcID, v.VPCID) && eqIf(region, v.RegionID) {
			return true
		}
	}
	return false
}

// describeZoneInfo is DescribeZoneInfo: ZoneId required; the zone with
// its bindings in BindVpcs.Vpc[].
func describeZoneInfo(s *Server, c *Call) (map[string]any, *APIError) {
	id := c.Params["ZoneId"]
	if id == "" {
		return nil, missing("ZoneId")
	}
	d := s.Data
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, z := range d.Zones {
		if z.ID != id || c.hidden(z.ID) {
			continue
		}
		return map[string]any{
			"ZoneId": z.ID, "ZoneName": z.Name, "RecordCount": z.RecordCount, "IsPtr": false, "ProxyPattern": "ZONE", "SlaveDns": false,
			"ZoneType": "AUTH_ZONE", "ZoneTag": "", "Remark": "", "ResourceGroupId": "rg-acfmlab", "DnsGroup": "NORMAL_ZONE", "DnsGroupChanging": false,
			"Creator": "lab", "CreatorType": "USER",
			"CreateTime": "2024-05-20T08:00Z", "CreateTimestamp": 1716192000000, "UpdateTime": "2024-05-20T08:00Z", "UpdateTimestamp": 1716192000000,
			"BindVpcs": map[string]any{"Vpc": zoneVPCs(z.VPCs)},
		}, nil
	}
	// The code of an unknown zone ID is the lab's choice: the reference
	// lists no error code for this operation.
	return nil, apiErr(400, "Zone.Invalid.Id", "The specified zone ID %q does not exist.", id)
}

// describeResolverEndpoints is DescribeResolverEndpoints: filters
// VpcRegionId, Status, Keyword (name, %keyword%); PageNumber/PageSize (max
// 100, default 20); Endpoints[] with IpConfigs[] (plain arrays).
func describeResolverEndpoints(s *Server, c *Call) (map[string]any, *APIError) {
	return s.list(c, false, 20, 100, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.Endpoints, func(ep *ResolverEndpoint) string { return ep.ID }, func(ep *ResolverEndpoint) bool {
			return eqIf(c.Params["VpcRegionId"], ep.Region) && eqIf(c.Params["Status"], ep.Status) && keyword(c, ep.Name)
		})
		return pvtzPage(n, size, match, "Endpoints", plain, func(ep *ResolverEndpoint) any {
			return map[string]any{
				"Id": ep.ID, "Name": ep.Name, "Status": ep.Status, "VpcId": ep.VPCID, "VpcName": ep.VPCID, "VpcRegionId": ep.Region,
				"VpcRegionName": ep.Region, "SecurityGroupId": ep.SecurityGroupID,
				"CreateTime": "2024-05-20 08:00:00", "CreateTimestamp": 1716192000000, "UpdateTime": "2024-05-20 08:00:00", "UpdateTimestamp": 1716192000000,
				"IpConfigs": rows(ep.IPs, func(ip EndpointIP) any {
					return map[string]any{"VSwitchId": ip.VSwitchID, "Ip": ip.IP, "CidrBlock": ip.CIDR, "AzId": ip.Zone}
				}),
			}
		})
	})
}

// describeResolverRules is DescribeResolverRules: filters EndpointId,
// Keyword; NeedDetailAttributes (default false) adds BindVpcs[];
// PageNumber/PageSize (max 100, default 20); Rules[] with ForwardIps[].
func describeResolverRules(s *Server, c *Call) (map[string]any, *APIError) {
	detail := c.Params["NeedDetailAttributes"] == "true"
	if v := c.Params["NeedDetailAttributes"]; v != "" && v != "true" && v != "false" {
		return nil, invalid("NeedDetailAttributes", v)
	}
	return s.list(c, false, 20, 100, func(d *DataSet, region string, n, size int) map[string]any {
		match := visible(c, d.Rules, func(r *ResolverRule) string { return r.ID }, func(r *ResolverRule) bool {
			return eqIf(c.Params["EndpointId"], r.EndpointID) && keyword(c, r.Name)
		})
		return pvtzPage(n, size, match, "Rules", plain, func(r *ResolverRule) any {
			name := ""
			if ep := d.endpoint(r.EndpointID); ep != nil {
				name = ep.Name
			}
			row := map[string]any{
				"Id": r.ID, "Name": r.Name, "Type": "OUTBOUND", "ZoneName": r.ZoneName, "EndpointId": r.EndpointID, "EndpointName": name,
				"CreateTime": "2024-05-20 08:00:00", "CreateTimestamp": 1716192000000, "UpdateTime": "2024-05-20 08:00:00", "UpdateTimestamp": 1716192000000,
				"ForwardIps": rows(r.ForwardIPs, func(f ForwardIP) any { return map[string]any{"Ip": f.IP, "Port": f.Port} }),
			}
			if detail {
				row["BindVpcs"] = zoneVPCs(r.VPCs)
			}
			return row
		})
	})
}
