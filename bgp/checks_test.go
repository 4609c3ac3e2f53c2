package bgp_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func peer(state, lastErr string) bgp.PeerStatus {
	p := bgp.PeerStatus{Name: "r1", Address: netip.MustParseAddr("10.0.0.1"), ASN: 65001, State: state, LastError: lastErr,
		Families: []bgp.FamilyStatus{{Family: bgp.FamilyIPv4Unicast, EndOfRIB: true, Received: 2}}, MaxPrefixes: 100}
	if state == "ESTABLISHED" {
		p.Since = time.Now().Add(-time.Minute)
	}
	return p
}

func TestEvaluateSessions(t *testing.T) {
	cases := []struct {
		name   string
		peer   func() bgp.PeerStatus
		status pb.Status
		want   string // in summary or remediation
	}{
		{"up", func() bgp.PeerStatus { return peer("ESTABLISHED", "") }, pb.Status_PASS, "is Established"},
		{"refused", func() bgp.PeerStatus {
			return peer("ACTIVE", "connect: dial tcp 10.0.0.1:179: connect: connection refused")
		}, pb.Status_FAIL, "refused the TCP connection"},
		{"bad as", func() bgp.PeerStatus {
			return peer("IDLE", "NOTIFICATION sent to the router: as number mismatch expected 65001, received 65002")
		}, pb.Status_FAIL, "AS number mismatch"},
		{"bad as received", func() bgp.PeerStatus {
			return peer("ACTIVE", "NOTIFICATION received from the router: open message error(2) bad-peer-as(2)")
		}, pb.Status_FAIL, "AS number mismatch"},
		{"hold", func() bgp.PeerStatus { return peer("ACTIVE", "hold timer expired (no KEEPALIVE from the router)") }, pb.Status_FAIL, "KEEPALIVE"},
		{"silent", func() bgp.PeerStatus { return peer("ACTIVE", "") }, pb.Status_FAIL, "MD5"},
		{"flapped", func() bgp.PeerStatus {
			p := peer("ESTABLISHED", "session went down: hold-timer-expired")
			p.Flaps = 2
			return p
		}, pb.Status_WARN, "flapped 2 times"},
		{"no eor", func() bgp.PeerStatus { p := peer("ESTABLISHED", ""); p.Families[0].EndOfRIB = false; return p }, pb.Status_WARN, "no End-of-RIB"},
		{"max prefix", func() bgp.PeerStatus { p := peer("IDLE", ""); p.MaxPrefixExceeded = true; return p }, pb.Status_FAIL, "more than 100 prefixes"},
	}
	open := &bgp.Table{Peers: []bgp.PeerStatus{peer("ESTABLISHED", "")}, ExportPolicy: "ACCEPT"}
	if r := bgp.EvaluateSessions(open)[0]; r.Status != pb.Status_FAIL || !strings.Contains(r.Remediation, "advertise nothing") {
		t.Errorf("export ACCEPT: %v", r)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := &bgp.Table{Peers: []bgp.PeerStatus{tc.peer()}, LocalASN: 65010, ListenPort: 1179, Listener: "0.0.0.0:1179", ExportPolicy: "REJECT"}
			r := bgp.EvaluateSessions(tb)[0]
			if r.Status != tc.status || !strings.Contains(r.Summary+r.Remediation, tc.want) {
				t.Fatalf("got %s %q / %q; want %s containing %q", r.Status, r.Summary, r.Remediation, tc.status, tc.want)
			}
			if len(r.Objects) != 1 || r.Objects[0].Kind != "BGPPeer" {
				t.Fatalf("objects = %v", r.Objects)
			}
		})
	}
}

func tableWith(routes ...string) *bgp.Table {
	tb := &bgp.Table{Peers: []bgp.PeerStatus{peer("ESTABLISHED", "")}, CloudPrefixes: []netip.Prefix{cloudnet.CGNAT, netip.MustParsePrefix("192.168.0.0/16")},
		ServiceAddresses: []netip.Addr{netip.MustParseAddr("100.100.2.136"), netip.MustParseAddr("100.100.2.138")}}
	for _, r := range routes {
		tb.Routes = append(tb.Routes, bgp.Route{Prefix: netip.MustParsePrefix(r), Peer: "r1"})
	}
	return tb
}

