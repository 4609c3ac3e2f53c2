package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vnodediag/vnodediag/diag/cloudnet"
)

// Snapshot is what the cloud source read in one run: plain structs, never
// SDK types. Parts that could not be read are in Errors (or, per route
// table, in RouteTable.EntriesErr; per instance, in InstanceErrs), so that
// only the checks needing them ERROR.
type Snapshot struct {
	Region string
	// Credential is the kind of credential used (never the key).
	Credential string
	// VPCID is the cluster's VPC, configured or discovered; VPCFrom says
	// which.
	VPCID   string
	VPCFrom string
	VPC     *VPC

	// Instances are the ECS instances found, by ID; Queried holds every ID
	// the source looked up (the instances the nodes name when the source
	// read them); InstanceErrs holds the IDs whose lookup failed.
	Instances    map[string]*Instance
	Queried      map[string]bool
	InstanceErrs map[string]*PartError

	VSwitches map[string]*VSwitch
	Tables    []*RouteTable

	// The leased line: every VBR of the region (with its route table when
	// it was read), every BGP peer and advertised BGP network of the region.
	VBRs        []*VBR
	BGPPeers    []BGPPeer
	BGPNetworks []BGPNetwork

	// PrivateZone: the zones bound to the VPC, the configured PrivateZone
	// zones that are not (by canonical name: found elsewhere or not at
	// all), the resolver endpoints and forwarding rules of the account.
	Zones       []Zone
	ZoneLookups map[string]*ZoneLookup
	Endpoints   []ResolverEndpoint
	Rules       []ResolverRule

	// SecurityGroups are the groups of the ECS nodes' instances and of
	// ECI, by ID; ResourceErrs the security groups and vSwitches (by ID)
	// that could not be read.
	SecurityGroups map[string]*SecurityGroup
	ResourceErrs   map[string]*PartError
	// ECI is what ECI uses (eci-profile or the configuration), and
	// OtherVSwitches its vSwitches found outside the VPC (nil: not found).
	ECI            ECIConfig
	OtherVSwitches map[string]*VSwitch

	// OnPremCIDRs, RouteEntryQuota, and the rest of the expectations come
	// from the configuration.
	OnPremCIDRs     []netip.Prefix
	RouteEntryQuota int
	Expect          Expectations

	// Errors are the parts that could not be read.
	Errors map[Part]*PartError
	// Calls is the number of API requests sent.
	Calls int
}

// Part names a piece of the snapshot that is read by one chain of calls.
type Part string

// The parts of a snapshot.
const (
	PartInstances   Part = "instances"
	PartVPC         Part = "vpc"
	PartVSwitches   Part = "vswitches"
	PartTables      Part = "route tables"
	PartVBRs        Part = "virtual border routers"
	PartBGPPeers    Part = "VBR BGP peers"
	PartBGPNetworks Part = "VBR BGP networks"
	PartZones       Part = "PrivateZone zones"
	PartEndpoints   Part = "PrivateZone resolver endpoints"
	PartRules       Part = "PrivateZone forwarding rules"
)

// PartError is why a part could not be read: the RAM action, and whether
// it is a permission problem (then the fix is a policy statement).
type PartError struct {
	Part       Part
	Action     string // RAM action, e.g. ecs:DescribeInstances
	Err        error
	Permission bool
	// Credential: the gateway rejected the credential itself.
	Credential bool
	// Absent: the resource does not exist (the API said so; not a
	// permission or transport problem).
	Absent bool
	// Remedy, when set, is the fix (for errors the configuration solves).
	Remedy string
}

func (e *PartError) Error() string { return e.Err.Error() }

