package cloudlab

import (
	"sort"
)

// describeInstances is ECS DescribeInstances (2014-05-26). Filters are
// ANDed; InstanceIds is a JSON array of at most 100 IDs (an empty array is
// a filter that matches nothing). Paging is either NextToken/MaxResults
// (then PageNumber/PageSize are ignored and TotalCount is not meaningful,
// so the lab leaves it out) or PageNumber/PageSize (max 100, default 10).
// A caller without the permission gets an empty list (DenyAsEmpty), which
// DryRun tells apart.
func describeInstances(s *Server, c *Call) (map[string]any, *APIError) {
	region := c.Params["RegionId"]
	if region == "" {
		return nil, missing("RegionId")
	}
	ids, e := idList(c, "InstanceIds", apiErr(400, "InvalidInstanceIds.Malformed", "The specified parameter InstanceIds is not valid."),
		apiErr(400, "InvalidInstanceIds.ValueExcessiveAmount", "The specified parameter InstanceIds contains more than 100 instance IDs."))
	if e != nil {
		return nil, e
	}
	if e := dryRun(c); e != nil {
		return nil, e
	}
	s.Data.mu.RLock()
	match := visible(c, s.Data.Instances, func(in *Instance) string { return in.ID }, func(in *Instance) bool {
		return in.Region == region && (ids == nil || ids[in.ID]) && eqIf(c.Params["VpcId"], in.VPCID) && eqIf(c.Params["VSwitchId"], in.VSwitchID) &&
			eqIf(c.Params["ZoneId"], in.Zone) && eqIf(c.Params["Status"], in.Status) && eqIf(c.Params["InstanceName"], in.Name)
	})
	s.Data.mu.RUnlock()
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	out := map[string]any{}
	items, e := eitherPage(c, out, match, 10, 100, 10, 100)
	if e != nil {
		return nil, e
	}
	list := make([]wireInstance, 0, len(items))
	for _, in := range items {
		list = append(list, instanceJSON(in))
	}
	out["Instances"] = map[string]any{"Instance": list}
	return out, nil
}

func eqIf(want, have string) bool { return want == "" || want == have }

// Wire types of DescribeInstances, with the documented names and nesting
// (VpcAttributes.PrivateIpAddress.IpAddress[],
// NetworkInterfaces.NetworkInterface[].PrivateIpSets.PrivateIpSet[], ...).
type (
	ipList struct {
		IPAddress []string `json:"IpAddress"`
	}
	wireInstance struct {
		InstanceID          string `json:"InstanceId"`
		InstanceName        string
		HostName            string
		RegionID            string `json:"RegionId"`
		ZoneID              string `json:"ZoneId"`
		InstanceType        string
		Status              string
		InstanceNetworkType string
		CreationTime        string
		OSType              string
		VpcAttributes       struct {
			VpcID            string `json:"VpcId"`
			VSwitchID        string `json:"VSwitchId"`
			NatIPAddress     string `json:"NatIpAddress"`
			PrivateIPAddress ipList `json:"PrivateIpAddress"`
		}
		InnerIPAddress  ipList `json:"InnerIpAddress"`
		PublicIPAddress ipList `json:"PublicIpAddress"`
		EipAddress      struct {
			IPAddress          string `json:"IpAddress"`
			AllocationID       string `json:"AllocationId"`
			Bandwidth          int
			InternetChargeType string
		}
		SecurityGroupIds struct {
			SecurityGroupID []string `json:"SecurityGroupId"`
		}
		NetworkInterfaces struct {
			NetworkInterface []wireENI
		}
	}
	wireENI struct {
		NetworkInterfaceID string `json:"NetworkInterfaceId"`
		Type               string
		MacAddress         string
		PrimaryIPAddress   string `json:"PrimaryIpAddress"`
		PrivateIPSets      struct {
			PrivateIPSet []wirePrivateIP `json:"PrivateIpSet"`
		} `json:"PrivateIpSets"`
	}
	wirePrivateIP struct {
		PrivateIPAddress string `json:"PrivateIpAddress"`
		Primary          bool
	}
)

func instanceJSON(in *Instance) wireInstance {
	w := wireInstance{
		InstanceID: in.ID, InstanceName: in.Name, HostName: in.Hostname, RegionID: in.Region, ZoneID: in.Zone,
		InstanceType: in.Type, Status: in.Status, InstanceNetworkType: "vpc", CreationTime: in.CreationTime, OSType: "linux",
	}
	ips := append([]string{in.PrivateIP}, in.SecondaryIPs...)
	w.VpcAttributes.VpcID, w.VpcAttributes.VSwitchID, w.VpcAttributes.PrivateIPAddress.IPAddress = in.VPCID, in.VSwitchID, ips
	w.InnerIPAddress.IPAddress, w.PublicIPAddress.IPAddress = []string{}, []string{}
	w.SecurityGroupIds.SecurityGroupID = append([]string{}, in.SecurityGroupIDs...)
	eni := wireENI{NetworkInterfaceID: in.ENIID, Type: "Primary", MacAddress: in.MAC, PrimaryIPAddress: in.PrivateIP}
	for i, ip := range ips {
		eni.PrivateIPSets.PrivateIPSet = append(eni.PrivateIPSets.PrivateIPSet, wirePrivateIP{PrivateIPAddress: ip, Primary: i == 0})
	}
	w.NetworkInterfaces.NetworkInterface = []wireENI{eni}
	return w
}
