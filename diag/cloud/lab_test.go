package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestMain checks, after every test of the package, the actions the lab
// servers saw: each must be a read (Describe*, List*, Get*), and the set
// must be exactly the actions of deploy/cloud/ram-policy.json, so that the
// shipped policy is both least-privilege and complete.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkActions(cloudlab.Served(), flag.Lookup("test.run").Value.String() == ""); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: read-only / RAM policy check:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var readVerb = regexp.MustCompile(`^(Describe|List|Get)[A-Z]`)

// checkActions fails on any action that is not a read, and compares the
// actions sent with the policy: an action sent but not in the policy is
// always an error; a policy action never sent is one only when the whole
// suite ran.
func checkActions(calls []cloudlab.Call, whole bool) error {
	var errs []string
	sent := map[string]bool{}
	for _, c := range calls {
		if !readVerb.MatchString(c.Action) {
			errs = append(errs, fmt.Sprintf("%s:%s is not a read", c.Product, c.Action))
		}
		sent[c.Product+":"+c.Action] = true
	}
	policy, err := policyActions()
	if err != nil {
		return err
	}
	for a := range sent {
		if !policy[a] {
			errs = append(errs, fmt.Sprintf("%s is sent but not in deploy/cloud/ram-policy.json", a))
		}
	}
	if whole {
		for a := range policy {
			if !sent[a] {
				errs = append(errs, fmt.Sprintf("%s is in deploy/cloud/ram-policy.json but never sent (not least privilege)", a))
			}
		}
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func policyActions() (map[string]bool, error) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "cloud", "ram-policy.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   []string
			Resource any
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("ram-policy.json: %w", err)
	}
	if doc.Version != "1" {
		return nil, fmt.Errorf("ram-policy.json: Version %q, want \"1\"", doc.Version)
	}
	out := map[string]bool{}
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			return nil, fmt.Errorf("ram-policy.json: statement with Effect %q", s.Effect)
		}
		for _, a := range s.Action {
			if !readVerb.MatchString(a[strings.Index(a, ":")+1:]) {
				return nil, fmt.Errorf("ram-policy.json: %s is not a read action", a)
			}
			out[a] = true
		}
	}
	return out, nil
}

// TestCheckActionsCatchesWrites attacks the read-only check: a write, an
// action missing from the policy, and a policy action never used are all
// reported.
func TestCheckActionsCatchesWrites(t *testing.T) {
	err := checkActions([]cloudlab.Call{{Product: "vpc", Action: "CreateRouteEntry"}, {Product: "ecs", Action: "DescribeInstances"}}, true)
	if err == nil || !containsAll(err.Error(), "vpc:CreateRouteEntry is not a read", "vpc:CreateRouteEntry is sent but not in", "vpc:DescribeRouteEntryList is in deploy/cloud/ram-policy.json but never sent") {
		t.Fatalf("got %v", err)
	}
}

type results []*pb.Result

func (rs results) with(st pb.Status, sub string) *pb.Result {
	for _, r := range rs {
		if r.Status == st && strings.Contains(r.Summary, sub) {
			return r
		}
	}
	return nil
}

func (rs results) String() string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %s %s", r.Status, r.Summary)
	}
	return b.String()
}

func expect(t *testing.T, rs []*pb.Result, st pb.Status, sub string) *pb.Result {
	t.Helper()
	r := results(rs).with(st, sub)
	if r == nil {
		t.Errorf("no %s result with %q in:%s", st, sub, results(rs))
	}
	return r
}

func expectCount(t *testing.T, rs []*pb.Result, want map[pb.Status]int) {
	t.Helper()
	got := map[pb.Status]int{}
	for _, r := range rs {
		got[r.Status]++
	}
	for st, n := range want {
		if got[st] != n {
			t.Errorf("%d %s results, want %d:%s", got[st], st, n, results(rs))
		}
	}
}

