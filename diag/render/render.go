// Package render turns a report into the CLI's output formats: a table for
// people (80 columns, colour only on a terminal), JSON (protojson of the
// Report, the same message the gRPC API returns), YAML (the same document)
// JUnit XML for CI systems, and one self-contained HTML page with the path
// from on-prem to the ECI pods drawn (html.go).
package render

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/fatih/color"
	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Formats are the accepted values of -o.
var Formats = []string{"table", "json", "yaml", "junit", "html"}

// Options of the table renderer.
type Options struct {
	Color bool
	Width int // default 80
	// Verbose shows evidence of passing results too.
	Verbose bool
}

// Write renders rep in format to w. For JSON and YAML, strings of rep that
// are not valid UTF-8 are repaired in place first (see ValidUTF8); the
// table and JUnit show such bytes escaped.
func Write(w io.Writer, format string, rep *pb.Report, opt Options) error {
	if format == "json" || format == "yaml" {
		diag.ValidUTF8(rep)
	}
	switch format {
	case "table", "":
		return Table(w, rep, opt)
	case "json":
		b, err := JSON(rep)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "yaml":
		b, err := JSON(rep)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	case "junit":
		return JUnit(w, rep)
	case "html":
		return HTML(w, rep)
	}
	return fmt.Errorf("unknown output format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// JSON is protojson of the report, with every field present so that
// automation need not guess defaults. Control characters in strings are
// escaped (\u001b), C1 and DEL included: the data is exact, and nothing in
// it acts on a terminal.
func JSON(rep *pb.Report) ([]byte, error) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return EscapeJSONControls(b), nil
}

// colors of the statuses; the caller decides whether to colour at all
// (Options.Color), so they are forced on here.
var colors = func() map[pb.Status]*color.Color {
	m := map[pb.Status]*color.Color{
		pb.Status_PASS: color.New(color.FgGreen), pb.Status_WARN: color.New(color.FgYellow),
		pb.Status_FAIL: color.New(color.FgRed, color.Bold), pb.Status_ERROR: color.New(color.FgMagenta, color.Bold),
		pb.Status_SKIP: color.New(color.FgHiBlack),
	}
	for _, c := range m {
		c.EnableColor()
	}
	return m
}()

// Table writes one block per result: status, check ID and summary, then for
// anything not passing the objects, evidence and fix, wrapped to the width.
// Every string of the report is escaped (Escape); the only control
// sequences in the output are the renderer's own colours.
func Table(w io.Writer, rep *pb.Report, opt Options) error {
	width := opt.Width
	if width <= 0 {
		width = 80
	}
	const indent = "       "
	var b strings.Builder
	if c := rep.GetCluster(); c != nil {
		name := c.Context
		if name == "" {
			name = "(in-cluster)"
		}
		writeWrapped(&b, "", fmt.Sprintf("cluster %s: %s, Kubernetes %s", name, c.Server, c.Version), width)
		b.WriteString("\n")
	}
	groups := groupByCause(rep.GetResults())
	for i, r := range rep.GetResults() {
		st := fmt.Sprintf("%-5s", r.Status.String())
		if opt.Color {
			st = colors[r.Status].Sprint(st)
		}
		if g := groups[i]; g != nil {
			if g.first != i {
				continue // printed with the first of its group
			}
			fmt.Fprintf(&b, "%s  %s\n", st, Escape(g.title))
			writeWrapped(&b, indent, g.text, width)
			writeWrapped(&b, indent+g.label+": ", strings.Join(g.checks, ", "), width)
			continue
		}
		fmt.Fprintf(&b, "%s  %s\n", st, Escape(r.CheckId))
		writeWrapped(&b, indent, r.Summary, width)
		detail := opt.Verbose || (r.Status != pb.Status_PASS && r.Status != pb.Status_SKIP)
		if !detail {
			continue
		}
		for _, e := range r.Evidence {
			line := e.Label + ": "
			switch {
			case e.Expected != "" && e.Observed != "":
				line += "expected " + e.Expected + ", observed " + e.Observed
			case e.Observed != "":
				line += e.Observed
			default:
				line += "expected " + e.Expected
			}
			writeWrapped(&b, indent+"- ", line, width)
		}
		if r.Remediation != "" {
			writeWrapped(&b, indent+"fix: ", r.Remediation, width)
		}
		writeSnippets(&b, indent, r.Snippets)
	}
	s := rep.GetSummary()
	fmt.Fprintf(&b, "\n%d results: %d PASS, %d WARN, %d FAIL, %d ERROR, %d SKIP\n",
		len(rep.GetResults()), s.GetPass(), s.GetWarn(), s.GetFail(), s.GetError(), s.GetSkip())
	for _, src := range rep.GetSources() {
		writeWrapped(&b, "", fmt.Sprintf("source %s: %s %s", src.Name, strings.ToLower(strings.ReplaceAll(src.State.String(), "_", " ")), src.Message), width)
	}
	if rep.GetStartTime() != nil && rep.GetEndTime() != nil {
		d := rep.EndTime.AsTime().Sub(rep.StartTime.AsTime()).Round(time.Millisecond)
		fmt.Fprintf(&b, "run %s took %s\n", Escape(rep.RunId), d)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSnippets writes each snippet's title, then its text verbatim,
// indented two more spaces: never wrapped, whatever the width, so that it
// can be pasted as it is. Only escaping touches it.
func writeSnippets(b *strings.Builder, indent string, snips []*pb.Snippet) {
	for _, sn := range snips {
		title := sn.Title
		if title == "" {
			title = sn.Language
		}
		b.WriteString(indent + Escape(title) + ":\n")
		for _, line := range strings.Split(strings.TrimRight(sn.Text, "\n"), "\n") {
			b.WriteString(strings.TrimRight(indent+"  "+Escape(line), " ") + "\n")
		}
	}
}

// causeGroup is results that share one cause: the checks a failed source
// takes down (ERROR), or those a source left out of the configuration
// turns off (SKIP). The table prints them once.
type causeGroup struct {
	first  int
	title  string // "kube source failed", "bgp source not configured"
	text   string // the source's message: what it tried, or what turns it on
	label  string
	checks []string
}

// groupByCause finds the results the runner made for a failed or
// unconfigured source (diag's precondition) and groups those with the same
// source and message, when there are at least two. The result is indexed
// like results; nil for a result printed on its own.
func groupByCause(results []*pb.Result) []*causeGroup {
	out := make([]*causeGroup, len(results))
	byKey := map[string]*causeGroup{}
	members := map[string][]int{}
	for i, r := range results {
		key, title, text, label := sourceCause(r)
		if key == "" {
			continue
		}
		g := byKey[key]
		if g == nil {
			g = &causeGroup{first: i, title: title, text: text, label: label}
			byKey[key] = g
		}
		g.checks = append(g.checks, r.CheckId)
		members[key] = append(members[key], i)
	}
	for key, idx := range members {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			out[i] = byKey[key]
		}
	}
	return out
}

// sourceCause recognises the runner's result for a check whose source
// failed ("could not read the kube source: ...", with the evidence
// "kube source: expected gathered") or is not configured ("bgp source not
// configured: ...").
func sourceCause(r *pb.Result) (key, title, text, label string) {
	switch r.Status {
	case pb.Status_ERROR:
		if len(r.Evidence) != 1 || r.Evidence[0].Expected != "gathered" || !strings.HasSuffix(r.Evidence[0].Label, " source") {
			return "", "", "", ""
		}
		name := strings.TrimSuffix(r.Evidence[0].Label, " source")
		return "E\x00" + name + "\x00" + r.Evidence[0].Observed, name + " source failed", r.Evidence[0].Observed, "checks it takes down"
	case pb.Status_SKIP:
		name, rest, ok := strings.Cut(r.Summary, " source not configured: ")
		if !ok || strings.Contains(name, " ") || strings.Contains(rest, "; ") {
			return "", "", "", ""
		}
		return "S\x00" + r.Summary, name + " source not configured", rest, "checks skipped"
	}
	return "", "", "", ""
}

// writeWrapped writes text after prefix, wrapping at width on spaces; the
// continuation lines are indented to the prefix's width. Indented lines are
// code (a config block, YAML) and are written as they are: wrapping them, or
// losing their indentation, would break what the user is meant to paste.
func writeWrapped(b *strings.Builder, prefix, text string, width int) {
	pad := strings.Repeat(" ", len(prefix))
	for i, para := range strings.Split(Escape(text), "\n") {
		line := prefix
		if i > 0 {
			line = pad
		}
		if strings.TrimLeft(para, " \t") != para {
			b.WriteString(strings.TrimRight(line+para, " ") + "\n")
			continue
		}
		words := strings.Fields(para)
		col := len(line)
		for j, word := range words {
			if j > 0 && col+1+len(word) > width {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line, col = pad, len(pad)
			} else if j > 0 {
				line += " "
				col++
			}
			line += word
			col += len(word)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

// JUnit writes one test case per result (github.com/jstemmer/go-junit-report's
// schema): the class is the check ID and the name the object the result is
// about (the check ID alone when it names none), so names stay the same from
// run to run and CI systems can track them; the summary is the failure
// message. FAIL is a failure, ERROR an error, SKIP skipped; WARN passes with
// its details in system-out. Strings are escaped as in the table: CI systems
// show them on terminals and web pages, and what is left is always a valid
// XML 1.0 character.
func JUnit(w io.Writer, rep *pb.Report) error {
	suite := junit.Testsuite{Name: "vnodediag"}
	var total time.Duration
	seen := map[string]int{}
	for _, r := range rep.GetResults() {
		d := r.GetDuration().AsDuration()
		total += d
		summary := Escape(r.Summary)
		name := caseName(r)
		if n := seen[name]; n > 0 {
			// Two results about one object (or none): keep names unique.
			seen[name]++
			name = fmt.Sprintf("%s #%d", name, n+1)
		} else {
			seen[name] = 1
		}
		c := junit.Testcase{Classname: Escape(r.CheckId), Name: Escape(name), Time: fmt.Sprintf("%.3f", d.Seconds())}
		details := Escape(detailText(r))
		msg := &junit.Result{Message: summary, Type: r.Status.String(), Data: details}
		switch r.Status {
		case pb.Status_FAIL:
			c.Failure = msg
			suite.Failures++
		case pb.Status_ERROR:
			c.Error = msg
			suite.Errors++
		case pb.Status_SKIP:
			c.Skipped = &junit.Result{Message: summary}
			suite.Skipped++
		case pb.Status_WARN:
			c.SystemOut = &junit.Output{Data: "WARN: " + summary + "\n" + details}
		}
		suite.Testcases = append(suite.Testcases, c)
	}
	suite.Tests = len(suite.Testcases)
	suite.Time = fmt.Sprintf("%.3f", total.Seconds())
	suites := junit.Testsuites{Name: "vnodediag", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Skipped: suite.Skipped, Time: suite.Time, Suites: []junit.Testsuite{suite}}
	out, err := xml.MarshalIndent(suites, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", xml.Header, out)
	return err
}

// caseName is the check ID and the first object of r: "k8s.providerid-format
// Node/ecs-bad-2".
func caseName(r *pb.Result) string {
	if len(r.Objects) == 0 {
		return r.CheckId
	}
	o := r.Objects[0]
	return r.CheckId + " " + o.Kind + "/" + strings.TrimPrefix(o.Namespace+"/"+o.Name, "/")
}

func detailText(r *pb.Result) string {
	var b strings.Builder
	for _, o := range r.Objects {
		fmt.Fprintf(&b, "object: %s %s\n", o.Kind, strings.TrimPrefix(o.Namespace+"/"+o.Name, "/"))
	}
	for _, e := range r.Evidence {
		fmt.Fprintf(&b, "%s: expected %s, observed %s\n", e.Label, e.Expected, e.Observed)
	}
	if r.Remediation != "" {
		fmt.Fprintf(&b, "fix: %s\n", r.Remediation)
	}
	writeSnippets(&b, "", r.Snippets)
	return b.String()
}