func TestEvaluateCloudRoutes(t *testing.T) {
	cases := []struct {
		routes []string
		want   []pb.Status
		text   string
	}{
		{[]string{"100.64.0.0/10", "192.168.0.0/16"}, []pb.Status{pb.Status_PASS, pb.Status_PASS}, "100.64.0.0/10 from r1"},
		{[]string{"0.0.0.0/0"}, []pb.Status{pb.Status_PASS, pb.Status_PASS}, "0.0.0.0/0 from r1"},
		{[]string{"100.100.0.0/16", "192.168.0.0/17"}, []pb.Status{pb.Status_WARN, pb.Status_WARN}, "100.64.0.0/11"},
		{[]string{"100.64.0.0/11"}, []pb.Status{pb.Status_WARN, pb.Status_FAIL}, "affects 100.100.2.136, 100.100.2.138"},
		{nil, []pb.Status{pb.Status_FAIL, pb.Status_FAIL}, "not learned from any peer"},
	}
	for _, tc := range cases {
		res := bgp.EvaluateCloudRoutes(tableWith(tc.routes...))
		var got []pb.Status
		all := ""
		for _, r := range res {
			got = append(got, r.Status)
			all += r.Summary + "\n"
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || !strings.Contains(all, tc.text) {
			t.Errorf("routes %v: got %v\n%s want %v containing %q", tc.routes, got, all, tc.want, tc.text)
		}
	}
	down := tableWith("100.64.0.0/10")
	down.Peers[0].State = "ACTIVE"
	if r := bgp.EvaluateCloudRoutes(down); r[0].Status != pb.Status_ERROR {
		t.Errorf("no session: %v", r)
	}
}

func TestEvaluatePodCIDRs(t *testing.T) {
	ecs := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ecs-1"}, Spec: corev1.NodeSpec{ProviderID: "cn-shanghai.i-abcdefgh123", PodCIDR: "10.200.0.0/24"}}
	bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "op-0"}}
	cases := []struct {
		name   string
		routes []string
		nodes  []*corev1.Node
		want   pb.Status
		objs   string
	}{
		{"aggregate covers", []string{"172.23.0.0/16"}, []*corev1.Node{onPremNode("op-1", "172.23.0.0/26"), onPremNode("op-2", "172.23.1.0/26"), ecs}, pb.Status_PASS, ""},
		{"one missing", []string{"172.23.0.0/26"}, []*corev1.Node{onPremNode("op-1", "172.23.0.0/26"), onPremNode("op-2", "172.23.1.0/26")}, pb.Status_FAIL, "op-2"},
		{"partly", []string{"172.23.0.0/27"}, []*corev1.Node{onPremNode("op-1", "172.23.0.0/26")}, pb.Status_FAIL, "op-1"},
		{"only ecs and vnode", nil, []*corev1.Node{ecs}, pb.Status_SKIP, ""},
		{"no podCIDR", nil, []*corev1.Node{bare}, pb.Status_SKIP, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := bgp.EvaluatePodCIDRs(context.Background(), tableWith(tc.routes...), tc.nodes)[0]
			var objs []string
			for _, o := range r.Objects {
				objs = append(objs, o.Name)
			}
			if r.Status != tc.want || strings.Join(objs, ",") != tc.objs {
				t.Fatalf("got %s objects %v: %s", r.Status, objs, r.Summary)
			}
		})
	}
}

func TestChecksRunThroughRunner(t *testing.T) {
	r := &diag.Runner{}
	rep := r.Run(context.Background(), bgp.Checks())
	for _, res := range rep.Results {
		if res.Status != pb.Status_SKIP {
			t.Errorf("%s without sources: %s %s", res.CheckId, res.Status, res.Summary)
		}
	}
}

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", bgp.Checks()) }

// TestCloudRoutesLearnedECS: with the Kubernetes source in the run, every
// ECS node's podCIDR must be covered by a received route, and the ones
// that are not are named with their CIDR; without it, the prefixes alone.
func TestCloudRoutesLearnedECS(t *testing.T) {
	ecs := func(name, cidr string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{ProviderID: "cn-shanghai.i-" + name + "abcdefgh", PodCIDR: cidr, PodCIDRs: []string{cidr}}}
	}
	snap := &kube.Snapshot{Nodes: []*corev1.Node{ecs("ecs1", "172.22.0.0/24"), ecs("ecs2", "172.22.1.0/24"), ecs("ecs3", "172.22.2.0/24"), onPremNode("op-1", "172.21.0.0/24")}}
	ctx := context.Background()
	run := func(in *diag.Inputs) []*pb.Result {
		return diagtest.Run(t, ctx, bgp.Checks(), bgp.CheckCloudRoutesLearned, in)
	}
	tb := tableWith("100.64.0.0/10", "192.168.0.0/16", "172.22.0.0/24", "172.22.1.0/25")
	got := run(diag.NewInputs(bgp.Source.With(tb), kube.Source.With(snap)))
	if diagtest.StatusNames(got) != "PASS,PASS,FAIL" {
		t.Fatalf("got %s", diagtest.Dump(got))
	}
	r := got[2]
	if r.Summary != "2 of 3 ECS node podCIDRs are not learned on-prem: ecs2 172.22.1.0/24, ecs3 172.22.2.0/24" || len(r.Objects) != 2 ||
		r.Evidence[0].Observed != "partly: 172.22.1.128/25 uncovered" || r.Evidence[1].Observed != "no route" ||
		!strings.HasSuffix(r.Remediation, "Missing: 172.22.1.0/24, 172.22.2.0/24") {
		t.Errorf("got %s\n%s", diagtest.Dump([]*pb.Result{r}), r.Remediation)
	}
	if got := run(diag.NewInputs(bgp.Source.With(tableWith("100.64.0.0/10", "192.168.0.0/16", "172.22.0.0/16")), kube.Source.With(snap))); diagtest.StatusNames(got) != "PASS,PASS,PASS" ||
		got[2].Summary != "all 3 ECS node podCIDRs are covered by routes learned on-prem" {
		t.Errorf("aggregate: %s", diagtest.Dump(got))
	}
	if got := run(diag.NewInputs(bgp.Source.With(tb))); diagtest.StatusNames(got) != "PASS,PASS" {
		t.Errorf("without the Kubernetes source: %s", diagtest.Dump(got))
	}
	down := tableWith("100.64.0.0/10")
	down.Peers[0].State = "ACTIVE"
	if got := run(diag.NewInputs(bgp.Source.With(down), kube.Source.With(snap))); diagtest.StatusNames(got) != "ERROR" {
		t.Errorf("no session: %s", diagtest.Dump(got))
	}
}