// TestDemoThroughSDK reads the demo account through the real SDK (signed
// requests, the lab's verification) and evaluates the three checks: each
// finds its deliberate fault, and nothing else.
func TestDemoThroughSDK(t *testing.T) {
	l := startDemoLab(t)
	s := l.mustGather(t)
	if len(s.Errors) != 0 || len(s.InstanceErrs) != 0 {
		t.Fatalf("errors: %v %v", s.Errors, s.InstanceErrs)
	}
	if s.VPCID != cloudlab.DemoVPC || !strings.Contains(s.VPCFrom, "discovered") || s.VPC == nil || s.VPC.CIDR != "192.168.0.0/16" {
		t.Errorf("VPC %s (%s) %+v", s.VPCID, s.VPCFrom, s.VPC)
	}
	if len(s.Instances) != 3 || len(s.VSwitches) != 4 || len(s.Tables) != 2 || s.Tables[0].Type != "System" {
		t.Errorf("snapshot: %d instances, %d vSwitches, %d tables", len(s.Instances), len(s.VSwitches), len(s.Tables))
	}
	if !strings.Contains(s.Credential, "environment variables") || strings.Contains(s.Describe(), l.srv.Key().ID) {
		t.Errorf("credential %q / describe %q", s.Credential, s.Describe())
	}

	ecs := evalECSInstances(s, l.nodes)
	expect(t, ecs, pb.Status_FAIL, "node ecs-2: instance i-uf6a1b2c3d4e5f6g7h8i: InternalIP 192.168.0.12 is not the instance's primary private IP 192.168.1.12")
	expect(t, ecs, pb.Status_WARN, "node ecs-bad-2: instance i-uf6cmf0kgbs9o4ex1v2q: providerID has no region; the instance is in cn-shanghai")
	expectCount(t, ecs, map[pb.Status]int{pb.Status_FAIL: 1, pb.Status_WARN: 1, pb.Status_ERROR: 0})

	pr := evalPodRoutes(s, l.nodes)
	f := expect(t, pr, pb.Status_FAIL, "route table vtb-uf6nodesb000001 (custom, vSwitches of ecs-2)")
	if f != nil && !containsAll(f.Summary, "172.22.1.0/24 (node ecs-2)", "172.22.2.0/24 (node ecs-bad-2)", "1 of them present in another route table") {
		t.Errorf("custom table failure: %s", f.Summary)
	}
	if f != nil && !containsAll(f.Remediation, `routeTableIDs: "vtb-uf6hybrid7demo01,vtb-uf6nodesb000001"`, "aliyun vpc CreateRouteEntry --RegionId cn-shanghai --RouteTableId vtb-uf6nodesb000001 --DestinationCidrBlock 172.22.1.0/24 --NextHopType Instance --NextHopId i-uf6a1b2c3d4e5f6g7h8i") {
		t.Errorf("custom table fix: %s", f.Remediation)
	}
	expect(t, pr, pb.Status_FAIL, "route table vtb-uf6hybrid7demo01 (system, vSwitches of ecs-1, ecs-bad-2)")
	expect(t, pr, pb.Status_WARN, "1 stale pod route(s) for no current node: 172.22.9.0/24 -> i-uf6deadb33f0000node")
	expectCount(t, pr, map[pb.Status]int{pb.Status_FAIL: 2, pb.Status_WARN: 1, pb.Status_ERROR: 0})

	op := evalOnPremRoutes(s, l.nodes)
	expect(t, op, pb.Status_FAIL, "on-prem CIDR 172.21.2.0/24 (node dc-3) is not routed toward the leased line: in vtb-uf6hybrid7demo01, vtb-uf6nodesb000001 its longest match is 0.0.0.0/0 (Custom) -> NatGateway ngw-uf6internet00001")
	expect(t, op, pb.Status_FAIL, "on-prem CIDR 100.100.8.0/24 (node dc-4)")
	expect(t, op, pb.Status_PASS, "3 on-prem CIDR(s) route toward the leased line")
	expectCount(t, op, map[pb.Status]int{pb.Status_FAIL: 2, pb.Status_PASS: 1, pb.Status_ERROR: 0})
}

