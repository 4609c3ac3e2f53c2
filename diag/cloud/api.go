package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The parts of the Alibaba Cloud OpenAPI the source calls, one narrow
// interface per product area, each method one page of one list in plain
// structs. sdk.go implements all four with alibaba-cloud-sdk-go; a move to
// the per-product V2 SDK replaces only that file. Paging, retries, rate
// limiting and deadlines live in the caller.
type (
	ecsAPI interface {
		describeInstances(ctx context.Context, q instanceQuery) (instancePage, error)
		describeSecurityGroups(ctx context.Context, q groupQuery) (groupPage, error)
		describeSecurityGroupAttribute(ctx context.Context, q ruleQuery) (rulePage, error)
	}
	vpcAPI interface {
		describeVpcs(ctx context.Context, q listQuery) (vpcPage, error)
		describeVSwitches(ctx context.Context, q listQuery) (vswitchPage, error)
		describeRouteTables(ctx context.Context, q listQuery) (tablePage, error)
		describeRouteEntries(ctx context.Context, q entryQuery) (entryPage, error)
	}
	// leasedLineAPI is Express Connect: VBRs and their BGP.
	leasedLineAPI interface {
		describeVirtualBorderRouters(ctx context.Context, q listQuery) (vbrPage, error)
		describeBgpPeers(ctx context.Context, q listQuery) (peerPage, error)
		describeBgpNetworks(ctx context.Context, q listQuery) (networkPage, error)
	}
	pvtzAPI interface {
		describeZones(ctx context.Context, q zoneQuery) (zonePage, error)
		describeZoneInfo(ctx context.Context, zoneID string) (ZoneLookup, error)
		describeResolverEndpoints(ctx context.Context, q listQuery) (endpointPage, error)
		describeResolverRules(ctx context.Context, q listQuery) (resolverRulePage, error)
	}
)

// The RAM actions of the calls, as a policy names them. Every one is a
// read: deploy/cloud/ram-policy.json lists exactly these, and a test keeps
// the two (and the actions the lab server saw) in step.
const (
	actionDescribeInstances              = "ecs:DescribeInstances"
	actionDescribeSecurityGroups         = "ecs:DescribeSecurityGroups"
	actionDescribeSecurityGroupAttribute = "ecs:DescribeSecurityGroupAttribute"
	actionDescribeVpcs                   = "vpc:DescribeVpcs"
	actionDescribeVSwitches              = "vpc:DescribeVSwitches"
	actionDescribeRouteTableList         = "vpc:DescribeRouteTableList"
	actionDescribeRouteEntryList         = "vpc:DescribeRouteEntryList"
	actionDescribeVirtualBorderRouters   = "vpc:DescribeVirtualBorderRouters"
	actionDescribeBgpPeers               = "vpc:DescribeBgpPeers"
	actionDescribeBgpNetworks            = "vpc:DescribeBgpNetworks"
	actionDescribeZones                  = "pvtz:DescribeZones"
	actionDescribeZoneInfo               = "pvtz:DescribeZoneInfo"
	actionDescribeResolverEndpoints      = "pvtz:DescribeResolverEndpoints"
	actionDescribeResolverRules          = "pvtz:DescribeResolverRules"
)

// Page sizes: each API's documented maximum, so lists take the fewest
// calls.
const (
	maxInstanceIDs  = 100  // DescribeInstances InstanceIds and MaxResults
	maxPageSize     = 50   // DescribeVpcs, DescribeVSwitches, DescribeRouteTableList, the VBR and BGP lists
	maxEntryResults = 100  // DescribeRouteEntryList MaxResult
	maxPvtzPageSize = 100  // DescribeZones, DescribeResolverEndpoints, DescribeResolverRules
	maxGroupIDs     = 100  // DescribeSecurityGroups SecurityGroupIds and MaxResults
	maxRuleResults  = 1000 // DescribeSecurityGroupAttribute MaxResults
	// maxPages bounds every paging loop; a server that keeps answering
	// more pages is an error, not a hang.
	maxPages = 1000
)

