package cloudlab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/pvtz"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
)

// TestDocumentedSignature reproduces the worked example of the signature
// documentation (ECS DescribeRegions, secret "testsecret").
func TestDocumentedSignature(t *testing.T) {
	params := map[string]string{
		"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
		"SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
		"Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
	}
	sts := StringToSign("GET", params)
	want := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1" +
		"%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0" +
		"%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if sts != want {
		t.Fatalf("string to sign\n got %s\nwant %s", sts, want)
	}
	if got := Sign(sts, "testsecret"); got != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=" {
		t.Fatalf("signature %s", got)
	}
	for in, out := range map[string]string{"a b": "a%20b", "a+b": "a%2Bb", "*": "%2A", "~-_.": "~-_.", "é": "%C3%A9", "/": "%2F"} {
		if got := PercentEncode(in); got != out {
			t.Errorf("PercentEncode(%q) = %q, want %q", in, got, out)
		}
	}
}

func startDemo(t *testing.T) *Server {
	t.Helper()
	d, _ := Demo()
	s, err := Start(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func sdkConfig() *sdk.Config {
	c := sdk.NewConfig()
	c.Timeout = 5 * time.Second
	return c
}

func hostOf(endpoint string) string { u, _ := url.Parse(endpoint); return u.Host }

// TestSDKReadsEveryField calls each action with the real SDK and checks
// that every key the lab answers is a field of the SDK's response struct
// (the SDK's structs are generated from the API metadata), and that the
// values arrive.
func TestSDKReadsEveryField(t *testing.T) {
	s := startDemo(t)
	k := s.Key()
	cred := credentials.NewStaticAKCredentialsProvider(k.ID, k.Secret)

	ec, err := ecs.NewClientWithOptions(DemoRegion, sdkConfig(), cred)
	if err != nil {
		t.Fatal(err)
	}
	ir := ecs.CreateDescribeInstancesRequest()
	ir.Scheme, ir.Domain = "http", hostOf(s.Endpoint("ecs"))
	ir.InstanceIds = fmt.Sprintf("[%q,%q]", DemoECS1, DemoECS2)
	ir.MaxResults = requests.NewInteger(1)
	resp, err := ec.DescribeInstances(ir)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Instances.Instance) != 1 || resp.NextToken == "" {
		t.Fatalf("page 1: %d instances, token %q", len(resp.Instances.Instance), resp.NextToken)
	}
	in := resp.Instances.Instance[0]
	if in.InstanceId != DemoECS2 || in.VpcAttributes.PrivateIpAddress.IpAddress[0] != "192.168.1.12" || in.VpcAttributes.VpcId != DemoVPC ||
		in.NetworkInterfaces.NetworkInterface[0].PrimaryIpAddress != "192.168.1.12" || in.Status != "Running" {
		t.Errorf("instance decoded as %+v", in)
	}
	checkKeys(t, resp.GetHttpContentString(), reflect.TypeOf(*resp))
	ir2 := ecs.CreateDescribeInstancesRequest()
	ir2.Scheme, ir2.Domain = "http", hostOf(s.Endpoint("ecs"))
	ir2.InstanceIds = ir.InstanceIds
	ir2.MaxResults = requests.NewInteger(1)
	ir2.NextToken = resp.NextToken
	resp2, err := ec.DescribeInstances(ir2)
	if err != nil || len(resp2.Instances.Instance) != 1 || resp2.NextToken != "" || resp2.Instances.Instance[0].InstanceId != DemoECS1 {
		t.Fatalf("page 2: %v %+v", err, resp2)
	}

	vc, err := vpc.NewClientWithOptions(DemoRegion, sdkConfig(), cred)
	if err != nil {
		t.Fatal(err)
	}
	vh := hostOf(s.Endpoint("vpc"))
	vr := vpc.CreateDescribeVpcsRequest()
	vr.Scheme, vr.Domain, vr.VpcId = "http", vh, DemoVPC
	vresp, err := vc.DescribeVpcs(vr)
	if err != nil || vresp.TotalCount != 1 || vresp.Vpcs.Vpc[0].CidrBlock != "192.168.0.0/16" {
		t.Fatalf("DescribeVpcs: %v %+v", err, vresp)
	}
	checkKeys(t, vresp.GetHttpContentString(), reflect.TypeOf(*vresp))

	sr := vpc.CreateDescribeVSwitchesRequest()
	sr.Scheme, sr.Domain, sr.VpcId = "http", vh, DemoVPC
	sresp, err := vc.DescribeVSwitches(sr)
	if err != nil || sresp.TotalCount != 4 {
		t.Fatalf("DescribeVSwitches: %v %+v", err, sresp)
	}
	tables := map[string]string{}
	for _, v := range sresp.VSwitches.VSwitch {
		tables[v.VSwitchId] = v.RouteTable.RouteTableId + "/" + v.RouteTable.RouteTableType
	}
	if tables["vsw-uf6nodesb0000001"] != DemoCustomRT+"/Custom" || tables["vsw-uf6nodesa0000001"] != "vtb-uf6hybrid7demo01/System" {
		t.Errorf("vSwitch route tables %v", tables)
	}
	checkKeys(t, sresp.GetHttpContentString(), reflect.TypeOf(*sresp))

	tr := vpc.CreateDescribeRouteTableListRequest()
	tr.Scheme, tr.Domain, tr.VpcId = "http", vh, DemoVPC
	tresp, err := vc.DescribeRouteTableList(tr)
	if err != nil || tresp.TotalCount != 2 || !tresp.Success {
		t.Fatalf("DescribeRouteTableList: %v %+v", err, tresp)
	}
	checkKeys(t, tresp.GetHttpContentString(), reflect.TypeOf(*tresp))

	er := vpc.CreateDescribeRouteEntryListRequest()
	er.Scheme, er.Domain, er.RouteTableId = "http", vh, DemoCustomRT
	er.MaxResult = requests.NewInteger(100)
	eresp, err := vc.DescribeRouteEntryList(er)
	if err != nil {
		t.Fatal(err)
	}
	var sawVBR bool
	for _, e := range eresp.RouteEntrys.RouteEntry {
		for _, h := range e.NextHops.NextHop {
			if h.NextHopType == "RouterInterface" && h.NextHopOppsiteType == "VirtualBorderRouter" && h.NextHopOppsiteInstanceId == DemoVBR {
				sawVBR = true
			}
		}
	}
	if !sawVBR || len(eresp.RouteEntrys.RouteEntry) < 8 {
		t.Errorf("route entries: %d, VBR hop seen %v", len(eresp.RouteEntrys.RouteEntry), sawVBR)
	}
	checkKeys(t, eresp.GetHttpContentString(), reflect.TypeOf(*eresp))

	if got := ActionsServed(s.Calls()); strings.Join(got, " ") != "ecs:DescribeInstances vpc:DescribeRouteEntryList vpc:DescribeRouteTableList vpc:DescribeVSwitches vpc:DescribeVpcs" {
		t.Errorf("served %v", got)
	}
}

// checkKeys fails for every key of the JSON body that the SDK struct has
// no field for (a misspelt or wrongly nested field would be silently
// dropped by the SDK's decoder).
func checkKeys(t *testing.T, body string, typ reflect.Type) {
	t.Helper()
	for _, b := range unknownKeys(t, body, typ) {
		t.Errorf("lab field %s is not in the SDK's %s", b, typ.Name())
	}
}

func unknownKeys(t *testing.T, body string, typ reflect.Type) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	var bad []string
	walkKeys(v, typ, typ.Name(), &bad)
	sort.Strings(bad)
	return bad
}