// TestPaging reads lists longer than a page of every API: 250 instances
// (three DescribeInstances batches), 120 vSwitches (three pages of 50),
// 260 entries per table (three NextToken pages of 100); 55 VBRs and 56 BGP
// peers (two pages of 50), a VBR route table of 260 learned routes (three
// pages); 230 PrivateZone zones (three pages of 100); a security group of
// 1,500 rules (two NextToken pages of 1,000).
func TestPaging(t *testing.T) {
	d, spec := cloudlab.Scale(cloudlab.ScaleSpec{Tables: 2, EntriesPerTable: 260, Instances: 250, VBREntries: 260, Zones: 230, GroupRules: 1500})
	vpc := d.VPCs[0]
	for i := 0; i < 118; i++ {
		d.AddVSwitch(vpc, fmt.Sprintf("vsw-bp1extra%08d", i), "cn-hangzhou-i", fmt.Sprintf("10.200.%d.0/24", i))
	}
	for i := 0; i < 54; i++ {
		v := d.AddVBR("cn-hangzhou", fmt.Sprintf("vbr-bp1extra%08d", i), "pc-bp1extra0000001", "10.254.254.1", "10.254.254.2")
		v.Peer(fmt.Sprintf("bgp-bp1extra%08d", i), "10.254.254.2", "65001", "45104")
	}
	l := startLab(t, d, spec.Region)
	l.cfg.VPCID = spec.VPCID
	for i := 0; i < 250; i++ {
		l.nodes = append(l.nodes, kubelab.ECSNode(fmt.Sprintf("n%03d", i), "cn-hangzhou."+cloudlab.ScaleInstance(i), cloudlab.ScalePodCIDR(i), d.Instances[i].PrivateIP))
	}
	s := l.mustGather(t)
	if len(s.Errors) != 0 || len(s.InstanceErrs) != 0 || len(s.ResourceErrs) != 0 {
		t.Fatalf("errors: %v %v %v", s.Errors, s.InstanceErrs, s.ResourceErrs)
	}
	entries := 0
	for _, tb := range s.Tables {
		entries += len(tb.Entries)
	}
	// system entries: 120 vSwitch CIDRs + 100.64.0.0/10 per table
	if len(s.Instances) != 250 || len(s.VSwitches) != 120 || len(s.Tables) != 2 || entries != 2*(260-3+121) {
		t.Errorf("%d instances, %d vSwitches, %d tables, %d entries", len(s.Instances), len(s.VSwitches), len(s.Tables), entries)
	}
	tables := 0
	for _, v := range s.VBRs {
		if v.Table != nil {
			tables++
		}
	}
	if len(s.VBRs) != 55 || tables != maxVBRTables || s.VBRs[0].Table == nil || len(s.VBRs[0].Table.Entries) != 260 || len(s.BGPPeers) != 56 ||
		len(s.Zones) != 230 || len(s.Rules) != 23 || len(s.SecurityGroups) != 1 || len(s.SecurityGroups["sg-bp1scale00000001"].Rules) != 1500 {
		t.Errorf("%d VBRs (%d tables read), %d peers, %d zones, %d rules, groups %v", len(s.VBRs), tables, len(s.BGPPeers), len(s.Zones), len(s.Rules), len(s.SecurityGroups))
	}
	count := map[string]int{}
	for _, c := range l.srv.Calls() {
		count[c.Action]++
	}
	// 250 IDs: 3 batches; 120 vSwitches: 3 pages; 378 entries a VPC table:
	// 4 pages each; 20 VBR tables read (1 + 19), the first of 260 entries
	// (3 pages), the rest empty (1 page each).
	want := map[string]int{"DescribeInstances": 3, "DescribeVSwitches": 3, "DescribeVpcs": 1, "DescribeRouteTableList": 1 + maxVBRTables,
		"DescribeRouteEntryList": 8 + 3 + maxVBRTables - 1, "DescribeVirtualBorderRouters": 2, "DescribeBgpPeers": 2, "DescribeBgpNetworks": 1,
		"DescribeZones": 3, "DescribeResolverRules": 1, "DescribeResolverEndpoints": 1, "DescribeSecurityGroups": 1, "DescribeSecurityGroupAttribute": 2}
	total := 0
	for a, n := range want {
		total += n
		if count[a] != n {
			t.Errorf("%s sent %d times, want %d (%v)", a, count[a], n, count)
		}
	}
	if s.Calls != total {
		t.Errorf("snapshot counts %d calls, want %d", s.Calls, total)
	}
}

