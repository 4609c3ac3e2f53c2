package render

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	"github.com/jstemmer/go-junit-report/v2/junit"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sample() *pb.Report {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return &pb.Report{
		RunId: "0123456789abcdef", Version: "test",
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(1234 * time.Millisecond)),
		Cluster: &pb.ClusterIdentity{Server: "https://10.0.0.1:6443", Context: "prod", Version: "v1.30.4", Uid: "u-1"},
		Results: []*pb.Result{
			{CheckId: "k8s.podcidr-assigned", Status: pb.Status_PASS, Summary: "all 8 non-virtual node(s) have a podCIDR", Duration: durationpb.New(time.Millisecond)},
			{CheckId: "k8s.providerid-format", Status: pb.Status_FAIL, Summary: `node ecs-bad-2: providerID "i-uf6cmf0kgbs9o4ex1v2q": missing region`,
				Objects:     []*pb.Object{{Kind: "Node", Name: "ecs-bad-2"}},
				Evidence:    []*pb.Evidence{{Label: "spec.providerID", Expected: "<region-id>.<instance-id>", Observed: `"i-uf6cmf0kgbs9o4ex1v2q"`}},
				Remediation: "On node ecs-bad-2 set the kubelet flag --provider-id=cn-shanghai.${INSTANCE_ID} and re-register the node; a long line that must wrap at eighty columns.",
				Reference:   "vendor FAQ", Duration: durationpb.New(2 * time.Millisecond)},
			{CheckId: "bgp.session", Status: pb.Status_SKIP, Summary: "bgp source not configured: no bgp section", Duration: durationpb.New(0)},
			{CheckId: "dns.resolver-reachable", Status: pb.Status_ERROR, Summary: "could not read the dns source: <boom & co>", Duration: durationpb.New(0)},
			{CheckId: "vnode.metrics-server", Status: pb.Status_WARN, Summary: "metrics-server version unknown", Duration: durationpb.New(0)},
		},
		Summary: &pb.Summary{Pass: 1, Warn: 1, Fail: 1, Error: 1, Skip: 1},
		Sources: []*pb.SourceStatus{{Name: "kube", State: pb.SourceStatus_OK, Message: "9 nodes", Duration: durationpb.New(time.Millisecond)}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (go test -update to accept):\n%s", name, got)
	}
}

func TestTableGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sample(), Options{Width: 80}); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
	for i, line := range strings.Split(b.String(), "\n") {
		if len(line) > 80 {
			t.Errorf("line %d is %d columns: %q", i+1, len(line), line)
		}
	}
	if strings.Contains(b.String(), "\x1b[") {
		t.Error("colour codes without Color")
	}
	b.Reset()
	_ = Table(&b, sample(), Options{Color: true})
	if !strings.Contains(b.String(), "\x1b[31;1mFAIL") {
		t.Error("no colour with Color")
	}
}

// Indented lines of a remediation are code to paste: kept as they are.
func TestTableKeepsCodeBlocks(t *testing.T) {
	rep := &pb.Report{Results: []*pb.Result{{CheckId: "dns.x", Status: pb.Status_FAIL, Summary: "s",
		Remediation: "add to unbound.conf:\nforward-zone:\n  name: \"data.cloud.internal.\"\n  forward-addr: 10.1.0.10@53"}}}
	var b bytes.Buffer
	if err := Table(&b, rep, Options{Width: 80}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n            forward-zone:\n", "\n              name: \"data.cloud.internal.\"\n", "\n              forward-addr: 10.1.0.10@53\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lost the block's layout, want %q in:\n%s", want, b.String())
		}
	}
}

func TestJUnitGolden(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.junit.xml", b.Bytes())
	var s junit.Testsuites
	if err := xml.Unmarshal(b.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if su := s.Suites[0]; su.Tests != 5 || su.Failures != 1 || su.Errors != 1 || su.Skipped != 1 {
		t.Errorf("suite counts %+v", su)
	}
	// Names are the check ID and the object, stable from run to run; the
	// summary (which may carry counts and times) is the failure message.
	for _, c := range s.Suites[0].Testcases {
		if c.Failure != nil && (c.Name != c.Classname+" Node/ecs-bad-2" || c.Failure.Message == "") {
			t.Errorf("failure case %q / %q, message %q", c.Classname, c.Name, c.Failure.Message)
		}
	}
}

// JSON and YAML are the protojson document: both round-trip to the Report.
func TestJSONAndYAMLRoundTrip(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		var b bytes.Buffer
		if err := Write(&b, format, sample(), Options{}); err != nil {
			t.Fatal(err)
		}
		doc := b.Bytes()
		if format == "yaml" {
			var err error
			if doc, err = yaml.YAMLToJSON(doc); err != nil {
				t.Fatal(err)
			}
		}
		got := &pb.Report{}
		if err := protojson.Unmarshal(doc, got); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !proto.Equal(got, sample()) {
			t.Errorf("%s does not round-trip", format)
		}
		if !strings.Contains(b.String(), "FAIL") {
			t.Errorf("%s: statuses must be names", format)
		}
	}
	if err := Write(&bytes.Buffer{}, "xml", sample(), Options{}); err == nil {
		t.Error("unknown format accepted")
	}
}
