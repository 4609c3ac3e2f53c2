package dnsprobe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/dnsprobe/corefile"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/dnslab"
)

// These tests run real unbound and dnsmasq in network namespaces (root only;
// skipped elsewhere).

func gatherLab(t testing.TB, c *dnsprobe.Config) *dnsprobe.Observations {
	t.Helper()
	p, err := dnsprobe.NewProvider(c, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obs := v.(*dnsprobe.Observations)
	// The section must finish within one query deadline (+10%), whatever
	// the resolvers do.
	if limit := obs.Timeout + obs.Timeout/10; obs.Wall > limit {
		t.Errorf("gather took %s, more than the query deadline %s + 10%%", obs.Wall, obs.Timeout)
	}
	return obs
}

func dump(t testing.TB, rs []*pb.Result) {
	t.Helper()
	for _, r := range rs {
		t.Logf("%s %s", r.Status, r.Summary)
		for _, e := range r.Evidence {
			t.Logf("    %s: expected %s, observed %s", e.Label, e.Expected, e.Observed)
		}
		if r.Remediation != "" {
			t.Logf("    fix: %s", r.Remediation)
		}
	}
}

// want asserts that exactly one result has status st and that its summary,
// remediation and objects contain every fragment.
func want(t testing.TB, rs []*pb.Result, st pb.Status, fragments ...string) *pb.Result {
	t.Helper()
	dump(t, rs)
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	if r.Status != st {
		t.Fatalf("status %s, want %s: %s", r.Status, st, r.Summary)
	}
	text := r.Summary + "\n" + r.Remediation
	for _, o := range r.Objects {
		text += "\n" + o.Kind + " " + o.Name
	}
	for _, e := range r.Evidence {
		text += "\n" + e.Observed
	}
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("result does not mention %q:\n%s", f, text)
		}
	}
	return r
}

func TestLabBothDirections(t *testing.T) {
	lab := dnslab.StartT(t, dnslab.Options{})
	obs := gatherLab(t, lab.Config())
	for _, r := range dnsprobe.EvalResolverReachable(obs) {
		if r.Status != pb.Status_PASS {
			t.Errorf("resolver-reachable %s: %s", r.Status, r.Summary)
		}
	}
	want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_PASS, "api.svc.cloud.internal", "10.255.2.20")
	want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_PASS, "db.corp.example", "10.255.1.10")
}

func TestLabForwardStanzaMissing(t *testing.T) {
	t.Run("unbound without forward-zone: SERVFAIL", func(t *testing.T) {
		lab := dnslab.StartT(t, dnslab.Options{NoOnPremForward: true})
		obs := gatherLab(t, lab.Config())
		want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_FAIL,
			"onprem-unbound", "SERVFAIL", "no working forwarder", "forward-zone:\n    name: \"svc.cloud.internal.\"", "forward-addr: "+strings.Replace(lab.CloudAddr, ":", "@", 1))
		want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_PASS)
	})
	t.Run("dnsmasq without server=: REFUSED", func(t *testing.T) {
		lab := dnslab.StartT(t, dnslab.Options{NoCloudForward: true})
		obs := gatherLab(t, lab.Config())
		want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_FAIL,
			"cloud-dnsmasq", "REFUSED", "forwarding rule", "corp.example", lab.OnPremAddr)
		want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_PASS)
	})
}

func TestLabForwardTargetDead(t *testing.T) {
	t.Run("cloud dnsmasq dead behind unbound", func(t *testing.T) {
		lab := dnslab.StartT(t, dnslab.Options{})
		lab.StopCloud()
		obs := gatherLab(t, lab.Config())
		r := want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_FAIL,
			"onprem-unbound", lab.CloudAddr, "connection refused")
		found := false
		for _, o := range r.Objects {
			found = found || (o.Kind == "DNSServer" && o.Name == lab.CloudAddr)
		}
		if !found {
			t.Errorf("the dead hop %s is not among the objects %v", lab.CloudAddr, r.Objects)
		}
	})
	t.Run("on-prem unbound dead behind dnsmasq: silence", func(t *testing.T) {
		lab := dnslab.StartT(t, dnslab.Options{})
		lab.StopOnPrem()
		obs := gatherLab(t, lab.Config())
		// dnsmasq answers nothing for the on-prem name: the prober waits
		// out its deadline, sees dnsmasq is alive, and blames the hop.
		via := obs.Get(lab.CloudAddr, "db.corp.example", dns.TypeA)
		if via.Kind != dnsprobe.Timeout {
			t.Errorf("via dnsmasq: %s, want a timeout (silent forwarder)", via.Summary())
		}
		want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_FAIL,
			"cloud-dnsmasq", "is up but silent", "hop cloud-dnsmasq", lab.OnPremAddr, "connection refused")
	})
}