// TestThrottlingIsRetried: throttled calls (every documented code) are
// retried with backoff and the snapshot is complete.
func TestThrottlingIsRetried(t *testing.T) {
	l := startDemoLab(t)
	l.srv.SetFault("DescribeInstances", cloudlab.Fault{Throttle: 2, ThrottleCode: "Throttling.User"})
	l.srv.SetFault("DescribeRouteEntryList", cloudlab.Fault{Throttle: 2, ThrottleCode: "ServiceUnavailable"})
	l.srv.SetFault("DescribeVSwitches", cloudlab.Fault{Throttle: 1, ThrottleCode: "Throttling"})
	s := l.mustGather(t)
	if len(s.Errors) != 0 || len(s.InstanceErrs) != 0 {
		t.Fatalf("errors after retries: %v %v", s.Errors, s.InstanceErrs)
	}
	for _, tb := range s.Tables {
		if tb.EntriesErr != nil {
			t.Errorf("table %s: %v", tb.ID, tb.EntriesErr)
		}
	}
	throttled := 0
	for _, c := range l.srv.Calls() {
		if strings.HasPrefix(c.Code, "Throttling") || c.Code == "ServiceUnavailable" {
			throttled++
		}
	}
	if throttled != 5 {
		t.Errorf("%d throttled answers, want 5", throttled)
	}
	if !strings.Contains(l.logs.String(), "cloud api throttled, retrying") {
		t.Errorf("retries not logged")
	}
}

// TestThrottledUntilTheDeadline: a server that throttles for ever costs
// the deadline, not more; the part says it was throttled.
func TestThrottledUntilTheDeadline(t *testing.T) {
	l := startDemoLab(t)
	l.cfg.VPCID = cloudlab.DemoVPC
	l.srv.SetFault("DescribeRouteTableList", cloudlab.Fault{Throttle: -1})
	start := time.Now()
	s, err := l.gather(t, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("gather took %s with a 3s deadline", time.Since(start))
	}
	e := s.Errors[PartTables]
	if e == nil || !strings.Contains(e.Error(), "Throttling.User") || e.Permission {
		t.Fatalf("route tables error %v", e)
	}
	pr := evalPodRoutes(s, l.nodes)
	expect(t, pr, pb.Status_ERROR, "could not read the route tables")
	// The instances were read: their check still runs.
	expect(t, evalECSInstances(s, l.nodes), pb.Status_FAIL, "node ecs-2")
}