// Fix is what to do about the error: for a permission error, the RAM
// policy statement to add.
func (e *PartError) Fix() string {
	if e.Remedy != "" {
		return e.Remedy
	}
	if e.Permission {
		return fmt.Sprintf(`Grant the RAM identity %s: add the statement {"Effect": "Allow", "Action": ["%s"], "Resource": "*"} to its policy `+
			`(deploy/cloud/ram-policy.json is the complete read-only policy: aliyun ram CreatePolicy --PolicyName vnodediag-read --PolicyDocument "$(cat deploy/cloud/ram-policy.json)", then AttachPolicyToUser or AttachPolicyToRole).`,
			e.Action, e.Action)
	}
	if e.Credential {
		return "The gateway rejected the credential: check the AccessKey pair the source used (SignatureDoesNotMatch: the secret does not belong to the AccessKey ID; " +
			"InvalidAccessKeyId.NotFound: the key was deleted or belongs to another site; InvalidSecurityToken.*: the STS token expired or belongs to another key), then re-run."
	}
	return "Check the endpoint, the network path to it and the credentials; then re-run."
}

// Instance is an ECS instance.
type Instance struct {
	ID, Region, Zone, Name string
	Status                 string // Running, Stopped, Starting, Stopping, Pending
	VPCID, VSwitchID       string
	// PrimaryIP is the primary private IP of the primary network interface.
	PrimaryIP        string
	PrivateIPs       []string
	SecurityGroupIDs []string
}

// VPC is a virtual private cloud.
type VPC struct {
	ID, Region, Name, Status string
	CIDR                     string
	SecondaryCIDRs           []string
	VRouterID                string
}

// VSwitch is a vSwitch and the route table it uses.
type VSwitch struct {
	ID, VPCID, Zone, Name, Status string
	CIDR                          string
	AvailableIPs                  int64
	RouteTableID                  string
	RouteTableType                string
}

// RouteTable is a route table of the VPC's vRouter with its entries.
type RouteTable struct {
	ID, VPCID, Name string
	Type            string // System or Custom
	AssociateType   string // VSwitch or Gateway
	VSwitchIDs      []string
	// RouterType is VRouter (a VPC's table) or VBR (a VBR's, RouterID).
	RouterType, RouterID string
	Entries              []RouteEntry
	// EntriesErr is why the entries could not be read.
	EntriesErr *PartError
}

// RouteEntry is one route of a table.
type RouteEntry struct {
	ID, Name string
	Dest     netip.Prefix
	Type     string // Custom, System, BGP, CEN, ECR
	Status   string
	NextHops []NextHop
}

// NextHop is one next hop of a route entry.
type NextHop struct {
	Type, ID                 string
	OppositeType, OppositeID string
	Enabled                  bool
	Weight                   int
}

// VBR is a virtual border router of the leased line.
type VBR struct {
	ID, Name, Status     string
	PhysicalConnectionID string
	// LocalGatewayIP is the VBR's side of the peering subnet,
	// PeerGatewayIP the on-prem router's.
	LocalGatewayIP, PeerGatewayIP string
	// Table is the VBR's route table with its entries; nil when it was not
	// read (TableErr says why).
	Table    *RouteTable
	TableErr *PartError
}

// BGPPeer is a BGP peer of a VBR: an on-prem router.
type BGPPeer struct {
	ID, VBRID, Name string
	PeerIP          string
	PeerASN         uint32 // 0: not a number in the answer
	LocalASN        uint32
	BGPStatus       string // Idle, Connect, Active, Established, Down
	Status          string // Available, Pending, Modifying, ...
	Advertised      int
	Received        int
}

// BGPNetwork is a network a VBR advertises to its peers.
type BGPNetwork struct {
	VBRID, VPCID, Status string
	Dest                 netip.Prefix
}

// Zone is a PrivateZone zone; Name is canonical (lower case, trailing dot).
type Zone struct {
	ID, Name string
	Records  int
}

// ZoneLookup is a configured PrivateZone zone that is not bound to the
// VPC: whether it exists, and the VPCs it is bound to instead.
type ZoneLookup struct {
	Found   bool
	ID      string
	BoundTo []ZoneVPC
	Err     *PartError
}

