package app

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag/agent"
	"github.com/vnodediag/vnodediag/diag/cloud"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/diag/host"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/route"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"sigs.k8s.io/yaml"
)

// Every error is tested with its exact text: the line numbers are the point.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"empty", "", "no settings: the file is empty or holds only comments"},
		{"only comments", "# kubernetes:\n#   context: prod\n\n", "no settings: the file is empty or holds only comments"},
		{"only null", "~\n", "no settings: the file is empty or holds only comments"},
		{"two documents", "kubernetes: {}\n---\nrunner:\n  checkTimeout: 5s\n", "config has 2 YAML documents; want one (the second starts on line 3)"},
		{"three documents", "---\nkubernetes: {}\n---\ndns: {}\n---\nbgp: {}\n", "config has 3 YAML documents; want one (the second starts on line 4)"},
		{"unknown field in a section", "kubernetes:\n  kubeconfg: /x\n",
			`line 2: unknown field "kubeconfg" in kubernetes; valid fields: kubeconfig, context, cluster, user, namespace, as, asGroups, serviceCIDRs, pageSize, requestTimeout`},
		{"unknown section", "kubernets: {}\n", `line 1: unknown field "kubernets"; valid fields: ` + topLevel()},
		// The line finder of the past reported the first line that started
		// with the name, here line 2.
		{"unknown field on the right line", "dns:\n  timeout: 2s\n  onPremResolvers:\n    - name: a\n      address: 10.0.0.1\n      timeout: 1s\n",
			`line 6: unknown field "timeout" in dns.onPremResolvers[0]; valid fields: name, address, zone`},
		{"case-sensitive field", "bgp:\n  localASN: 65010\n  routerID: 192.0.2.10\n  EstablishTIMEOUT: 30s\n  peers: []\n",
			`line 4: unknown field "EstablishTIMEOUT" in bgp; did you mean "establishTimeout"? (field names are case-sensitive)`},
		{"case-sensitive section", "Kubernetes: {}\n", `line 1: unknown field "Kubernetes"; did you mean "kubernetes"? (field names are case-sensitive)`},
		{"field set twice", "runner:\n  checkTimeout: 5s\n  checkTimeout: 6s\n", `line 3: runner: field "checkTimeout" is set twice (first on line 2)`},
		{"type error", "kubernetes:\n  pageSize: many\n", `line 2: kubernetes.pageSize: want an integer from -9223372036854775808 to 9223372036854775807, got "many"`},
		{"overflow", "bgp:\n  localASN: 65010\n  routerID: 192.0.2.10\n  peers:\n    - address: 192.0.2.1\n      asn: 4294967296\n",
			`line 6: bgp.peers[0].asn: want an integer from 0 to 4294967295, got "4294967296"`},
		{"negative unsigned", "bgp:\n  peers:\n    - port: -1\n", `line 3: bgp.peers[0].port: want an integer from 0 to 65535, got "-1"`},
		{"bool", "bgp:\n  peers:\n    - passive: maybe\n", `line 3: bgp.peers[0].passive: want true or false, got "maybe"`},
		{"list wanted", "runner:\n  only: k8s\n", `line 2: runner.only: want a list, got "k8s"`},
		{"string wanted", "kubernetes:\n  context: [a, b]\n", `line 2: kubernetes.context: want a string, got a list`},
		{"section is a list", "kubernetes: [1, 2]\n", `line 1: kubernetes: want a mapping of kubeconfig, context, cluster, user, namespace, as, asGroups, serviceCIDRs, pageSize, requestTimeout, got a list`},
		{"top level is a list", "- kubernetes\n", `line 1: want a mapping of ` + topLevel() + `, got a list`},
		{"several errors", "kubernetes:\n  pageSize: x\n  contxt: a\n", "line 2: kubernetes.pageSize: want an integer from -9223372036854775808 to 9223372036854775807, got \"x\"\n" +
			`line 3: unknown field "contxt" in kubernetes; valid fields: kubeconfig, context, cluster, user, namespace, as, asGroups, serviceCIDRs, pageSize, requestTimeout`},
		{"validation", "kubernetes:\n  serviceCIDRs: [10.96.0.0/33]\n", `kubernetes: serviceCIDRs[0]: "10.96.0.0/33" is not a CIDR`},
		{"section duration", "kubernetes:\n  requestTimeout: soon\n", `line 2: kubernetes.requestTimeout: "soon" is not a positive duration like "30s"`},
		{"negative page size", "kubernetes:\n  pageSize: -1\n", "kubernetes: pageSize: must not be negative, got -1"},
		{"duration not a string", "runner:\n  checkTimeout: 5\n", `line 2: runner.checkTimeout: want a duration like "30s", got 5`},
		{"duration not a duration", "runner:\n  checkTimeout: 5 minutes\n", `line 2: runner.checkTimeout: "5 minutes" is not a positive duration like "30s"`},
		{"zero check timeout", "runner:\n  checkTimeout: 0s\n", `line 2: runner.checkTimeout: "0s" is not a positive duration like "30s"`},
		{"negative source timeout", "runner:\n  sourceTimeout: -1s\n", `line 2: runner.sourceTimeout: "-1s" is not a positive duration like "30s"`},
		{"dns reachability", "dns:\n  cloudReachable: sometimes\n", `line 2: dns.cloudReachable: cloudReachable: want true, false or "auto", got "sometimes"`},
		{"syntax", "a: b: c\n", "mapping values are not allowed in this context"},
		// Syntax errors are the YAML parser's, which names the line of the
		// construct it was in.
		{"syntax with line", "kubernetes:\n  context: a\n\tpageSize: 5\n", "line 2: found a tab character that violates indentation"},
		{"merge of a scalar", "runner:\n  <<: 5\n", `line 2: runner: a merge (<<) takes a mapping or a list of mappings, got "5"`},
		{"merge bomb", mergeBomb(), `line 4: runner: more than 100000 values (aliases expanding?)`},
		{"alias bomb", aliasBomb(), `line 3: dns.cloudReachable: more than 100000 values (aliases expanding?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("parse(%q) succeeded, want %q", c.doc, c.want)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("parse(%q):\n got %q\nwant %q", c.doc, got, c.want)
			}
		})
	}
}

// aliasBomb is a billion-laughs document: ten levels of ten aliases each,
// 10^10 values when expanded, in a field decoded through UnmarshalJSON.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("dns:\n  cloudReachable:\n    - &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		prev := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&b, "    - &l%d [%s%s]\n", i, strings.Repeat(prev+", ", 9), prev)
	}
	return b.String()
}

// mergeBomb nests merge keys of empty mappings, ten deep and ten wide:
// 10^10 merges, and not one field to decode.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString("runner:\n  <<:\n    - &m0 {}\n")
	for i := 1; i <= 10; i++ {
		prev := fmt.Sprintf("*m%d", i-1)
		fmt.Fprintf(&b, "    - &m%d {<<: [%s%s]}\n", i, strings.Repeat(prev+", ", 9), prev)
	}
	return b.String()
}

func TestParseGood(t *testing.T) {
	c, err := parse([]byte(`
# a comment before
kubernetes:
  context: prod
  serviceCIDRs: [10.96.0.0/12]
runner:
  checkTimeout: 10s
  skip: [dns]
bgp: &bgp
  localASN: 65010
  routerID: 192.0.2.10
  peers:
    - &peer
      name: core-1
      address: 192.0.2.1
      asn: 65001
      password: 0123
      holdTime: 90
    - name: core-2
      <<: *peer
      address: 192.0.2.2
---
`))
	if err != nil {
		t.Fatal(err)
	}
	if config.SectionAs[*kube.Config](c, "kubernetes").Context != "prod" || c.Runner.CheckTimeout.D() != 10*time.Second || c.Runner.Skip[0] != "dns" {
		t.Errorf("decoded %+v", c)
	}
	peers := config.SectionAs[*bgp.Config](c, "bgp").Peers
	if len(peers) != 2 || peers[1].Name != "core-2" || peers[1].ASN != 65001 || peers[1].Address != "192.0.2.2" {
		t.Errorf("peers %+v", peers)
	}
	if peers[0].Password != "0123" {
		t.Errorf("password %q: a scalar is kept as written", peers[0].Password)
	}
	if h := peers[0].HoldTime; h == nil || *h != 90 {
		t.Errorf("holdTime %v", h)
	}
}

// The documented configurations decode the same through the json tags
// (sigs.k8s.io/yaml, as programs writing configs use them) and through
// Parse: the strict decoder changes what is refused, not what is read.
func TestDocumentedConfigsMatchJSONTags(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "## Configuration")
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	dnsExample, err := os.ReadFile("../../../deploy/dns/vnodediag-dns.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"README": block, "deploy/dns": string(dnsExample)} {
		got, err := parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := &typedFile{}
		if err := yaml.UnmarshalStrict([]byte(doc), want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g, w := asMap(t, got), asMap(t, want); !reflect.DeepEqual(g, w) {
			t.Errorf("%s decodes differently:\n got %+v\nwant %+v", name, g, w)
		}
	}
}

// A configuration written by a program through the json tags (the demo
// marshals its sections with sigs.k8s.io/yaml) reads back equal.
func TestWrittenConfigReadsBack(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "## Configuration")
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	want, err := parse([]byte(block))
	if err != nil {
		t.Fatal(err)
	}
	config.SectionAs[*bgp.Config](want, "bgp").Peers[0].Password = "0123" // a string YAML would read as a number unquoted
	config.SectionAs[*dnsprobe.Config](want, "dns").CloudReachable = "true"
	b, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	// Compared as JSON: "only: []" and no "only" are the same setting.
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("read back differently:\n got %s\nwant %s\n%s", g, w, b)
	}
}

func TestRunnerLimits(t *testing.T) {
	c, err := parse([]byte("runner:\n  maxResultsPerCheck: 5\n  maxReportBytes: 1048576\n"))
	if err != nil || c.Runner.MaxResultsPerCheck != 5 || c.Runner.MaxReportBytes != 1<<20 {
		t.Fatalf("got %+v, %v", c, err)
	}
	for doc, want := range map[string]string{
		"runner:\n  maxResultsPerCheck: -2\n": "runner: maxResultsPerCheck: want a positive count or -1 (no cap), got -2",
		"runner:\n  maxReportBytes: 100\n":    "runner: maxReportBytes: want at least 65536 or -1 (no budget), got 100",
	} {
		if _, err := parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", doc, err, want)
		}
	}
}

// parse is config.Parse over the product's sections.
func parse(b []byte) (*config.Config, error) { return config.Parse(b, Sections()) }

// typedFile is the file as one Go type, as a program writing it through the
// json tags sees it.
type typedFile struct {
	Kubernetes *kube.Config        `json:"kubernetes,omitempty"`
	BGP        *bgp.Config         `json:"bgp,omitempty"`
	Routing    *route.Config       `json:"routing,omitempty"`
	Host       *host.Config        `json:"host,omitempty"`
	DNS        *dnsprobe.Config    `json:"dns,omitempty"`
	Agent      *agent.Config       `json:"agent,omitempty"`
	Cloud      *cloud.Config       `json:"cloud,omitempty"`
	Daemon     *daemon.Config      `json:"daemon,omitempty"`
	Runner     config.RunnerConfig `json:"runner,omitempty"`
}

// asMap is v's JSON document as a map, to compare what two values say.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// topLevel is the file's top-level keys, as errors list them: the sections
// in Families order, then runner.
func topLevel() string {
	var keys []string
	for _, s := range Sections() {
		keys = append(keys, s.Key)
	}
	return strings.Join(append(keys, "runner"), ", ")
}