// TestCheckKeysCatchesMisspelling: the field check finds a misspelt or
// misplaced key (so that its silence above means something).
func TestCheckKeysCatchesMisspelling(t *testing.T) {
	body := `{"RequestId":"x","RouteEntrys":{"RouteEntry":[{"DestinationCidrBlock":"10.0.0.0/8","NextHops":{"NextHop":[{"NextHopTyp":"Instance"}]}}]},"RouteEntries":{}}`
	got := unknownKeys(t, body, reflect.TypeOf(vpc.DescribeRouteEntryListResponse{}))
	want := []string{"DescribeRouteEntryListResponse.RouteEntries", "DescribeRouteEntryListResponse.RouteEntrys.RouteEntry[].NextHops.NextHop[].NextHopTyp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func walkKeys(v any, typ reflect.Type, path string, bad *[]string) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		if typ.Kind() != reflect.Struct {
			*bad = append(*bad, path+" (object where the SDK has "+typ.Kind().String()+")")
			return
		}
		for k, sub := range x {
			f, ok := fieldByJSON(typ, k)
			if !ok {
				*bad = append(*bad, path+"."+k)
				continue
			}
			walkKeys(sub, f, path+"."+k, bad)
		}
	case []any:
		for _, e := range x {
			walkKeys(e, typ, path+"[]", bad)
		}
	}
}

