package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/pvtz"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
)

// sdkAPI implements api with alibaba-cloud-sdk-go (V1). This is the only
// file that imports the SDK.
//
// The V1 SDK takes no context, and its client rewrites its own
// http.Client timeout and *http.Transport on every request, which races
// when one client is shared. So every call gets a fresh, cheap client whose
// transport is a wrapper that puts the call's context on the request: a
// cancelled or expired context aborts the dial, the wait for the answer
// and the body read at once, and no goroutine is left behind. The wrapper
// is not an *http.Transport, so the SDK leaves it alone; the connections
// live in one shared transport.
type sdkAPI struct {
	region    string
	cred      credentials.CredentialsProvider
	base      *http.Transport
	endpoints map[string]endpoint
	timeout   time.Duration
}

func newSDKAPI(s *settings, cred credentials.CredentialsProvider, base *http.Transport) *sdkAPI {
	sdkEndpointMaps.Do(func() {
		// The product endpoint maps are filled lazily without a lock; fill
		// them once before clients are made concurrently.
		ecs.GetEndpointMap()
		vpc.GetEndpointMap()
		pvtz.GetEndpointMap()
	})
	return &sdkAPI{region: s.region, cred: cred, base: base, endpoints: s.endpoints, timeout: s.requestTimeout}
}

var sdkEndpointMaps sync.Once

// newTransport is the connection pool of one provider.
func newTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: min(5*time.Second, timeout), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: min(5*time.Second, timeout),
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

func (a *sdkAPI) config(ctx context.Context) *sdk.Config {
	c := sdk.NewConfig()
	c.AutoRetry = false // the caller retries, inside the deadline
	c.Transport = ctxTransport{ctx: ctx, base: a.base}
	c.Timeout = a.backstop()
	c.Scheme = "HTTPS" // the SDK's default is HTTP
	c.UserAgent = "vnodediag/" + diag.Version
	return c
}

// prepare sets what every request shares: region, endpoint, timeouts.
func (a *sdkAPI) prepare(r *requests.RpcRequest, product, region string) {
	r.RegionId = region
	r.Scheme = "HTTPS"
	if e, ok := a.endpoints[product]; ok {
		r.Scheme, r.Domain = e.scheme, e.host
	}
	r.SetReadTimeout(a.backstop())
	r.SetConnectTimeout(min(5*time.Second, a.timeout))
}

// backstop is the SDK's own read timeout: a little longer than the
// request timeout, which the call's context enforces (and names).
func (a *sdkAPI) backstop() time.Duration { return a.timeout + time.Second }

func (a *sdkAPI) describeInstances(ctx context.Context, q instanceQuery) (instancePage, error) {
	c, err := a.ecsClient(ctx, actionDescribeInstances)
	if err != nil {
		return instancePage{}, err
	}
	r := ecs.CreateDescribeInstancesRequest()
	a.prepare(r.RpcRequest, "ecs", q.Region)
	if q.IDs != nil {
		b, _ := json.Marshal(q.IDs)
		r.InstanceIds = string(b)
	}
	r.VpcId = q.VPCID
	r.NextToken = q.NextToken
	if q.MaxResults > 0 {
		r.MaxResults = requests.NewInteger(q.MaxResults)
	}
	if q.DryRun {
		r.DryRun = requests.NewBoolean(true)
	}
	resp, err := c.DescribeInstances(r)
	if err != nil {
		return instancePage{}, a.callErr(ctx, actionDescribeInstances, err)
	}
	p := instancePage{NextToken: resp.NextToken}
	for _, in := range resp.Instances.Instance {
		i := Instance{
			ID: in.InstanceId, Region: in.RegionId, Zone: in.ZoneId, Name: in.InstanceName, Status: in.Status,
			VPCID: in.VpcAttributes.VpcId, VSwitchID: in.VpcAttributes.VSwitchId,
			PrivateIPs:       in.VpcAttributes.PrivateIpAddress.IpAddress,
			SecurityGroupIDs: in.SecurityGroupIds.SecurityGroupId,
		}
		for _, n := range in.NetworkInterfaces.NetworkInterface {
			if n.Type == "Primary" {
				i.PrimaryIP = n.PrimaryIpAddress
			}
		}
		if i.PrimaryIP == "" && len(i.PrivateIPs) > 0 {
			i.PrimaryIP = i.PrivateIPs[0]
		}
		p.Instances = append(p.Instances, i)
	}
	return p, nil
}

func (a *sdkAPI) vpcClient(ctx context.Context, action string) (*vpc.Client, error) {
	c, err := vpc.NewClientWithOptions(a.region, a.config(ctx), a.cred)
	if err != nil {
		return nil, a.clientErr(action, err)
	}
	return c, nil
}

