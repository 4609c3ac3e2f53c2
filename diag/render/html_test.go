package render

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// faultReport has one known status per hop: on-prem FAIL, leased line
// WARN, VPC PASS, VNode ERROR, end to end SKIP.
func faultReport() *pb.Report {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := func(id string, st pb.Status, summary string) *pb.Result {
		return &pb.Result{CheckId: id, Status: st, Summary: summary, Duration: durationpb.New(time.Millisecond)}
	}
	overlap := r("k8s.podcidr-overlap", pb.Status_FAIL, "node dc-4: podCIDR 100.100.8.0/24 lies in 100.64.0.0/10")
	overlap.Objects = []*pb.Object{{Kind: "Node", Name: "dc-4"}}
	overlap.Evidence = []*pb.Evidence{{Label: "spec.podCIDR", Expected: "outside 100.64.0.0/10", Observed: "100.100.8.0/24"}}
	overlap.Remediation = "Give dc-4 a podCIDR outside 100.64.0.0/10:\n  kubectl drain dc-4 && kubectl delete node dc-4\n  # re-register with --pod-cidr=172.21.4.0/24"
	learned := r("bgp.cloud-routes-learned", pb.Status_WARN, "only 100.100.0.0/16 of 100.64.0.0/10 is learned")
	learned.Remediation = "advertise 100.64.0.0/10 from the VBR"
	agent := r("vnode.agent", pb.Status_ERROR, "could not read the agent source: deadline exceeded")
	return &pb.Report{
		RunId: "fault-run", Version: "test",
		StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(2 * time.Second)),
		Cluster: &pb.ClusterIdentity{Server: "https://10.0.0.1:6443", Context: "prod-hybrid", Version: "v1.37.2", Uid: "u-1"},
		Results: []*pb.Result{
			learned,
			r("cloud.vbr-bgp", pb.Status_PASS, "every prefix crosses every hop"),
			r("cloud.vpc-pod-routes", pb.Status_PASS, "2 route tables route every ECS podCIDR"),
			r("host.sysctls", pb.Status_PASS, "sysctls as needed"),
			overlap,
			r("path.cloud-to-onprem", pb.Status_SKIP, "agent source not configured: no agent section"),
			r("path.onprem-to-cloud", pb.Status_SKIP, "agent source not configured: no agent section"),
			agent,
			r("vnode.present", pb.Status_PASS, "1 VNode, Ready"),
		},
		Summary: &pb.Summary{Pass: 4, Warn: 1, Fail: 1, Error: 1, Skip: 2},
		Sources: []*pb.SourceStatus{
			{Name: "kube", State: pb.SourceStatus_OK, Message: "9 nodes", Duration: durationpb.New(time.Millisecond)},
			{Name: "agent", State: pb.SourceStatus_FAILED, Message: "deadline exceeded"},
		},
	}
}

// faultColors are the hop classes faultReport must give.
var faultColors = map[string]string{"onprem": "st-fail", "line": "st-warn", "vpc": "st-pass", "vnode": "st-error", "path": "st-skip"}