// TestPermissionErrorFailsOnlyItsChecks: DescribeRouteEntryList denied
// makes the route checks ERROR, naming the action and the statement to
// add; cloud.ecs-instances still runs.
func TestPermissionErrorFailsOnlyItsChecks(t *testing.T) {
	for _, code := range []string{"Forbidden.RAM", "NoPermission", "Forbidden"} {
		t.Run(code, func(t *testing.T) {
			l := startDemoLab(t)
			l.srv.SetFault("DescribeRouteEntryList", cloudlab.Fault{Deny: code})
			s := l.mustGather(t)
			for _, tb := range s.Tables {
				if tb.EntriesErr == nil || !tb.EntriesErr.Permission || tb.EntriesErr.Action != "vpc:DescribeRouteEntryList" {
					t.Fatalf("table %s: %+v", tb.ID, tb.EntriesErr)
				}
			}
			for _, rs := range [][]*pb.Result{evalPodRoutes(s, l.nodes), evalOnPremRoutes(s, l.nodes)} {
				r := expect(t, rs, pb.Status_ERROR, "entries could not be read")
				if r != nil && !containsAll(r.Remediation, `{"Effect": "Allow", "Action": ["vpc:DescribeRouteEntryList"], "Resource": "*"}`, "deploy/cloud/ram-policy.json") {
					t.Errorf("remediation %q", r.Remediation)
				}
				if r != nil && !strings.Contains(r.Summary, code) {
					t.Errorf("summary lacks the code: %s", r.Summary)
				}
			}
			ecs := evalECSInstances(s, l.nodes)
			expect(t, ecs, pb.Status_FAIL, "node ecs-2")
			expectCount(t, ecs, map[pb.Status]int{pb.Status_ERROR: 0})
		})
	}
}

// TestEmptyListForMissingPermission: DescribeInstances answers a caller
// without the permission with an empty list (documented). The source must
// not read that as "no such instance": the DryRun tells them apart, and
// cloud.ecs-instances ERRORs naming ecs:DescribeInstances, per node.
func TestEmptyListForMissingPermission(t *testing.T) {
	l := startDemoLab(t)
	l.cfg.VPCID = cloudlab.DemoVPC
	l.srv.SetFault("DescribeInstances", cloudlab.Fault{Deny: "Forbidden.RAM", DenyAsEmpty: true})
	s := l.mustGather(t)
	if len(s.Instances) != 0 || len(s.InstanceErrs) != 3 {
		t.Fatalf("instances %d, errors %d", len(s.Instances), len(s.InstanceErrs))
	}
	ecs := evalECSInstances(s, l.nodes)
	expectCount(t, ecs, map[pb.Status]int{pb.Status_ERROR: 3, pb.Status_FAIL: 0})
	r := expect(t, ecs, pb.Status_ERROR, "node ecs-1: instance i-uf6f5lbqvn1l8dfnbzj1 could not be looked up: DescribeInstances answered an empty list")
	if r != nil && !strings.Contains(r.Remediation, `"Action": ["ecs:DescribeInstances"]`) {
		t.Errorf("remediation %q", r.Remediation)
	}
	dry := 0
	for _, c := range l.srv.Calls() {
		if c.Action == "DescribeInstances" && c.Params["DryRun"] == "true" {
			dry++
		}
	}
	if dry != 1 {
		t.Errorf("%d DryRun calls, want 1", dry)
	}
	// The routes need the instances' vSwitches: an ERROR naming the nodes.
	expect(t, evalPodRoutes(s, l.nodes), pb.Status_ERROR, "the instances of 3 ECS node(s) could not be read")
	// On-prem routes fall back to every vSwitch table and still run.
	expect(t, evalOnPremRoutes(s, l.nodes), pb.Status_FAIL, "172.21.2.0/24")
}

// TestHiddenByPolicyCondition: a policy that limits DescribeInstances by
// resource hides an instance silently, and the DryRun passes. The VPC
// route to the instance shows it exists: ERROR, not a false FAIL.
func TestHiddenByPolicyCondition(t *testing.T) {
	l := startDemoLab(t)
	l.srv.SetFault("DescribeInstances", cloudlab.Fault{Hide: []string{cloudlab.DemoECS1}})
	s := l.mustGather(t)
	ecs := evalECSInstances(s, l.nodes)
	r := expect(t, ecs, pb.Status_ERROR, "node ecs-1: instance i-uf6f5lbqvn1l8dfnbzj1 is not visible to this credential, yet the VPC routes to it")
	if r != nil && !strings.Contains(r.Remediation, "without a Condition") {
		t.Errorf("remediation %q", r.Remediation)
	}
}