// ZoneVPC is a VPC a zone or a rule is bound to.
type ZoneVPC struct {
	VPCID, Region string
}

// ResolverEndpoint is a PrivateZone resolver endpoint.
type ResolverEndpoint struct {
	ID, Name, VPCID, Region, Status string
	IPs                             []netip.Addr
}

// ResolverRule is an outbound forwarding rule: queries for Zone from the
// bound VPCs go through EndpointID to Forward.
type ResolverRule struct {
	ID, Name, Type string
	Zone           string // canonical
	EndpointID     string
	Forward        []netip.AddrPort
	VPCs           []ZoneVPC
}

// SecurityGroup is an ECS security group with its inbound rules.
type SecurityGroup struct {
	ID, Name, VPCID   string
	Type              string // normal or enterprise
	InnerAccessPolicy string // Accept or Drop
	Rules             []SGRule
}

// SGRule is one inbound rule, parsed. Ports are [lo, hi]; 1-65535 for
// "-1/-1" of TCP and UDP; ignored for other protocols.
type SGRule struct {
	ID, Description string
	Priority        int    // 1 (first) to 100
	Drop            bool   // Policy Drop (else Accept)
	Protocol        string // tcp, udp, icmp, gre, all (lower case)
	Ports           [2]int
	Source          netip.Prefix // a CIDR source, else invalid
	SourceGroup     string       // a group source, else ""
	PrefixList      string       // a prefix-list source (not expanded)
	Raw             string       // the rule as the API gave it, for evidence
}

// ECIConfig is what ECI pods get: security groups and vSwitches, from the
// eci-profile ConfigMap or the configuration (From says which); Err is
// why the ConfigMap could not be read.
type ECIConfig struct {
	SecurityGroups []string
	VSwitches      []string
	From           string
	Err            error
}

// Expectations are the configured facts the checks compare with.
type Expectations struct {
	VBRIDs          []string
	OnPremASN       uint32
	InboundEndpoint []string
	RequiredPorts   []PortSpec
}

// String describes an entry as "172.22.1.0/24 (Custom) -> Instance i-...".
func (e RouteEntry) String() string {
	var hops []string
	for _, h := range e.NextHops {
		hops = append(hops, h.String())
	}
	to := strings.Join(hops, ", ")
	if to == "" {
		to = "local"
		if e.Dest == cloudnet.CGNAT {
			to = "Alibaba Cloud services"
		}
	}
	return fmt.Sprintf("%s (%s) -> %s", e.Dest, e.Type, to)
}

func (h NextHop) String() string {
	s := h.Type + " " + h.ID
	if h.OppositeType != "" {
		s += fmt.Sprintf(" (to %s %s)", h.OppositeType, h.OppositeID)
	}
	return s
}

// Describe is the source's one-line description in the report.
func (s *Snapshot) Describe() string {
	entries := 0
	for _, t := range s.Tables {
		entries += len(t.Entries)
	}
	vpc := s.VPCID
	if vpc == "" {
		vpc = "VPC unknown"
	} else if s.VPCFrom != "" {
		vpc += " (" + s.VPCFrom + ")"
	}
	msg := fmt.Sprintf("%s, %s: %d instances, %d vSwitches, %d route tables, %d route entries, %d VBRs, %d BGP peers, %d PrivateZone zones bound, "+
		"%d resolver endpoints, %d forwarding rules, %d security groups; %d API calls; credentials: %s",
		s.Region, vpc, len(s.Instances), len(s.VSwitches), len(s.Tables), entries, len(s.VBRs), len(s.BGPPeers), len(s.Zones),
		len(s.Endpoints), len(s.Rules), len(s.SecurityGroups), s.Calls, s.Credential)
	if n := len(s.Errors); n > 0 {
		parts := make([]string, 0, n)
		for p := range s.Errors {
			parts = append(parts, string(p))
		}
		sort.Strings(parts)
		msg += "; not read: " + strings.Join(parts, ", ")
	}
	return msg
}