// instanceQuery is DescribeInstances with NextToken/MaxResults paging.
type instanceQuery struct {
	Region     string
	IDs        []string // at most maxInstanceIDs
	VPCID      string
	NextToken  string
	MaxResults int
	DryRun     bool
}

type instancePage struct {
	Instances []Instance
	NextToken string
}

// listQuery is a PageNumber/PageSize list, filtered by VPC, vSwitch or
// router when those are set.
type listQuery struct {
	Region     string
	VPCID      string
	VSwitchID  string
	RouterType string // DescribeRouteTableList: VRouter (default) or VBR
	RouterID   string // a VBR's ID, for its route table and BGP lists
	PageNumber int
	PageSize   int
	DryRun     bool
}

type vpcPage struct {
	VPCs       []VPC
	TotalCount int
}

type vswitchPage struct {
	VSwitches  []VSwitch
	TotalCount int
}

type tablePage struct {
	Tables     []RouteTable
	TotalCount int
}

type vbrPage struct {
	VBRs       []VBR
	TotalCount int
}

type peerPage struct {
	Peers      []BGPPeer
	TotalCount int
}

type networkPage struct {
	Networks   []BGPNetwork
	TotalCount int
}

// zoneQuery is DescribeZones: the zones bound to a VPC, or one zone by
// its exact name.
type zoneQuery struct {
	VPCID, Region string
	Name          string
	PageNumber    int
	PageSize      int
}

type zonePage struct {
	Zones      []Zone
	TotalItems int
}

type endpointPage struct {
	Endpoints  []ResolverEndpoint
	TotalItems int
}

type resolverRulePage struct {
	Rules      []ResolverRule
	TotalItems int
}

// groupQuery is DescribeSecurityGroups by ID with NextToken/MaxResults.
type groupQuery struct {
	Region     string
	IDs        []string // at most maxGroupIDs
	NextToken  string
	MaxResults int
	DryRun     bool
}

type groupPage struct {
	Groups    []SecurityGroup
	NextToken string
}

// ruleQuery is DescribeSecurityGroupAttribute (inbound rules) with
// NextToken/MaxResults.
type ruleQuery struct {
	Region     string
	GroupID    string
	NextToken  string
	MaxResults int
}

// rulePage is one page of a group's rules; the group's attributes come
// with every page.
type rulePage struct {
	Group     SecurityGroup
	NextToken string
}

// entryQuery is DescribeRouteEntryList with NextToken/MaxResult paging.
type entryQuery struct {
	Region    string
	TableID   string
	NextToken string
	MaxResult int
}

type entryPage struct {
	Entries   []RouteEntry
	NextToken string
}

// APIError is an error answer of the API: its code, message and request
// ID, with secrets removed from the message.
type APIError struct {
	Action     string // RAM action
	Code       string
	Message    string
	RequestID  string
	HTTPStatus int
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s: %s (HTTP %d", e.Action, e.Code, e.HTTPStatus)
	if e.RequestID != "" {
		msg += ", request " + e.RequestID
	}
	msg += ")"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// codeDryRunPassed answers a DryRun request the caller may send.
const codeDryRunPassed = "DryRunOperation"

// isPermission reports a RAM denial: Forbidden.RAM, NoPermission,
// Forbidden and their variants, or HTTP 403.
func isPermission(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code
	return e.HTTPStatus == 403 || c == "Forbidden" || c == "NoPermission" ||
		strings.HasPrefix(c, "Forbidden.") || strings.HasSuffix(c, ".NoPermission") || strings.HasPrefix(c, "NoPermission.")
}

// isThrottle reports flow control or a transient server failure, which is
// retried with backoff while the deadline allows.
func isThrottle(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable", "InternalError":
		return true
	}
	return strings.HasPrefix(e.Code, "Throttling") || e.HTTPStatus == 503
}

// isCredential reports that the gateway rejected the credential itself.
func isCredential(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.Code == "SignatureDoesNotMatch", e.Code == "IncompleteSignature",
		strings.HasPrefix(e.Code, "InvalidAccessKeyId"), strings.HasPrefix(e.Code, "InvalidSecurityToken"):
		return true
	}
	return false
}