// TestMissingInstanceAndWrongRegion: an instance that does not exist
// FAILs (after the DryRun confirmed the permission); one the providerID
// places in another region is found in the configured region and FAILs
// saying where it is.
func TestMissingInstanceAndWrongRegion(t *testing.T) {
	l := startDemoLab(t)
	l.cfg.VPCID = cloudlab.DemoVPC
	l.nodes = []*corev1.Node{
		kubelab.ECSNode("gone", "cn-shanghai.i-uf6nosuchinstance01", "172.22.5.0/24", "192.168.0.50"),
		kubelab.ECSNode("moved", "cn-beijing."+cloudlab.DemoECS1, "172.22.0.0/24", "192.168.0.11"),
	}
	s := l.mustGather(t)
	ecs := evalECSInstances(s, l.nodes)
	r := expect(t, ecs, pb.Status_FAIL, "node gone: instance i-uf6nosuchinstance01 does not exist in region cn-shanghai")
	if r != nil && !strings.Contains(r.Evidence[1].Observed, "DryRun confirmed") {
		t.Errorf("evidence %v", r.Evidence)
	}
	r = expect(t, ecs, pb.Status_FAIL, "node moved: instance i-uf6f5lbqvn1l8dfnbzj1: the instance is in region cn-shanghai, not cn-beijing")
	if r != nil && !strings.Contains(r.Remediation, "--provider-id to cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1") {
		t.Errorf("remediation %q", r.Remediation)
	}
}

// TestTwoVPCs: nodes whose instances sit in two VPCs make discovery an
// error naming both; the instances are still judged.
func TestTwoVPCs(t *testing.T) {
	d, spec := cloudlab.Demo()
	other := d.AddVPC(cloudlab.DemoRegion, "vpc-uf6otherteam00001", "172.30.0.0/16")
	d.AddInstance(d.AddVSwitch(other, "vsw-uf6other00000001", "cn-shanghai-m", "172.30.1.0/24"), "i-uf6otherinstance01", "172.30.1.5")
	l := startLab(t, d, spec.Region)
	l.nodes = append(hybridNodes(), kubelab.ECSNode("ecs-other", "cn-shanghai.i-uf6otherinstance01", "172.22.7.0/24", "172.30.1.5"))
	s := l.mustGather(t)
	e := s.Errors[PartVPC]
	if e == nil || !containsAll(e.Error(), "2 VPCs", "vpc-uf6hybrid7demo01 (ecs-1, ecs-2, ecs-bad-2)", "vpc-uf6otherteam00001 (ecs-other)", "set cloud.vpcId") {
		t.Fatalf("VPC error %v", e)
	}
	expect(t, evalPodRoutes(s, l.nodes), pb.Status_ERROR, "2 VPCs")
	ecs := evalECSInstances(s, l.nodes)
	expect(t, ecs, pb.Status_ERROR, "the cluster's VPC is unknown")
	expect(t, ecs, pb.Status_FAIL, "node ecs-2")
}