func (a *sdkAPI) describeVpcs(ctx context.Context, q listQuery) (vpcPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeVpcs)
	if err != nil {
		return vpcPage{}, err
	}
	r := vpc.CreateDescribeVpcsRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.VpcId = q.VPCID
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	if q.DryRun {
		r.DryRun = requests.NewBoolean(true)
	}
	resp, err := c.DescribeVpcs(r)
	if err != nil {
		return vpcPage{}, a.callErr(ctx, actionDescribeVpcs, err)
	}
	p := vpcPage{TotalCount: resp.TotalCount}
	for _, v := range resp.Vpcs.Vpc {
		p.VPCs = append(p.VPCs, VPC{
			ID: v.VpcId, Region: v.RegionId, Name: v.VpcName, Status: v.Status, CIDR: v.CidrBlock,
			SecondaryCIDRs: v.SecondaryCidrBlocks.SecondaryCidrBlock, VRouterID: v.VRouterId,
		})
	}
	return p, nil
}

func (a *sdkAPI) describeVSwitches(ctx context.Context, q listQuery) (vswitchPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeVSwitches)
	if err != nil {
		return vswitchPage{}, err
	}
	r := vpc.CreateDescribeVSwitchesRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.VpcId, r.VSwitchId = q.VPCID, q.VSwitchID
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	if q.DryRun {
		r.DryRun = requests.NewBoolean(true)
	}
	resp, err := c.DescribeVSwitches(r)
	if err != nil {
		return vswitchPage{}, a.callErr(ctx, actionDescribeVSwitches, err)
	}
	p := vswitchPage{TotalCount: resp.TotalCount}
	for _, s := range resp.VSwitches.VSwitch {
		p.VSwitches = append(p.VSwitches, VSwitch{
			ID: s.VSwitchId, VPCID: s.VpcId, Zone: s.ZoneId, Name: s.VSwitchName, Status: s.Status, CIDR: s.CidrBlock,
			AvailableIPs: s.AvailableIpAddressCount, RouteTableID: s.RouteTable.RouteTableId, RouteTableType: s.RouteTable.RouteTableType,
		})
	}
	return p, nil
}

func (a *sdkAPI) describeRouteTables(ctx context.Context, q listQuery) (tablePage, error) {
	c, err := a.vpcClient(ctx, actionDescribeRouteTableList)
	if err != nil {
		return tablePage{}, err
	}
	r := vpc.CreateDescribeRouteTableListRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.VpcId, r.RouterType, r.RouterId = q.VPCID, q.RouterType, q.RouterID
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeRouteTableList(r)
	if err != nil {
		return tablePage{}, a.callErr(ctx, actionDescribeRouteTableList, err)
	}
	p := tablePage{TotalCount: resp.TotalCount}
	for _, t := range resp.RouterTableList.RouterTableListType {
		p.Tables = append(p.Tables, RouteTable{
			ID: t.RouteTableId, VPCID: t.VpcId, Name: t.RouteTableName, Type: t.RouteTableType,
			AssociateType: t.AssociateType, VSwitchIDs: t.VSwitchIds.VSwitchId, RouterType: t.RouterType, RouterID: t.RouterId,
		})
	}
	return p, nil
}

func (a *sdkAPI) describeRouteEntries(ctx context.Context, q entryQuery) (entryPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeRouteEntryList)
	if err != nil {
		return entryPage{}, err
	}
	r := vpc.CreateDescribeRouteEntryListRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.RouteTableId = q.TableID
	r.NextToken = q.NextToken
	r.MaxResult = requests.NewInteger(q.MaxResult)
	resp, err := c.DescribeRouteEntryList(r)
	if err != nil {
		return entryPage{}, a.callErr(ctx, actionDescribeRouteEntryList, err)
	}
	p := entryPage{NextToken: resp.NextToken}
	for _, e := range resp.RouteEntrys.RouteEntry {
		dest, err := netip.ParsePrefix(e.DestinationCidrBlock)
		if err != nil {
			return entryPage{}, fmt.Errorf("%s: route table %s: entry %s has destination %q, not a CIDR", actionDescribeRouteEntryList, q.TableID, e.RouteEntryId, e.DestinationCidrBlock)
		}
		re := RouteEntry{ID: e.RouteEntryId, Name: e.RouteEntryName, Dest: dest.Masked(), Type: e.Type, Status: e.Status}
		for _, h := range e.NextHops.NextHop {
			re.NextHops = append(re.NextHops, NextHop{
				Type: h.NextHopType, ID: h.NextHopId, OppositeType: h.NextHopOppsiteType, OppositeID: h.NextHopOppsiteInstanceId,
				Enabled: h.Enabled != 0, Weight: h.Weight,
			})
		}
		// Older answers name a single next hop on the entry itself.
		if len(re.NextHops) == 0 && e.NextHopType != "" {
			re.NextHops = []NextHop{{Type: e.NextHopType, ID: e.InstanceId, OppositeType: e.NextHopOppsiteType, OppositeID: e.NextHopOppsiteInstanceId, Enabled: true}}
		}
		p.Entries = append(p.Entries, re)
	}
	return p, nil
}

