package metrics

import (
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const rulesFile = "../../deploy/prometheus/rules.yaml"

// The shipped rules file loads as Prometheus loads it (strict YAML,
// every expression parsed, every template checked), every metric its
// expressions name is one the daemon exports (or Prometheus' own up),
// and every alert is documented in the README.
func TestRulesFile(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if len(errs) > 0 {
		return
	}

	// Every series the daemon can export, fed with a report, a BGP table
	// and DNS observations.
	m := New()
	m.ObserveReport(report(time.Now(), time.Second, []*pb.Result{result("k8s.a", pb.Status_FAIL, time.Millisecond)},
		source("kube", pb.SourceStatus_OK, time.Second)))
	m.ObserveValue(&bgp.Table{Taken: time.Now(), Peers: []bgp.PeerStatus{{Address: netip.MustParseAddr("192.0.2.1"), State: "ACTIVE",
		Families: []bgp.FamilyStatus{{Family: "ipv4-unicast"}}}}})
	m.ObserveValue(&dnsprobe.Observations{Outcomes: map[dnsprobe.Query]*dnsprobe.Outcome{{Server: "192.0.2.53:53"}: {Kind: dnsprobe.Answered}}})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{"up": true}
	for _, f := range fams {
		exported[f.GetName()] = true
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, alertsSection, _ := strings.Cut(string(readme), "\n### Alerts\n")
	alertsSection, _, _ = strings.Cut(alertsSection, "\n## ")

	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("%s: recording rule %q: the file holds alerts only", rulesFile, r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !exported[vs.Name] {
					t.Errorf("%s: metric %q is not exported by the daemon", r.Alert, vs.Name)
				}
				return nil
			})
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a severity label and summary and description annotations", r.Alert)
			}
			if !strings.Contains(alertsSection, "`"+r.Alert+"`") {
				t.Errorf("%s is not in the README's Alerts section", r.Alert)
			}
		}
	}
	for _, want := range []string{"VnodediagCheckFailing", "VnodediagSourceDown", "VnodediagBGPSessionDown", "VnodediagDown", "VnodediagAbsent"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}