// TestHungServer: an endpoint that accepts and never answers costs the
// request timeout (inside the source deadline), and leaves no goroutine
// and no connection behind.
func TestHungServer(t *testing.T) {
	l := startDemoLab(t)
	l.cfg.VPCID = cloudlab.DemoVPC
	l.cfg.RequestTimeout = diag.Duration(time.Second)
	l.srv.SetFault("DescribeRouteEntryList", cloudlab.Fault{Hang: true})
	l.srv.SetFault("DescribeInstances", cloudlab.Fault{Hang: true})
	l.srv.SetFault("DescribeBgpPeers", cloudlab.Fault{Hang: true})
	l.srv.SetFault("DescribeResolverRules", cloudlab.Fault{Hang: true})
	runtime.GC()
	before := runtime.NumGoroutine()
	start := time.Now()
	s, err := l.gather(t, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("gather took %s", d)
	}
	for _, tb := range s.Tables {
		if tb.EntriesErr == nil || !strings.Contains(tb.EntriesErr.Error(), "request timeout 1s") {
			t.Errorf("table %s: %v", tb.ID, tb.EntriesErr)
		}
	}
	if len(s.InstanceErrs) != 3 {
		t.Errorf("instance errors: %v", s.InstanceErrs)
	}
	for _, p := range []Part{PartBGPPeers, PartRules} {
		if e := s.Errors[p]; e == nil || !strings.Contains(e.Error(), "request timeout 1s") {
			t.Errorf("%s: %v", p, e)
		}
	}
	// Both ends must let go: no handler still waiting, no open connection,
	// no goroutine of ours left.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (l.srv.Inflight() != 0 || l.srv.OpenConns() != 0 || runtime.NumGoroutine() > before+2) {
		time.Sleep(50 * time.Millisecond)
	}
	if l.srv.Inflight() != 0 || l.srv.OpenConns() != 0 {
		t.Errorf("server side: %d requests in flight, %d connections open", l.srv.Inflight(), l.srv.OpenConns())
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestUnreachableEndpoint: nothing listens; every part fails with the
// endpoint named, and the source itself does not fail.
func TestUnreachableEndpoint(t *testing.T) {
	l := startDemoLab(t)
	l.cfg.VPCID = cloudlab.DemoVPC
	l.cfg.Endpoints.VPC = "http://127.0.0.1:1"
	s := l.mustGather(t)
	e := s.Errors[PartTables]
	if e == nil || !strings.Contains(e.Error(), "http://127.0.0.1:1/") || strings.Contains(e.Error(), "Signature") {
		t.Fatalf("tables error: %v", e)
	}
	if len(s.Instances) != 3 {
		t.Errorf("instances: %d", len(s.Instances))
	}
}

func TestGatherNeedsNodes(t *testing.T) {
	p, err := NewProvider(&Config{RegionID: "cn-shanghai"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Gather(context.Background()); !errors.Is(err, diag.ErrNotConfigured) || !strings.Contains(err.Error(), "the Kubernetes source was not gathered") {
		t.Fatalf("got %v", err)
	}
}

// TestQPSLimit: with the source's limit at the server's flow-control
// limit, the server never has to throttle it.
func TestQPSLimit(t *testing.T) {
	d, spec := cloudlab.Scale(cloudlab.ScaleSpec{Tables: 3, EntriesPerTable: 400, Instances: 10})
	l := startLab(t, d, spec.Region)
	l.cfg.VPCID, l.cfg.QPS = spec.VPCID, 10
	for i := 0; i < 10; i++ {
		l.nodes = append(l.nodes, kubelab.ECSNode(fmt.Sprintf("n%d", i), "cn-hangzhou."+cloudlab.ScaleInstance(i), cloudlab.ScalePodCIDR(i), d.Instances[i].PrivateIP))
	}
	for _, a := range []string{"DescribeInstances", "DescribeVpcs", "DescribeVSwitches", "DescribeRouteTableList", "DescribeRouteEntryList",
		"DescribeSecurityGroups", "DescribeSecurityGroupAttribute", "DescribeVirtualBorderRouters", "DescribeBgpPeers", "DescribeBgpNetworks",
		"DescribeZones", "DescribeZoneInfo", "DescribeResolverEndpoints", "DescribeResolverRules"} {
		l.srv.SetRateLimit(a, 10)
	}
	s := l.mustGather(t)
	if len(s.Errors) != 0 {
		t.Fatalf("errors %v", s.Errors)
	}
	for _, c := range l.srv.Calls() {
		if c.Code != "" {
			t.Errorf("%s answered %s", c.Action, c.Code)
		}
	}
	if n := len(l.srv.Calls()); n != s.Calls {
		t.Errorf("the lab served %d calls, the snapshot counts %d", n, s.Calls)
	}
}
