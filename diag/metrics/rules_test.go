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

	exported := map[string]bool{"up": true}
	for name := range everyMetric(t) {
		exported[name] = true
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

// everyMetric is the name of every metric family the daemon exports, its
// metrics fed with a report, a BGP table, DNS observations, a source's
// health and a reload.
func everyMetric(t *testing.T) map[string]bool {
	t.Helper()
	m := New()
	m.ObserveReport(report(time.Now(), time.Second, []*pb.Result{result("k8s.a", pb.Status_FAIL, time.Millisecond)},
		source("kube", pb.SourceStatus_OK, time.Second)))
	m.ObserveValue(&bgp.Table{Taken: time.Now(), Peers: []bgp.PeerStatus{{Address: netip.MustParseAddr("192.0.2.1"), State: "ACTIVE",
		Families: []bgp.FamilyStatus{{Family: "ipv4-unicast"}}}}})
	m.ObserveValue(&dnsprobe.Observations{Outcomes: map[dnsprobe.Query]*dnsprobe.Outcome{{Server: "192.0.2.53:53"}: {Kind: dnsprobe.Answered}}})
	m.HealthChanged("dns", false, "i/o timeout")
	m.Reloaded(nil)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

// The README's metrics table names every vnodediag_ metric the daemon
// exports, and nothing it does not.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for l := range strings.Lines(string(readme)) {
		if name, ok := strings.CutPrefix(l, "| `vnodediag_"); ok {
			name, _, _ = strings.Cut(name, "`")
			documented["vnodediag_"+name] = true
		}
	}
	exported := everyMetric(t)
	for name := range exported {
		if strings.HasPrefix(name, "vnodediag_") && !documented[name] {
			t.Errorf("%s is exported but not in the README's metrics table", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("the README's metrics table names %s, which the daemon does not export", name)
		}
	}
}