func renderHTML(t *testing.T, rep *pb.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, "html", rep, Options{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHTMLHopClasses(t *testing.T) {
	page := renderHTML(t, faultReport())
	for hop, class := range faultColors {
		re := regexp.MustCompile(`<rect id="hop-` + hop + `" class="hop ([a-z-]+)"`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			t.Errorf("no element hop-%s", hop)
			continue
		}
		if m[1] != class {
			t.Errorf("hop %s has class %s, want %s", hop, m[1], class)
		}
	}
	// Findings are listed under their hop, with evidence and fix.
	for _, want := range []string{
		`<h3 id="f-onprem"><span class="badge st-fail">FAIL</span>`,
		"100.100.8.0/24", "re-register with --pod-cidr=172.21.4.0/24", "advertise 100.64.0.0/10 from the VBR",
		`<h3 id="f-vpc"><span class="badge st-pass">PASS</span>VPC routes &amp; PrivateZone</h3>` + "\n" + `<p class="quiet">nothing to fix: 1 PASS</p>`,
		"prod-hybrid", "https://10.0.0.1:6443", "u-1", "deadline exceeded",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	empty := renderHTML(t, &pb.Report{})
	for hop := range faultColors {
		if !strings.Contains(empty, `<rect id="hop-`+hop+`" class="hop st-none"`) {
			t.Errorf("empty report: hop %s is not st-none", hop)
		}
	}
}

// The page fetches nothing and runs nothing: no script, no external
// reference, a policy that forbids both.
func TestHTMLSelfContained(t *testing.T) {
	page := renderHTML(t, faultReport())
	for _, bad := range []string{"<script", "@import", "url(", "<img", "<iframe", "<object", "<embed", "<link rel=\"stylesheet\""} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "#") && !strings.HasPrefix(m[1], "data:") {
			t.Errorf("page refers to %q", m[1])
		}
	}
	if !strings.Contains(page, `content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`) {
		t.Error("no Content-Security-Policy")
	}
}

// hostile is a report whose every string tries to break out of the page.
func hostile() *pb.Report {
	const s = `<script>alert("x")</script>'"><img src=x onerror=alert(1)>` + "\x1b]0;pwn\x07\xff"
	return &pb.Report{
		RunId: s, Version: s,
		Cluster: &pb.ClusterIdentity{Server: s, Context: "</title><script>alert(2)</script>", Version: s, Uid: s},
		Results: []*pb.Result{{
			CheckId: `k8s.x"><script>alert(3)</script>`, Status: pb.Status_FAIL, Summary: s,
			Objects:     []*pb.Object{{Kind: s, Namespace: s, Name: s}},
			Evidence:    []*pb.Evidence{{Label: s, Expected: s, Observed: s}},
			Remediation: s, Reference: s,
		}, {
			CheckId: "vnode.present", Status: pb.Status_WARN, Summary: "</style><script>alert(4)</script>",
		}},
		Summary: &pb.Summary{Fail: 1, Warn: 1},
		Sources: []*pb.SourceStatus{{Name: s, State: pb.SourceStatus_FAILED, Message: s}},
	}
}

func TestHTMLEscapesReportStrings(t *testing.T) {
	page := renderHTML(t, hostile())
	for _, bad := range []string{"<script", "<img", "</title><", "\x1b", "\xff", "onerror=alert(1)>", `"><script`} {
		if strings.Contains(page, bad) {
			t.Errorf("unescaped %q in the page", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "&#39;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", `\x1b]0;pwn\x07\xff`, "&lt;/style&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks the escaped %q", want)
		}
	}
}

func TestHopsOf(t *testing.T) {
	for id, want := range map[string]string{
		"k8s.podcidr-overlap":      "onprem",
		"k8s.providerid-format":    "vpc",
		"bgp.session":              "onprem,line",
		"bgp.cloud-routes-learned": "line",
		"cloud.vbr-bgp":            "line",
		"cloud.privatezone":        "vpc",
		"vnode.agent":              "vnode",
		"path.onprem-to-cloud":     "path",
		"k8s":                      "",
		"k8s.providerid-format.x":  "onprem", // an exact rule is no prefix
		"nope.x":                   "",
	} {
		if got := strings.Join(HopsOf(id), ","); got != want {
			t.Errorf("HopsOf(%q) = %q, want %q", id, got, want)
		}
	}
	for _, r := range hopRules {
		for _, h := range r.hops {
			found := false
			for _, hop := range Hops {
				found = found || hop.ID == h
			}
			if !found {
				t.Errorf("rule %q names unknown hop %q", r.prefix, h)
			}
		}
	}
}

// A check the drawing cannot place still shows, under its own heading.
func TestHTMLUnplaced(t *testing.T) {
	page := renderHTML(t, &pb.Report{Results: []*pb.Result{{CheckId: "future.check", Status: pb.Status_FAIL, Summary: "new"}}})
	if !strings.Contains(page, `<h3 id="f-other">Not placed on the path</h3>`) || !strings.Contains(page, "future.check") {
		t.Error("an unplaced finding is missing")
	}
}
