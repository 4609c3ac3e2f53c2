package render

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The HTML report is one file an on-call engineer can mail or attach to a
// ticket and open anywhere: the CSS and the SVG are inline, the page has no
// script, and its Content-Security-Policy forbids every fetch, so opening it
// neither reaches the network nor runs anything a report string carried in.
// Every string of the report goes through Escape (control characters and
// invalid UTF-8 shown as escapes) and then html/template's contextual
// escaping.

// A Hop is one stage of the path between on-prem and the ECI pods, drawn as
// a box (or, for the end-to-end probes, a bar under the boxes).
type Hop struct {
	ID    string // the SVG element's id is "hop-" + ID
	Title string
	// What the hop is made of, one short line under the title.
	Parts string
}

// Hops of the path, left (on-prem) to right (ECI), then the end-to-end bar.
var Hops = []Hop{
	{ID: "onprem", Title: "On-prem nodes & router", Parts: "nodes · host · router · DNS"},
	{ID: "line", Title: "Leased line / VBR", Parts: "BGP · prefixes hop by hop"},
	{ID: "vpc", Title: "VPC routes & PrivateZone", Parts: "route tables · ECS · zones"},
	{ID: "vnode", Title: "VNode / ECI pods", Parts: "VNodes · ECI · agents"},
	{ID: "path", Title: "End to end (TCP between on-prem and ECI pods)", Parts: "the agents' probes"},
}

// hopRules places every check on the hops it covers: the longest prefix
// that matches a check ID wins (a prefix ending in "." matches the IDs
// under it; one without matches that ID only). Every check of the
// catalog must match a rule (a test keeps it so), so a new check cannot
// be left off the drawing.
var hopRules = []struct {
	prefix string
	hops   []string
}{
	// The cluster's own configuration lives with the control plane
	// on-prem: podCIDRs, CNI, kube-proxy, versions, annotations.
	{"k8s.", []string{"onprem"}},
	// ECS nodes: their identity and the CCM's route in the VPC.
	{"k8s.providerid-format", []string{"vpc"}},
	{"k8s.node-network", []string{"vpc"}},
	{"host.", []string{"onprem"}},
	{"route.", []string{"onprem"}},
	// This host's route to 100.64.0.0/10 must leave through the leased line.
	{"route.cloud-services", []string{"onprem", "line"}},
	// The observer peers with the on-prem router; what it sees is the
	// route exchange over the leased line.
	{"bgp.", []string{"onprem", "line"}},
	{"bgp.cloud-routes-learned", []string{"line"}},
	{"cloud.", []string{"vpc"}},
	{"cloud.vbr-bgp", []string{"line"}},
	{"cloud.security-groups", []string{"vpc", "vnode"}},
	{"cloud.eci-vswitches", []string{"vnode"}},
	// Resolvers on both sides: on-prem forwarders and PrivateZone.
	{"dns.", []string{"onprem", "vpc"}},
	{"dns.coredns-forward", []string{"onprem"}},
	{"dns.onprem-from-cloud", []string{"vnode", "onprem"}},
	{"dns.resolver-reachable", []string{"onprem", "vpc", "vnode"}},
	{"vnode.", []string{"vnode"}},
	{"path.", []string{"path"}},
}