func fieldByJSON(typ reflect.Type, name string) (reflect.Type, bool) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if sub, ok := fieldByJSON(ft, name); ok {
					return sub, true
				}
			}
			continue
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// rawCall sends a hand-signed request, to attack the verification.
func rawCall(t *testing.T, s *Server, product string, params map[string]string, secret string, mutate func(url.Values)) (int, map[string]any) {
	t.Helper()
	p := map[string]string{
		"Format": "JSON", "Version": "2014-05-26", "AccessKeyId": s.Key().ID, "SignatureMethod": "HMAC-SHA1",
		"SignatureVersion": "1.0", "SignatureNonce": randomHex(8), "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"),
	}
	for k, v := range params {
		p[k] = v
	}
	q := url.Values{}
	for k, v := range p {
		q.Set(k, v)
	}
	q.Set("Signature", Sign(StringToSign("GET", p), secret))
	if mutate != nil {
		mutate(q)
	}
	resp, err := http.Get(s.Endpoint(product) + "/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return resp.StatusCode, out
}

// TestGatewayChecks attacks the request verification: every forged,
// replayed or stale request is refused with the documented code and HTTP
// status, and the error body has the documented fields.
func TestGatewayChecks(t *testing.T) {
	s := startDemo(t)
	k := s.Key()
	ok := map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion}
	if st, body := rawCall(t, s, "ecs", ok, k.Secret, nil); st != 200 || body["RequestId"] == "" || body["TotalCount"] != 3.0 {
		t.Fatalf("signed request: %d %v", st, body)
	}
	nonce := "fixed-nonce-" + randomHex(4)
	cases := []struct {
		name    string
		product string
		params  map[string]string
		secret  string
		mutate  func(url.Values)
		status  int
		code    string
	}{
		{"wrong secret", "ecs", ok, "not-the-secret", nil, 400, "SignatureDoesNotMatch"},
		{"tampered parameter", "ecs", ok, k.Secret, func(q url.Values) { q.Set("RegionId", "cn-beijing") }, 400, "SignatureDoesNotMatch"},
		{"unknown key", "ecs", ok, k.Secret, func(q url.Values) { q.Set("AccessKeyId", "LTAI5tNoSuchKey") }, 404, "InvalidAccessKeyId.NotFound"},
		{"stale timestamp", "ecs", map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "Timestamp": time.Now().Add(-20 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")}, k.Secret, nil, 400, "InvalidTimeStamp.Expired"},
		{"bad timestamp", "ecs", map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "Timestamp": "yesterday"}, k.Secret, nil, 400, "InvalidTimeStamp.Format"},
		{"ECS version on VPC", "vpc", map[string]string{"Action": "DescribeVpcs", "RegionId": DemoRegion}, k.Secret, nil, 400, "InvalidVersion"},
		{"unknown action", "ecs", map[string]string{"Action": "RunInstances", "RegionId": DemoRegion}, k.Secret, nil, 404, "InvalidAction.NotFound"},
		{"XML", "ecs", map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "Format": "XML"}, k.Secret, nil, 400, "InvalidParameter"},
		{"no nonce", "ecs", ok, k.Secret, func(q url.Values) { q.Del("SignatureNonce") }, 400, "MissingParameter"},
		{"first use of a nonce", "ecs", map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "SignatureNonce": nonce}, k.Secret, nil, 200, ""},
		{"replayed nonce", "ecs", map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "SignatureNonce": nonce}, k.Secret, nil, 400, "SignatureNonceUsed"},
		{"page size above the maximum", "vpc", map[string]string{"Action": "DescribeVSwitches", "Version": "2016-04-28", "RegionId": DemoRegion, "PageSize": "51"}, k.Secret, nil, 400, "InvalidParameter"},
		{"route table in another region", "vpc", map[string]string{"Action": "DescribeRouteEntryList", "Version": "2016-04-28", "RegionId": "cn-beijing", "RouteTableId": DemoCustomRT}, k.Secret, nil, 404, "InvalidRouteTableId.NotFound"},
	}
	for _, c := range cases {
		st, body := rawCall(t, s, c.product, c.params, c.secret, c.mutate)
		if st != c.status || (c.code != "" && body["Code"] != c.code) {
			t.Errorf("%s: %d %v, want %d %s", c.name, st, body["Code"], c.status, c.code)
			continue
		}
		if c.code != "" {
			for _, f := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
				if body[f] == nil || body[f] == "" {
					t.Errorf("%s: error body lacks %s: %v", c.name, f, body)
				}
			}
		}
	}
}