func (a *sdkAPI) ecsClient(ctx context.Context, action string) (*ecs.Client, error) {
	c, err := ecs.NewClientWithOptions(a.region, a.config(ctx), a.cred)
	if err != nil {
		return nil, a.clientErr(action, err)
	}
	return c, nil
}

func (a *sdkAPI) describeSecurityGroups(ctx context.Context, q groupQuery) (groupPage, error) {
	c, err := a.ecsClient(ctx, actionDescribeSecurityGroups)
	if err != nil {
		return groupPage{}, err
	}
	r := ecs.CreateDescribeSecurityGroupsRequest()
	a.prepare(r.RpcRequest, "ecs", q.Region)
	b, _ := json.Marshal(q.IDs)
	r.SecurityGroupIds = string(b)
	r.NextToken = q.NextToken
	r.MaxResults = requests.NewInteger(q.MaxResults)
	if q.DryRun {
		r.DryRun = requests.NewBoolean(true)
	}
	resp, err := c.DescribeSecurityGroups(r)
	if err != nil {
		return groupPage{}, a.callErr(ctx, actionDescribeSecurityGroups, err)
	}
	p := groupPage{NextToken: resp.NextToken}
	for _, g := range resp.SecurityGroups.SecurityGroup {
		p.Groups = append(p.Groups, SecurityGroup{ID: g.SecurityGroupId, Name: g.SecurityGroupName, VPCID: g.VpcId, Type: g.SecurityGroupType})
	}
	return p, nil
}

func (a *sdkAPI) describeSecurityGroupAttribute(ctx context.Context, q ruleQuery) (rulePage, error) {
	c, err := a.ecsClient(ctx, actionDescribeSecurityGroupAttribute)
	if err != nil {
		return rulePage{}, err
	}
	r := ecs.CreateDescribeSecurityGroupAttributeRequest()
	a.prepare(r.RpcRequest, "ecs", q.Region)
	r.SecurityGroupId, r.Direction, r.NextToken = q.GroupID, "ingress", q.NextToken
	r.MaxResults = requests.NewInteger(q.MaxResults)
	resp, err := c.DescribeSecurityGroupAttribute(r)
	if err != nil {
		return rulePage{}, a.callErr(ctx, actionDescribeSecurityGroupAttribute, err)
	}
	p := rulePage{NextToken: resp.NextToken, Group: SecurityGroup{
		ID: resp.SecurityGroupId, Name: resp.SecurityGroupName, VPCID: resp.VpcId, InnerAccessPolicy: resp.InnerAccessPolicy,
	}}
	for _, perm := range resp.Permissions.Permission {
		if !strings.EqualFold(perm.Direction, "ingress") {
			continue
		}
		src := perm.SourceCidrIp
		if src == "" {
			src = perm.Ipv6SourceCidrIp
		}
		rule, err := parseRule(perm.SecurityGroupRuleId, perm.Priority, perm.Policy, perm.IpProtocol, perm.PortRange, src, perm.SourceGroupId, perm.SourcePrefixListId, perm.Description)
		if err != nil {
			return rulePage{}, fmt.Errorf("%s: security group %s: %w", actionDescribeSecurityGroupAttribute, q.GroupID, err)
		}
		p.Group.Rules = append(p.Group.Rules, rule)
	}
	return p, nil
}

func (a *sdkAPI) describeVirtualBorderRouters(ctx context.Context, q listQuery) (vbrPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeVirtualBorderRouters)
	if err != nil {
		return vbrPage{}, err
	}
	r := vpc.CreateDescribeVirtualBorderRoutersRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeVirtualBorderRouters(r)
	if err != nil {
		return vbrPage{}, a.callErr(ctx, actionDescribeVirtualBorderRouters, err)
	}
	p := vbrPage{TotalCount: resp.TotalCount}
	for _, v := range resp.VirtualBorderRouterSet.VirtualBorderRouterType {
		p.VBRs = append(p.VBRs, VBR{
			ID: v.VbrId, Name: v.Name, Status: v.Status, PhysicalConnectionID: v.PhysicalConnectionId,
			LocalGatewayIP: v.LocalGatewayIp, PeerGatewayIP: v.PeerGatewayIp,
		})
	}
	return p, nil
}

