package cloudlab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SecurityGroup is an ECS security group with its rules. Type is normal
// (basic) or enterprise (advanced); InnerAccessPolicy is Accept or Drop.
type SecurityGroup struct {
	ID, Name, VPCID, Region string
	Type                    string
	InnerAccessPolicy       string
	Rules                   []*SGRule
}

// SGRule is one security group rule, as DescribeSecurityGroupAttribute
// answers it (Permissions.Permission[]). Priority is 1 (highest) to 100;
// Policy Accept or Drop; IPProtocol TCP, UDP, ICMP, GRE or ALL; PortRange
// "lo/hi", -1/-1 for all.
type SGRule struct {
	ID, Direction, Policy, IPProtocol, PortRange string
	Priority                                     int
	SourceCIDR, SourceGroupID                    string
	Description                                  string
}

// AddSecurityGroup adds a group in vpc and returns it.
func (d *DataSet) AddSecurityGroup(vpc *VPC, id, typ, inner string) *SecurityGroup {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := &SecurityGroup{ID: id, Name: id, VPCID: vpc.ID, Region: vpc.Region, Type: typ, InnerAccessPolicy: inner}
	d.SecurityGroups = append(d.SecurityGroups, g)
	return g
}

// Ingress adds an inbound rule from a CIDR (or, when src starts with
// "sg-", from the instances of that group) and returns it.
func (g *SecurityGroup) Ingress(priority int, policy, proto, ports, src, desc string) *SGRule {
	r := &SGRule{ID: fmt.Sprintf("sgr-%s%03d", suffix(g.ID), len(g.Rules)+1), Direction: "ingress", Priority: priority, Policy: policy,
		IPProtocol: proto, PortRange: ports, Description: desc}
	if strings.HasPrefix(src, "sg-") {
		r.SourceGroupID = src
	} else {
		r.SourceCIDR = src
	}
	g.Rules = append(g.Rules, r)
	return r
}

func (d *DataSet) securityGroup(id string) *SecurityGroup { return byID(d.SecurityGroups, id) }

// describeSecurityGroups is ECS DescribeSecurityGroups: RegionId required;
// filters VpcId, SecurityGroupId, SecurityGroupIds (a JSON array of at
// most 100), SecurityGroupType; NextToken/MaxResults (max 100, default 10)
// or PageNumber/PageSize (max 50, default 10); DryRun;
// SecurityGroups.SecurityGroup[].
func describeSecurityGroups(s *Server, c *Call) (map[string]any, *APIError) {
	region := c.Params["RegionId"]
	if region == "" {
		return nil, missing("RegionId")
	}
	ids, e := idList(c, "SecurityGroupIds", invalid("SecurityGroupIds", c.Params["SecurityGroupIds"]), invalid("SecurityGroupIds", c.Params["SecurityGroupIds"]))
	if e != nil {
		return nil, e
	}
	if e := dryRun(c); e != nil {
		return nil, e
	}
	d := s.Data
	d.mu.RLock()
	match := visible(c, d.SecurityGroups, func(g *SecurityGroup) string { return g.ID }, func(g *SecurityGroup) bool {
		return g.Region == region && (ids == nil || ids[g.ID]) && eqIf(c.Params["VpcId"], g.VPCID) &&
			eqIf(c.Params["SecurityGroupId"], g.ID) && eqIf(c.Params["SecurityGroupType"], g.Type)
	})
	d.mu.RUnlock()
	// The documented order: security group IDs descending.
	sort.Slice(match, func(i, j int) bool { return match[i].ID > match[j].ID })
	out := map[string]any{"RegionId": region}
	items, e := eitherPage(c, out, match, 10, 100, 10, 50)
	if e != nil {
		return nil, e
	}
	out["SecurityGroups"] = map[string]any{"SecurityGroup": rows(items, func(g *SecurityGroup) any {
		g2g := 0
		for _, r := range g.Rules {
			if r.SourceGroupID != "" {
				g2g++
			}
		}
		return map[string]any{
			"SecurityGroupId": g.ID, "SecurityGroupName": g.Name, "Description": "", "SecurityGroupType": g.Type, "VpcId": g.VPCID,
			"CreationTime": "2024-05-20T08:00:00Z", "EcsCount": 0, "AvailableInstanceAmount": 2000, "ResourceGroupId": "rg-acfmlab",
			"ServiceManaged": false, "RuleCount": len(g.Rules), "GroupToGroupRuleCount": g2g, "Tags": map[string]any{"Tag": []map[string]any{}},
		}
	})}
	return out, nil
}

// describeSecurityGroupAttribute is ECS DescribeSecurityGroupAttribute:
// RegionId and SecurityGroupId required; Direction ingress, egress or all
// (default); NextToken/MaxResults (10-1000, default 500); the group's
// InnerAccessPolicy and its rules in Permissions.Permission[] (Priority as
// a string, as the API answers it). An unknown group is
// InvalidSecurityGroupId.NotFound.
func describeSecurityGroupAttribute(s *Server, c *Call) (map[string]any, *APIError) {
	region := c.Params["RegionId"]
	if region == "" {
		return nil, missing("RegionId")
	}
	id := c.Params["SecurityGroupId"]
	if id == "" {
		return nil, missing("SecurityGroupId")
	}
	dir := strings.ToLower(c.Params["Direction"])
	if dir != "" && dir != "ingress" && dir != "egress" && dir != "all" {
		return nil, invalid("Direction", c.Params["Direction"])
	}
	d := s.Data
	d.mu.RLock()
	g := d.securityGroup(id)
	d.mu.RUnlock()
	if g == nil || g.Region != region || c.hidden(id) {
		return nil, apiErr(404, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist.")
	}
	var rules []*SGRule
	if !c.deniedEmpty() {
		for _, r := range g.Rules {
			if dir == "" || dir == "all" || r.Direction == dir {
				rules = append(rules, r)
			}
		}
	}
	if v := c.Params["MaxResults"]; v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 10 {
			return nil, invalid("MaxResults", v) // documented range 10-1000
		}
	}
	items, next, e := tokenPage(c, rules, "MaxResults", 500, 1000)
	if e != nil {
		return nil, e
	}
	list := []map[string]any{}
	for _, r := range items {
		list = append(list, map[string]any{
			"SecurityGroupRuleId": r.ID, "Direction": r.Direction, "Policy": r.Policy, "Priority": fmt.Sprint(r.Priority),
			"IpProtocol": r.IPProtocol, "PortRange": r.PortRange, "SourcePortRange": "", "NicType": "intranet",
			"SourceCidrIp": r.SourceCIDR, "Ipv6SourceCidrIp": "", "SourceGroupId": r.SourceGroupID, "SourceGroupName": "", "SourceGroupOwnerAccount": "",
			"SourcePrefixListId": "", "SourcePrefixListName": "", "DestCidrIp": "", "Ipv6DestCidrIp": "", "DestGroupId": "", "DestGroupName": "",
			"DestGroupOwnerAccount": "", "DestPrefixListId": "", "DestPrefixListName": "",
			"Description": r.Description, "CreateTime": "2024-05-20T08:00:00Z",
		})
	}
	return map[string]any{
		"RegionId": g.Region, "SecurityGroupId": g.ID, "SecurityGroupName": g.Name, "Description": "", "VpcId": g.VPCID,
		"InnerAccessPolicy": g.InnerAccessPolicy, "NextToken": next,
		"Permissions": map[string]any{"Permission": list},
	}, nil
}