// TestFaults: throttling, denial (as an error, and as the documented empty
// list that only DryRun reveals), hidden resources, and a flow-control
// limit.
func TestFaults(t *testing.T) {
	s := startDemo(t)
	k := s.Key()
	list := map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion}
	dry := map[string]string{"Action": "DescribeInstances", "RegionId": DemoRegion, "DryRun": "true"}
	s.SetFault("DescribeInstances", Fault{Throttle: 1, ThrottleCode: "ServiceUnavailable"})
	if st, b := rawCall(t, s, "ecs", list, k.Secret, nil); st != 503 || b["Code"] != "ServiceUnavailable" {
		t.Errorf("throttled: %d %v", st, b)
	}
	if st, _ := rawCall(t, s, "ecs", list, k.Secret, nil); st != 200 {
		t.Errorf("after the throttled one: %d", st)
	}
	s.SetFault("DescribeInstances", Fault{Deny: "Forbidden.RAM", DenyAsEmpty: true})
	if st, b := rawCall(t, s, "ecs", list, k.Secret, nil); st != 200 || b["TotalCount"] != 0.0 {
		t.Errorf("denied as empty: %d %v", st, b)
	}
	st, b := rawCall(t, s, "ecs", dry, k.Secret, nil)
	if st != 403 || b["Code"] != "Forbidden.RAM" || b["AccessDeniedDetail"].(map[string]any)["AuthAction"] != "ecs:DescribeInstances" {
		t.Errorf("DryRun when denied: %d %v", st, b)
	}
	s.SetFault("DescribeInstances", Fault{Hide: []string{DemoECS2}})
	if st, b := rawCall(t, s, "ecs", list, k.Secret, nil); st != 200 || b["TotalCount"] != 2.0 {
		t.Errorf("hidden: %d %v", st, b)
	}
	if st, b := rawCall(t, s, "ecs", dry, k.Secret, nil); st != 400 || b["Code"] != "DryRunOperation" {
		t.Errorf("DryRun when allowed: %d %v", st, b)
	}
	s.SetFault("DescribeInstances", Fault{})
	s.SetRateLimit("DescribeInstances", 1)
	codes := map[string]int{}
	for range 3 {
		_, b := rawCall(t, s, "ecs", list, k.Secret, nil)
		codes[fmt.Sprint(b["Code"])]++
	}
	if codes["Throttling.User"] == 0 {
		t.Errorf("flow control: %v", codes)
	}
}