func (a *sdkAPI) describeBgpPeers(ctx context.Context, q listQuery) (peerPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeBgpPeers)
	if err != nil {
		return peerPage{}, err
	}
	r := vpc.CreateDescribeBgpPeersRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.RouterId = q.RouterID
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeBgpPeers(r)
	if err != nil {
		return peerPage{}, a.callErr(ctx, actionDescribeBgpPeers, err)
	}
	p := peerPage{TotalCount: resp.TotalCount}
	// The answer carries each peer's MD5 key (AuthKey); it is not copied.
	for _, b := range resp.BgpPeers.BgpPeer {
		p.Peers = append(p.Peers, BGPPeer{
			ID: b.BgpPeerId, VBRID: b.RouterId, Name: b.Name, PeerIP: b.PeerIpAddress, PeerASN: parseASN(b.PeerAsn), LocalASN: parseASN(b.LocalAsn),
			BGPStatus: b.BgpStatus, Status: b.Status, Advertised: b.AdvertisedRouteCount, Received: b.ReceivedRouteCount,
		})
	}
	return p, nil
}

func (a *sdkAPI) describeBgpNetworks(ctx context.Context, q listQuery) (networkPage, error) {
	c, err := a.vpcClient(ctx, actionDescribeBgpNetworks)
	if err != nil {
		return networkPage{}, err
	}
	r := vpc.CreateDescribeBgpNetworksRequest()
	a.prepare(r.RpcRequest, "vpc", q.Region)
	r.RouterId = q.RouterID
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeBgpNetworks(r)
	if err != nil {
		return networkPage{}, a.callErr(ctx, actionDescribeBgpNetworks, err)
	}
	p := networkPage{TotalCount: resp.TotalCount}
	for _, n := range resp.BgpNetworks.BgpNetwork {
		dest, err := netip.ParsePrefix(n.DstCidrBlock)
		if err != nil {
			return networkPage{}, fmt.Errorf("%s: VBR %s advertises %q, not a CIDR", actionDescribeBgpNetworks, n.RouterId, n.DstCidrBlock)
		}
		p.Networks = append(p.Networks, BGPNetwork{VBRID: n.RouterId, VPCID: n.VpcId, Status: n.Status, Dest: dest.Masked()})
	}
	return p, nil
}

func (a *sdkAPI) pvtzClient(ctx context.Context, action string) (*pvtz.Client, error) {
	c, err := pvtz.NewClientWithOptions(a.region, a.config(ctx), a.cred)
	if err != nil {
		return nil, a.clientErr(action, err)
	}
	return c, nil
}

func (a *sdkAPI) describeZones(ctx context.Context, q zoneQuery) (zonePage, error) {
	c, err := a.pvtzClient(ctx, actionDescribeZones)
	if err != nil {
		return zonePage{}, err
	}
	r := pvtz.CreateDescribeZonesRequest()
	a.prepare(r.RpcRequest, "pvtz", a.region)
	r.QueryVpcId, r.QueryRegionId = q.VPCID, q.Region
	if q.Name != "" {
		r.Keyword, r.SearchMode = strings.TrimSuffix(q.Name, "."), "EXACT"
	}
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeZones(r)
	if err != nil {
		return zonePage{}, a.callErr(ctx, actionDescribeZones, err)
	}
	p := zonePage{TotalItems: resp.TotalItems}
	for _, z := range resp.Zones.Zone {
		p.Zones = append(p.Zones, Zone{ID: z.ZoneId, Name: corefile.CanonicalName(z.ZoneName), Records: z.RecordCount})
	}
	return p, nil
}

func (a *sdkAPI) describeZoneInfo(ctx context.Context, zoneID string) (ZoneLookup, error) {
	c, err := a.pvtzClient(ctx, actionDescribeZoneInfo)
	if err != nil {
		return ZoneLookup{}, err
	}
	r := pvtz.CreateDescribeZoneInfoRequest()
	a.prepare(r.RpcRequest, "pvtz", a.region)
	r.ZoneId = zoneID
	resp, err := c.DescribeZoneInfo(r)
	if err != nil {
		return ZoneLookup{}, a.callErr(ctx, actionDescribeZoneInfo, err)
	}
	z := ZoneLookup{Found: true, ID: resp.ZoneId}
	for _, v := range resp.BindVpcs.Vpc {
		z.BoundTo = append(z.BoundTo, ZoneVPC{VPCID: v.VpcId, Region: v.RegionId})
	}
	return z, nil
}