// HopsOf returns the IDs of the hops check ID covers, nil when no rule
// places it.
func HopsOf(id string) []string {
	best := -1
	for i, r := range hopRules {
		match := id == r.prefix || strings.HasSuffix(r.prefix, ".") && strings.HasPrefix(id, r.prefix)
		if match && (best < 0 || len(r.prefix) > len(hopRules[best].prefix)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return hopRules[best].hops
}

// HopColors are the fills of the hop boxes by the class HopClass gives.
var HopColors = map[string]string{
	"st-none":  "#ffffff",
	"st-skip":  "#eaecee",
	"st-pass":  "#d5f5e3",
	"st-warn":  "#fdebd0",
	"st-error": "#e8daef",
	"st-fail":  "#f8d7da",
}

// HopClass is the CSS class of a status ("st-fail"); "st-none" when no
// check covered the hop.
func HopClass(s pb.Status) string {
	if diag.Severity(s) == 0 {
		return "st-none"
	}
	return "st-" + strings.ToLower(s.String())
}

type htmlEvidence struct{ Label, Expected, Observed string }

type htmlResult struct {
	Anchor      string
	CheckID     string
	Status      string
	Class       string
	Summary     string
	Objects     []string
	Evidence    []htmlEvidence
	Remediation string
	Reference   string
	Duration    string
	Hops        []string
	sev         int
}

type htmlHop struct {
	Hop
	Class    string
	Status   string
	Counts   string
	Checks   int
	Findings []*htmlResult
	// Position of the box in the drawing.
	X, Y, W, H int
}

type htmlSource struct{ Name, State, Message, Duration string }

type htmlReport struct {
	Title    string
	Cluster  *pb.ClusterIdentity
	RunID    string
	Version  string
	Start    string
	Took     string
	Summary  *pb.Summary
	Total    int
	Boxes    []*htmlHop // the four stages, in path order
	Bar      *htmlHop   // end to end
	Hops     []*htmlHop // all hops with their findings, boxes then bar
	Unplaced []*htmlResult
	Results  []*htmlResult
	Sources  []htmlSource
	Links    []htmlLink
	Width    int
	Height   int
}

type htmlLink struct {
	X1, X2, Y int
	Label     []string // lines above the link
	LabelX    int
}

//go:embed html.tmpl
var htmlTemplateText string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"add":  func(a, b int) int { return a + b },
	"half": func(a int) int { return a / 2 },
	"hopColors": func() template.CSS {
		var b strings.Builder
		for _, c := range sortedKeys(HopColors) {
			fmt.Fprintf(&b, "rect.%s{fill:%s}\n", c, HopColors[c])
		}
		return template.CSS(b.String())
	},
}).Parse(htmlTemplateText))

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HTML writes the report as one self-contained HTML page: the path drawn
// as SVG with each hop coloured by the worst status of the checks that
// cover it, the findings (WARN, FAIL, ERROR) of each hop with evidence and
// fix, then the whole report: cluster, summary, sources and every result.
func HTML(w io.Writer, rep *pb.Report) error {
	v := htmlView(rep)
	var b strings.Builder
	if err := htmlTemplate.Execute(&b, v); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func htmlView(rep *pb.Report) *htmlReport {
	v := &htmlReport{RunID: Escape(rep.GetRunId()), Version: Escape(rep.GetVersion()), Summary: rep.GetSummary(),
		Total: len(rep.GetResults())}
	if v.Summary == nil {
		v.Summary = &pb.Summary{}
	}
	if c := rep.GetCluster(); c != nil {
		v.Cluster = &pb.ClusterIdentity{Server: Escape(c.Server), Context: Escape(c.Context), Version: Escape(c.Version), Uid: Escape(c.Uid)}
		if v.Cluster.Context == "" {
			v.Cluster.Context = "(in-cluster)"
		}
	}
	v.Title = "vnodediag report"
	if v.Cluster != nil {
		v.Title += ": " + v.Cluster.Context
	}
	if rep.GetStartTime() != nil {
		v.Start = rep.StartTime.AsTime().UTC().Format(time.RFC3339)
		if rep.GetEndTime() != nil {
			v.Took = rep.EndTime.AsTime().Sub(rep.StartTime.AsTime()).Round(time.Millisecond).String()
		}
	}
	for _, s := range rep.GetSources() {
		v.Sources = append(v.Sources, htmlSource{Name: Escape(s.Name),
			State:   strings.ToLower(strings.ReplaceAll(s.State.String(), "_", " ")),
			Message: Escape(s.Message), Duration: s.GetDuration().AsDuration().Round(time.Microsecond).String()})
	}

	byID := map[string]*htmlHop{}
	worst := map[string]pb.Status{}
	counts := map[string]map[pb.Status]int{}
	for _, h := range Hops {
		hv := &htmlHop{Hop: h}
		byID[h.ID] = hv
		counts[h.ID] = map[pb.Status]int{}
		v.Hops = append(v.Hops, hv)
	}
	for i, r := range rep.GetResults() {
		hr := &htmlResult{Anchor: fmt.Sprintf("r%d", i+1), CheckID: Escape(r.CheckId), Status: r.Status.String(),
			Class: HopClass(r.Status), sev: diag.Severity(r.Status), Summary: Escape(r.Summary), Remediation: Escape(r.Remediation),
			Reference: Escape(r.Reference), Duration: r.GetDuration().AsDuration().Round(time.Microsecond).String()}
		for _, o := range r.Objects {
			hr.Objects = append(hr.Objects, Escape(o.Kind+" "+strings.TrimPrefix(o.Namespace+"/"+o.Name, "/")))
		}
		for _, e := range r.Evidence {
			hr.Evidence = append(hr.Evidence, htmlEvidence{Label: Escape(e.Label), Expected: Escape(e.Expected), Observed: Escape(e.Observed)})
		}
		v.Results = append(v.Results, hr)
		hops := HopsOf(r.CheckId)
		finding := r.Status == pb.Status_WARN || r.Status == pb.Status_FAIL || r.Status == pb.Status_ERROR
		if len(hops) == 0 && finding {
			v.Unplaced = append(v.Unplaced, hr)
		}
		for _, id := range hops {
			hv := byID[id]
			hr.Hops = append(hr.Hops, hv.Title)
			counts[id][r.Status]++
			hv.Checks++
			if diag.Severity(r.Status) > diag.Severity(worst[id]) {
				worst[id] = r.Status
			}
			if finding {
				hv.Findings = append(hv.Findings, hr)
			}
		}
	}
	for _, hv := range v.Hops {
		st := worst[hv.ID]
		hv.Class = HopClass(st)
		hv.Status = "not checked"
		if diag.Severity(st) > 0 {
			hv.Status = st.String()
		}
		var parts []string
		for _, s := range []pb.Status{pb.Status_FAIL, pb.Status_ERROR, pb.Status_WARN, pb.Status_PASS, pb.Status_SKIP} {
			if n := counts[hv.ID][s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
		hv.Counts = strings.Join(parts, " · ")
		if hv.Counts == "" {
			hv.Counts = "no results"
		}
		// Findings worst first, then in report order (by check ID).
		sort.SliceStable(hv.Findings, func(i, j int) bool {
			return hv.Findings[i].sev > hv.Findings[j].sev
		})
	}
	layout(v)
	return v
}

// layout places the four stage boxes in a row, the links between them and
// the end-to-end bar under them: Hops is the four stages, then the bar.
func layout(v *htmlReport) {
	const (
		margin, boxW, boxH, gap, top = 20, 228, 120, 76, 40
	)
	x := margin
	for _, hv := range v.Hops[:4] {
		hv.X, hv.Y, hv.W, hv.H = x, top, boxW, boxH
		v.Boxes = append(v.Boxes, hv)
		x += boxW + gap
	}
	labels := [][]string{{"leased", "line"}, {"router", "interface"}, {"vSwitch", "ENI"}}
	for i := 0; i+1 < len(v.Boxes); i++ {
		a, b := v.Boxes[i], v.Boxes[i+1]
		v.Links = append(v.Links, htmlLink{X1: a.X + a.W, X2: b.X, Y: top + boxH/2, Label: labels[i], LabelX: a.X + a.W + gap/2})
	}
	bar := v.Hops[4]
	first, last := v.Boxes[0], v.Boxes[len(v.Boxes)-1]
	bar.X, bar.Y, bar.W, bar.H = first.X+first.W/2, top+boxH+40, last.X+last.W/2-(first.X+first.W/2), 44
	v.Bar = bar
	v.Width = x - gap + margin
	v.Height = bar.Y + bar.H + 20
}
