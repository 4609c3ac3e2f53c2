package cloudlab

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
)

// DataSet is the cloud account the lab serves: VPCs, vSwitches, route
// tables with their entries, and ECS instances. The demo, the tests and the
// benchmarks fill it with the builders below, so they share one shape.
//
// The lab answers from it exactly as the documented APIs would: a vSwitch's
// route table is the custom table that lists it, else its VPC's system
// table; system route entries for every vSwitch CIDR and for 100.64.0.0/10
// are added when the table is described (see Entries).
type DataSet struct {
	mu          sync.RWMutex
	VPCs        []*VPC
	VSwitches   []*VSwitch
	RouteTables []*RouteTable
	Instances   []*Instance
	// The leased line: VBRs with their route tables, BGP peers and networks.
	VBRs []*VBR
	// PrivateZone: zones, resolver endpoints and forwarding rules.
	Zones     []*Zone
	Endpoints []*ResolverEndpoint
	Rules     []*ResolverRule
	// Security groups with their rules.
	SecurityGroups []*SecurityGroup
}

// VPC is a virtual private cloud.
type VPC struct {
	ID, Region, Name string
	CIDR             string
	SecondaryCIDRs   []string
	VRouterID        string
	Status           string // Available
}

// VSwitch is a vSwitch of a VPC.
type VSwitch struct {
	ID, VPCID, Zone, Name string
	CIDR                  string
	AvailableIPs          int64
	Status                string // Available
}

// RouteTable is a route table of a VPC's vRouter. Type is System (one per
// VPC, the default for every vSwitch) or Custom; AssociateType is VSwitch
// or Gateway.
type RouteTable struct {
	ID, VPCID, Name string
	// VBRID is set for a VBR's route table (RouterType VBR; VPCID is empty).
	VBRID         string
	Type          string
	AssociateType string
	VSwitchIDs    []string
	// Entries are the custom, BGP, CEN and ECR entries; system entries are
	// derived from the VPC's vSwitches.
	Entries []*RouteEntry
}

// RouteEntry is one route. Type is Custom, System, BGP, CEN or ECR.
type RouteEntry struct {
	ID, Name, Description string
	Dest                  string
	Type                  string
	Status                string // Available, Pending, Modifying
	NextHops              []NextHop
}

// NextHop is one next hop of a route entry. Type is Instance, HaVip,
// VpnGateway, NatGateway, NetworkInterface, RouterInterface, IPv6Gateway,
// Attachment, Ecr, VpcPeer, ... ; OppositeType/ID name what a router
// interface leads to (VirtualBorderRouter, VRouter).
type NextHop struct {
	Type, ID                 string
	OppositeType, OppositeID string
	OppositeRegion           string
	Weight                   int
	Enabled                  int
}

// Instance is an ECS instance.
type Instance struct {
	ID, Region, Zone, Name, Hostname string
	Type                             string // e.g. ecs.g7.xlarge
	Status                           string // Running, Stopped, Starting, Stopping, Pending
	VPCID, VSwitchID                 string
	PrivateIP                        string
	SecondaryIPs                     []string
	SecurityGroupIDs                 []string
	ENIID, MAC                       string
	CreationTime                     string
}

// NewDataSet returns an empty account.
func NewDataSet() *DataSet { return &DataSet{} }

// AddVPC adds a VPC and its system route table (ID "vtb-" + the VPC ID's
// suffix) and returns it.
func (d *DataSet) AddVPC(region, id, cidr string) *VPC {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := &VPC{ID: id, Region: region, Name: id, CIDR: cidr, VRouterID: "vrt-" + suffix(id), Status: "Available"}
	d.VPCs = append(d.VPCs, v)
	d.RouteTables = append(d.RouteTables, &RouteTable{
		ID: "vtb-" + suffix(id), VPCID: id, Name: "system", Type: "System", AssociateType: "VSwitch",
	})
	return v
}

// AddVSwitch adds a vSwitch to a VPC.
func (d *DataSet) AddVSwitch(vpc *VPC, id, zone, cidr string) *VSwitch {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := netip.MustParsePrefix(cidr)
	// Alibaba Cloud reserves the first and the last three addresses.
	free := int64(1)<<(32-p.Bits()) - 4
	s := &VSwitch{ID: id, VPCID: vpc.ID, Zone: zone, Name: id, CIDR: cidr, AvailableIPs: free, Status: "Available"}
	d.VSwitches = append(d.VSwitches, s)
	return s
}

// SystemTable is the VPC's system route table.
func (d *DataSet) SystemTable(vpc *VPC) *RouteTable {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, t := range d.RouteTables {
		if t.VPCID == vpc.ID && t.Type == "System" {
			return t
		}
	}
	return nil
}