func (a *sdkAPI) describeResolverEndpoints(ctx context.Context, q listQuery) (endpointPage, error) {
	c, err := a.pvtzClient(ctx, actionDescribeResolverEndpoints)
	if err != nil {
		return endpointPage{}, err
	}
	r := pvtz.CreateDescribeResolverEndpointsRequest()
	a.prepare(r.RpcRequest, "pvtz", a.region)
	r.VpcRegionId = q.Region
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeResolverEndpoints(r)
	if err != nil {
		return endpointPage{}, a.callErr(ctx, actionDescribeResolverEndpoints, err)
	}
	p := endpointPage{TotalItems: resp.TotalItems}
	for _, e := range resp.Endpoints {
		ep := ResolverEndpoint{ID: e.Id, Name: e.Name, VPCID: e.VpcId, Region: e.VpcRegionId, Status: e.Status}
		for _, ip := range e.IpConfigs {
			addr, err := netip.ParseAddr(ip.Ip)
			if err != nil {
				return endpointPage{}, fmt.Errorf("%s: endpoint %s has address %q, not an IP address", actionDescribeResolverEndpoints, e.Id, ip.Ip)
			}
			ep.IPs = append(ep.IPs, addr.Unmap())
		}
		p.Endpoints = append(p.Endpoints, ep)
	}
	return p, nil
}

func (a *sdkAPI) describeResolverRules(ctx context.Context, q listQuery) (resolverRulePage, error) {
	c, err := a.pvtzClient(ctx, actionDescribeResolverRules)
	if err != nil {
		return resolverRulePage{}, err
	}
	r := pvtz.CreateDescribeResolverRulesRequest()
	a.prepare(r.RpcRequest, "pvtz", a.region)
	// The bound VPCs come only with the detail attributes.
	r.NeedDetailAttributes = requests.NewBoolean(true)
	r.PageNumber, r.PageSize = requests.NewInteger(q.PageNumber), requests.NewInteger(q.PageSize)
	resp, err := c.DescribeResolverRules(r)
	if err != nil {
		return resolverRulePage{}, a.callErr(ctx, actionDescribeResolverRules, err)
	}
	p := resolverRulePage{TotalItems: resp.TotalItems}
	for _, ru := range resp.Rules {
		rule := ResolverRule{ID: ru.Id, Name: ru.Name, Type: ru.Type, Zone: corefile.CanonicalName(ru.ZoneName), EndpointID: ru.EndpointId}
		for _, f := range ru.ForwardIps {
			addr, err := netip.ParseAddr(f.Ip)
			if err != nil {
				return resolverRulePage{}, fmt.Errorf("%s: rule %s forwards to %q, not an IP address", actionDescribeResolverRules, ru.Id, f.Ip)
			}
			port := f.Port
			if port == 0 {
				port = 53
			}
			rule.Forward = append(rule.Forward, netip.AddrPortFrom(addr.Unmap(), uint16(port)))
		}
		for _, v := range ru.BindVpcs {
			rule.VPCs = append(rule.VPCs, ZoneVPC{VPCID: v.VpcId, Region: v.RegionId})
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
}

// parseASN reads an AS number the API answers as a string; 0 when it is
// not one.
func parseASN(s string) uint32 {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// callErr turns an SDK error into an *APIError or a transport error
// without secrets: SDK errors print the request URL, whose query holds the
// signature and, with STS credentials, the security token.
func (a *sdkAPI) callErr(ctx context.Context, action string, err error) error {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return &APIError{Action: action, Code: se.ErrorCode(), Message: se.Message(), RequestID: se.RequestId(), HTTPStatus: se.HttpStatus()}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", action, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %s %s: %w", action, ue.Op, hostOnly(ue.URL), transportCause(ue.Err))
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) {
		if o := ce.OriginError(); o != nil && errors.As(o, &ue) {
			return fmt.Errorf("%s: %s %s: %w", action, ue.Op, hostOnly(ue.URL), transportCause(ue.Err))
		}
		return fmt.Errorf("%s: %s", action, ce.ErrorCode())
	}
	return fmt.Errorf("%s: request failed: %s", action, firstLine(err.Error()))
}

func (a *sdkAPI) clientErr(action string, err error) error {
	return fmt.Errorf("%s: make SDK client: %s", action, firstLine(err.Error()))
}

// hostOnly keeps the scheme and host of a URL and drops the query.
func hostOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(request URL)"
	}
	return u.Scheme + "://" + u.Host + "/"
}

// transportCause keeps the cause of a transport error, which never holds
// the URL.
func transportCause(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
