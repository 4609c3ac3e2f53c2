package cloud

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/bgplab"
	"github.com/vnodediag/vnodediag/test/cloudlab"
)

// TestPathTableWithBIRD joins real BGP data with cloud data: the BGP
// observer peers with BIRD (the on-prem router of the BGP lab, which
// advertises every on-prem pod CIDR but dc-3's) and with FRR (standing in
// for the VBR, advertising only the VPC CIDR), in network namespaces; the
// cloud half is the demo account through the real SDK. The table's router
// column is what the observer received. Needs root, bird2 and frr.
func TestPathTableWithBIRD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	tbl := bgplab.DemoTableT(t, ctx, bgplab.DemoOptions{
		PodCIDRs:       []string{"172.21.0.0/24", "172.21.1.0/24", "100.100.8.0/24", "172.21.2.0/24"},
		OnPremNetworks: []string{"10.10.0.0/16"},
	})

	l := startDemoLab(t)
	_, spec := cloudlab.Demo()
	_, in := gatherAll(t, l.provider(t), demoKube(l, spec), nil, bgp.Source.With(tbl))
	rs := diagtest.Run(t, ctx, Checks(), CheckVBRBGP, in)
	r := diagtest.ExpectOne(t, rs, pb.Status_FAIL, "prefixes do not cross the leased line")
	if r == nil {
		return
	}
	table := r.Evidence[0].Observed
	for _, want := range []string{
		"the on-prem router (as the BGP observer received it)",
	} {
		if !strings.Contains(r.Evidence[0].Label, want) {
			t.Errorf("label %q lacks %q", r.Evidence[0].Label, want)
		}
	}
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n")[2:] {
		f := strings.Fields(line)
		if len(f) > 0 {
			rows[f[0]] = line
		}
	}
	expect := map[string][]string{
		"172.21.0.0/24":  {"from onprem-bird", "learned by BGP", "ok"},
		"172.21.2.0/24":  {"MISSING", "LOST at on-prem router"},
		"10.10.0.0/16":   {"from onprem-bird", "static", "ok"},
		"192.168.0.0/16": {"from vbr-frr", "advertised", "ok"},
		"172.22.0.0/24":  {"MISSING", "advertised (172.22.0.0/16)", "LOST at on-prem router"},
		"172.22.1.0/24":  {"MISSING in vtb-uf6nodesb000001", "LOST at VPC route tables"},
	}
	for prefix, subs := range expect {
		if !containsAll(rows[prefix], subs...) {
			t.Errorf("%s: row %q lacks %v\n%s", prefix, rows[prefix], subs, table)
		}
	}
	if !strings.Contains(diagtest.Dump(rs), "172.22.0.0/24 (ecs-1): want at every hop got lost at the on-prem router: MISSING; the VBR advertises it, so the on-prem router's import policy") {
		t.Errorf("%s", diagtest.Dump(rs))
	}
}