func TestLabWrongAnswerAndNXDOMAIN(t *testing.T) {
	lab := dnslab.StartT(t, dnslab.Options{WrongPrivateA: "10.9.9.9"})
	c := lab.Config()
	obs := gatherLab(t, c)
	want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_FAIL, "10.9.9.9", "expected 10.255.2.20")

	c = lab.Config()
	c.OnPremNames = []dnsprobe.Name{{Name: "nope.corp.example"}}
	obs = gatherLab(t, c)
	want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_FAIL, "NXDOMAIN", "does not exist in the on-prem zone corp.example")
}

func TestLabTCPOnlyAnswer(t *testing.T) {
	lab := dnslab.StartT(t, dnslab.Options{})
	c := lab.Config()
	c.UDPSize = 512
	c.OnPremNames = []dnsprobe.Name{{Name: dnslab.BigName}}
	obs := gatherLab(t, c)
	// Directly at unbound, and through dnsmasq, which relays the truncation.
	for _, server := range []string{lab.OnPremAddr, lab.CloudAddr} {
		o := obs.Get(server, dnslab.BigName, dns.TypeA)
		if o.Kind != dnsprobe.Answered || !o.TCP || len(o.Values()) != dnslab.BigCount {
			t.Errorf("@%s: %s, tcp %v, %d values; want %d A records over TCP", server, o.Kind, o.TCP, len(o.Values()), dnslab.BigCount)
		}
	}
	want(t, dnsprobe.EvalOnPremFromCloud(obs), pb.Status_PASS, "over TCP after truncation")
}

func TestLabResolverDead(t *testing.T) {
	lab := dnslab.StartT(t, dnslab.Options{})
	lab.StopOnPrem()
	obs := gatherLab(t, lab.Config())
	rs := dnsprobe.EvalResolverReachable(obs)
	dump(t, rs)
	if rs[0].Status != pb.Status_FAIL || !strings.Contains(rs[0].Summary, "connection refused") {
		t.Errorf("on-prem resolver: %s %s, want FAIL connection refused", rs[0].Status, rs[0].Summary)
	}
	if rs[1].Status != pb.Status_PASS {
		t.Errorf("cloud resolver: %s %s, want PASS", rs[1].Status, rs[1].Summary)
	}
	want(t, dnsprobe.EvalPrivateZoneFromOnPrem(obs), pb.Status_FAIL, "is down", "connection refused")
}

func TestLabThroughRunner(t *testing.T) {
	lab := dnslab.StartT(t, dnslab.Options{})
	lab.StopOnPrem() // dnsmasq goes silent for the on-prem zone
	p, err := dnsprobe.NewProvider(lab.Config(), diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	r := &diag.Runner{Providers: []diag.Provider{p}}
	rep := r.Run(context.Background(), dnsprobe.Checks())
	byID := map[string][]pb.Status{}
	for _, res := range rep.Results {
		byID[res.CheckId] = append(byID[res.CheckId], res.Status)
	}
	t.Log(byID)
	if s := byID[dnsprobe.CheckOnPremFromCloud]; len(s) != 1 || s[0] != pb.Status_FAIL {
		t.Errorf("%s: %v, want one FAIL", dnsprobe.CheckOnPremFromCloud, s)
	}
	// No kube source in this run: the CoreDNS checks SKIP.
	for _, id := range []string{dnsprobe.CheckClusterDomainOverlap, dnsprobe.CheckCoreDNSForward} {
		if s := byID[id]; len(s) != 1 || s[0] != pb.Status_SKIP {
			t.Errorf("%s: %v, want SKIP", id, s)
		}
	}
}

func TestLabDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dnslab.StartT(t, dnslab.Options{}).Close() // skips where the lab cannot run
	c, stop, err := dnslab.Demo()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	obs := gatherLab(t, c)
	rs := dnsprobe.EvalPrivateZoneFromOnPrem(obs)
	dump(t, rs)
	var fails []string
	for _, r := range rs {
		if r.Status == pb.Status_FAIL {
			fails = append(fails, r.Summary)
		}
	}
	if len(fails) != 1 || !strings.Contains(fails[0], "pg.data.cloud.internal") {
		t.Errorf("demo: want exactly the one deliberate FAIL for pg.data.cloud.internal, got %q", fails)
	}
	for _, check := range [](func(*dnsprobe.Observations) []*pb.Result){dnsprobe.EvalResolverReachable, dnsprobe.EvalOnPremFromCloud} {
		for _, r := range check(obs) {
			if r.Status != pb.Status_PASS {
				t.Errorf("demo: %s %s", r.Status, r.Summary)
			}
		}
	}
	// The demo's CoreDNS ConfigMap forwards every zone where expected.
	cc := dnsprobe.Canonical(c)
	cf, err := corefile.Parse(dnslab.CoreDNSConfigMap(c).Data["Corefile"])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(dnsprobe.EvalCoreDNSForward(&cc, cf, nil), dnsprobe.EvalClusterDomainOverlap(&cc, cf)...) {
		if r.Status != pb.Status_PASS {
			t.Errorf("demo CoreDNS: %s %s", r.Status, r.Summary)
		}
	}
}