// AddCustomTable adds a custom route table associated with the vSwitches.
func (d *DataSet) AddCustomTable(vpc *VPC, id string, vswitches ...*VSwitch) *RouteTable {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := &RouteTable{ID: id, VPCID: vpc.ID, Name: id, Type: "Custom", AssociateType: "VSwitch"}
	for _, s := range vswitches {
		t.VSwitchIDs = append(t.VSwitchIDs, s.ID)
	}
	d.RouteTables = append(d.RouteTables, t)
	return t
}

// AddInstance adds a Running ECS instance in a vSwitch.
func (d *DataSet) AddInstance(vs *VSwitch, id, privateIP string) *Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	region := ""
	for _, v := range d.VPCs {
		if v.ID == vs.VPCID {
			region = v.Region
		}
	}
	i := &Instance{
		ID: id, Region: region, Zone: vs.Zone, Name: id, Hostname: "iz" + suffix(id) + "z",
		Type: "ecs.g7.xlarge", Status: "Running", VPCID: vs.VPCID, VSwitchID: vs.ID, PrivateIP: privateIP,
		SecurityGroupIDs: []string{"sg-" + suffix(vs.VPCID)},
		ENIID:            "eni-" + suffix(id), MAC: macFor(id), CreationTime: "2024-05-20T08:00Z",
	}
	d.Instances = append(d.Instances, i)
	return i
}

// Route adds an entry to a table and returns it. A nil hop list makes a
// blackhole-free entry without next hops (used for system-like entries).
func (t *RouteTable) Route(dest, typ string, hops ...NextHop) *RouteEntry {
	e := &RouteEntry{ID: fmt.Sprintf("rte-%s%04d", suffix(t.ID), len(t.Entries)+1), Dest: dest, Type: typ, Status: "Available", NextHops: hops}
	for i := range e.NextHops {
		if e.NextHops[i].Enabled == 0 {
			e.NextHops[i].Enabled = 1
		}
	}
	t.Entries = append(t.Entries, e)
	return e
}

// ToInstance is a next hop to an ECS instance (what the cloud controller
// manager writes for a node's podCIDR).
func ToInstance(id string) NextHop { return NextHop{Type: "Instance", ID: id} }

// ToVBR is a next hop to the router interface that leads to a VBR (the
// leased line).
func ToVBR(routerInterface, vbr string) NextHop {
	return NextHop{Type: "RouterInterface", ID: routerInterface, OppositeType: "VirtualBorderRouter", OppositeID: vbr}
}

// To is a next hop of any other type (NatGateway, VpnGateway, HaVip,
// NetworkInterface, Attachment, Ecr, ...).
func To(typ, id string) NextHop { return NextHop{Type: typ, ID: id} }

// Entries is every entry of a table as DescribeRouteEntryList returns it:
// the system entries (each vSwitch CIDR of the VPC, 100.64.0.0/10) first,
// then the table's own, sorted by destination.
func (d *DataSet) Entries(t *RouteTable) []*RouteEntry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*RouteEntry
	if t.AssociateType != "Gateway" && t.VBRID == "" {
		n := 0
		for _, s := range d.VSwitches {
			if s.VPCID == t.VPCID {
				n++
				out = append(out, &RouteEntry{ID: fmt.Sprintf("rte-%ss%03d", suffix(t.ID), n), Dest: s.CIDR, Type: "System", Status: "Available",
					Description: "system route for vSwitch " + s.ID})
			}
		}
		out = append(out, &RouteEntry{ID: "rte-" + suffix(t.ID) + "cloudsvc", Dest: "100.64.0.0/10", Type: "System", Status: "Available",
			Description: "system route for cloud services"})
	}
	out = append(out, t.Entries...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out
}

// tableOf is the route table of a vSwitch: the custom table that lists it,
// else the VPC's system table. Callers hold d.mu.
func (d *DataSet) tableOf(s *VSwitch) *RouteTable {
	var system *RouteTable
	for _, t := range d.RouteTables {
		if t.VPCID != s.VPCID {
			continue
		}
		if t.Type == "System" {
			system = t
		}
		for _, id := range t.VSwitchIDs {
			if id == s.ID {
				return t
			}
		}
	}
	return system
}

func suffix(id string) string {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			return id[i+1:]
		}
	}
	return id
}

func macFor(id string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}

// The IDs byID finds resources by.
func (v *VPC) id() string              { return v.ID }
func (t *RouteTable) id() string       { return t.ID }
func (v *VBR) id() string              { return v.ID }
func (e *ResolverEndpoint) id() string { return e.ID }
func (g *SecurityGroup) id() string    { return g.ID }