// TestSDKReadsLeasedLinePvtzAndGroups is TestSDKReadsEveryField for the
// VBR, BGP, PrivateZone and security-group actions: every key the lab
// answers is a field of the SDK's response struct, and the values arrive.
func TestSDKReadsLeasedLinePvtzAndGroups(t *testing.T) {
	s := startDemo(t)
	k := s.Key()
	cred := credentials.NewStaticAKCredentialsProvider(k.ID, k.Secret)
	vc, err := vpc.NewClientWithOptions(DemoRegion, sdkConfig(), cred)
	if err != nil {
		t.Fatal(err)
	}
	vh := hostOf(s.Endpoint("vpc"))

	br := vpc.CreateDescribeVirtualBorderRoutersRequest()
	br.Scheme, br.Domain = "http", vh
	bresp, err := vc.DescribeVirtualBorderRouters(br)
	if err != nil || bresp.TotalCount != 1 || bresp.VirtualBorderRouterSet.VirtualBorderRouterType[0].VbrId != DemoVBR ||
		bresp.VirtualBorderRouterSet.VirtualBorderRouterType[0].PeerGatewayIp != "10.254.255.2" {
		t.Fatalf("DescribeVirtualBorderRouters: %v %+v", err, bresp)
	}
	checkKeys(t, bresp.GetHttpContentString(), reflect.TypeOf(*bresp))
	filtered := vpc.CreateDescribeVirtualBorderRoutersRequest()
	filtered.Scheme, filtered.Domain = "http", vh
	filtered.Filter = &[]vpc.DescribeVirtualBorderRoutersFilter{{Key: "VbrId", Value: &[]string{"vbr-uf6nosuchvbr0001"}}}
	if fresp, err := vc.DescribeVirtualBorderRouters(filtered); err != nil || fresp.TotalCount != 0 {
		t.Errorf("filtered by VbrId: %v %+v", err, fresp)
	}

	pr := vpc.CreateDescribeBgpPeersRequest()
	pr.Scheme, pr.Domain, pr.RouterId = "http", vh, DemoVBR
	presp, err := vc.DescribeBgpPeers(pr)
	if err != nil || presp.TotalCount != 1 || presp.BgpPeers.BgpPeer[0].PeerAsn != "65001" || presp.BgpPeers.BgpPeer[0].BgpStatus != "Established" {
		t.Fatalf("DescribeBgpPeers: %v %+v", err, presp)
	}
	checkKeys(t, presp.GetHttpContentString(), reflect.TypeOf(*presp))

	nr := vpc.CreateDescribeBgpNetworksRequest()
	nr.Scheme, nr.Domain = "http", vh
	nresp, err := vc.DescribeBgpNetworks(nr)
	if err != nil || nresp.TotalCount != 2 || nresp.BgpNetworks.BgpNetwork[0].DstCidrBlock != "192.168.0.0/16" || nresp.BgpNetworks.BgpNetwork[0].VpcId != DemoVPC {
		t.Fatalf("DescribeBgpNetworks: %v %+v", err, nresp)
	}
	checkKeys(t, nresp.GetHttpContentString(), reflect.TypeOf(*nresp))

	tr := vpc.CreateDescribeRouteTableListRequest()
	tr.Scheme, tr.Domain, tr.RouterType, tr.RouterId = "http", vh, "VBR", DemoVBR
	tresp, err := vc.DescribeRouteTableList(tr)
	if err != nil || tresp.TotalCount != 1 || tresp.RouterTableList.RouterTableListType[0].RouterType != "VBR" {
		t.Fatalf("DescribeRouteTableList of the VBR: %v %+v", err, tresp)
	}
	er := vpc.CreateDescribeRouteEntryListRequest()
	er.Scheme, er.Domain, er.RouteTableId = "http", vh, tresp.RouterTableList.RouterTableListType[0].RouteTableId
	eresp, err := vc.DescribeRouteEntryList(er)
	if err != nil || len(eresp.RouteEntrys.RouteEntry) != 4 {
		t.Fatalf("VBR route entries: %v %+v", err, eresp)
	}

	pc, err := pvtz.NewClientWithOptions(DemoRegion, sdkConfig(), cred)
	if err != nil {
		t.Fatal(err)
	}
	ph := hostOf(s.Endpoint("pvtz"))
	zr := pvtz.CreateDescribeZonesRequest()
	zr.Scheme, zr.Domain, zr.QueryVpcId, zr.QueryRegionId = "http", ph, DemoVPC, DemoRegion
	zresp, err := pc.DescribeZones(zr)
	if err != nil || zresp.TotalItems != 2 || zresp.TotalPages != 1 || zresp.Zones.Zone[0].ZoneName != "svc.cloud.internal" {
		t.Fatalf("DescribeZones: %v %+v", err, zresp)
	}
	checkKeys(t, zresp.GetHttpContentString(), reflect.TypeOf(*zresp))
	ir := pvtz.CreateDescribeZoneInfoRequest()
	ir.Scheme, ir.Domain, ir.ZoneId = "http", ph, "pz-uf6datacloud00001"
	iresp, err := pc.DescribeZoneInfo(ir)
	if err != nil || len(iresp.BindVpcs.Vpc) != 1 || iresp.BindVpcs.Vpc[0].VpcId != DemoOtherVPC {
		t.Fatalf("DescribeZoneInfo: %v %+v", err, iresp)
	}
	checkKeys(t, iresp.GetHttpContentString(), reflect.TypeOf(*iresp))
	epr := pvtz.CreateDescribeResolverEndpointsRequest()
	epr.Scheme, epr.Domain = "http", ph
	epresp, err := pc.DescribeResolverEndpoints(epr)
	if err != nil || epresp.TotalItems != 2 || len(epresp.Endpoints[0].IpConfigs) != 2 || epresp.Endpoints[0].IpConfigs[0].Ip != "192.168.0.200" {
		t.Fatalf("DescribeResolverEndpoints: %v %+v", err, epresp)
	}
	checkKeys(t, epresp.GetHttpContentString(), reflect.TypeOf(*epresp))
	rr := pvtz.CreateDescribeResolverRulesRequest()
	rr.Scheme, rr.Domain, rr.NeedDetailAttributes = "http", ph, requests.NewBoolean(true)
	rresp, err := pc.DescribeResolverRules(rr)
	if err != nil || rresp.TotalItems != 1 || rresp.Rules[0].ForwardIps[0].Ip != "10.10.0.53" || rresp.Rules[0].ForwardIps[0].Port != 53 || rresp.Rules[0].BindVpcs[0].VpcId != DemoVPC {
		t.Fatalf("DescribeResolverRules: %v %+v", err, rresp)
	}
	checkKeys(t, rresp.GetHttpContentString(), reflect.TypeOf(*rresp))

	ec, err := ecs.NewClientWithOptions(DemoRegion, sdkConfig(), cred)
	if err != nil {
		t.Fatal(err)
	}
	eh := hostOf(s.Endpoint("ecs"))
	gr := ecs.CreateDescribeSecurityGroupsRequest()
	gr.Scheme, gr.Domain = "http", eh
	gr.SecurityGroupIds = fmt.Sprintf("[%q,%q]", DemoNodeSG, DemoECISG)
	gr.MaxResults = requests.NewInteger(1)
	gresp, err := ec.DescribeSecurityGroups(gr)
	if err != nil || len(gresp.SecurityGroups.SecurityGroup) != 1 || gresp.NextToken == "" || gresp.SecurityGroups.SecurityGroup[0].SecurityGroupId != DemoNodeSG {
		t.Fatalf("DescribeSecurityGroups: %v %+v", err, gresp)
	}
	checkKeys(t, gresp.GetHttpContentString(), reflect.TypeOf(*gresp))
	ar := ecs.CreateDescribeSecurityGroupAttributeRequest()
	ar.Scheme, ar.Domain, ar.SecurityGroupId, ar.Direction = "http", eh, DemoNodeSG, "ingress"
	aresp, err := ec.DescribeSecurityGroupAttribute(ar)
	if err != nil || aresp.InnerAccessPolicy != "Accept" || len(aresp.Permissions.Permission) != 5 || aresp.Permissions.Permission[4].Policy != "Drop" ||
		aresp.Permissions.Permission[4].Priority != "1" || aresp.Permissions.Permission[2].SourceGroupId != DemoECISG {
		t.Fatalf("DescribeSecurityGroupAttribute: %v %+v", err, aresp)
	}
	checkKeys(t, aresp.GetHttpContentString(), reflect.TypeOf(*aresp))
	ar.SecurityGroupId = "sg-uf6nosuchgroup001"
	if _, err := ec.DescribeSecurityGroupAttribute(ar); err == nil || !strings.Contains(err.Error(), "InvalidSecurityGroupId.NotFound") {
		t.Errorf("unknown group: %v", err)
	}
}
